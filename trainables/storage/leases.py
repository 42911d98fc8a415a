"""Heartbeated, fenced leases on one file of a :class:`~.conditional.ConditionalStore`, and the one
rule for when another party's lease is stale.

A :class:`Lease` is a lock file ``{"owner", "host", "pid", "beat", "since"}`` whose owner rewrites it
(``beat`` + 1, conditional on its own last version) every ``heartbeat_s``.  Stage-cache locks, a
study's driver lease and a result store's compaction lock are all such leases.

**When a lease is stale.**  Whether somebody else's lease is stale is judged by :class:`StaleWatch`
on the *watcher's* monotonic clock: the lease is stale when its version has not changed for
``stale_after_s`` seconds of the watcher's own time, so clocks of different machines are never
compared (nor is the owner's pid: a host name and pid say nothing about a process on another
machine).  A stale lease is taken over with ``replace`` conditional on the stale version, so of
several waiters exactly one wins; an owner whose heartbeat finds its lease replaced knows it lost it,
and a release deletes the lease only if it is still the owner's version.  :func:`claim_lease` is
that rule for a party that must not wait for a live holder (a second driver, a second compaction):
it refuses as soon as the holder's lease changes, and takes it over once it has not changed for the
stale window.

A lease may also be *fenced* (``fence_s``, shorter than the stale window the waiters use): it is
held only while its last successful write (acquire, take-over or renewal) was sent less than
``fence_s`` ago, on :func:`suspend_aware_clock`.  Renewals that fail (expired credentials,
throttling, no network) are retried every beat; once the fence passes, ``lost`` is set for good.  So
an owner that cannot renew, or that was paused (SIGSTOP, a laptop asleep) past its fence, stops
writing (its callers check :meth:`Lease.held` before each write) before any waiter can judge the
lease stale, which takes ``stale_after_s`` > ``fence_s`` of the waiter's own time after it first saw
that last version.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from omasgan.errors import OMASGANError

from .conditional import ConditionalStore


def _process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def suspend_aware_clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended, for a lease's fence.

    Linux: ``CLOCK_BOOTTIME`` (``CLOCK_MONOTONIC`` stops while the machine sleeps).  macOS:
    ``clock_gettime(CLOCK_MONOTONIC)``, which counts sleep there (``time.monotonic`` does not).
    Elsewhere ``time.monotonic``, which may not count a suspended machine's sleep.  Every one of them
    counts the time a process is stopped (SIGSTOP) or starved, which is what a fence must see."""
    return _SUSPEND_AWARE()


def _pick_suspend_aware_clock() -> Callable[[], float]:
    import sys

    for name, platforms in (("CLOCK_BOOTTIME", ("linux",)), ("CLOCK_MONOTONIC", ("darwin",))):
        clock_id = getattr(time, name, None)
        if clock_id is not None and sys.platform.startswith(platforms):
            try:
                time.clock_gettime(clock_id)
            except OSError:  # an old kernel without it
                continue
            return lambda: time.clock_gettime(clock_id)
    return time.monotonic


_SUSPEND_AWARE = _pick_suspend_aware_clock()


class LeaseLost(OMASGANError, RuntimeError):
    """A write was refused because the lease that guards it is no longer held (taken over, or not
    renewed within its fence).  What the lease guarded can be continued by whoever takes it over
    (exit status 1, as a halted study)."""

    exit_status = 1


class StaleWatch:
    """Whether another party's lease has stopped changing, on this process's monotonic clock.

    The waiter's clock may under-count (``time.monotonic`` stops while the waiter's own machine
    sleeps), which only makes it wait longer: the owner's fence is counted on a clock that does not
    stop (:func:`suspend_aware_clock`)."""

    def __init__(self, stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.version: str | None = None
        self.since = 0.0

    def unchanged_for(self, version: str) -> float:
        """Seconds (of this process's clock) for which the lease has had ``version``."""
        now = time.monotonic()
        if version != self.version:
            self.version, self.since = version, now
        return now - self.since

    def is_stale(self, version: str) -> bool:
        return self.unchanged_for(version) > self.stale_after_s


class Lease:
    """An exclusive, heartbeated claim on one file of a :class:`ConditionalStore`.

    Guarantees: at most one live holder when the store is ``exclusive`` (every write of the lock file
    is conditional); ``release`` never deletes a lock that another party holds now; after
    ``lost`` is set, this object no longer writes the file.

    With ``fence_s`` (see the module docstring), :meth:`held` is true only while the last successful
    write of the lock was sent less than ``fence_s`` ago on ``clock``; when the fence passes, ``lost``
    is set and stays set even if a later renewal could succeed.  Without it (stage-cache locks), a
    lease is held until it is released or found taken over, and failed renewals are retried for ever."""

    def __init__(self, store: ConditionalStore, path: str, *, heartbeat_s: float = 5.0,
                 owner: str | None = None, info: dict[str, Any] | None = None, fence_s: float | None = None,
                 clock: Callable[[], float] = suspend_aware_clock) -> None:
        if fence_s is not None and not heartbeat_s < fence_s:
            raise ValueError(f"a lease's heartbeat ({heartbeat_s:g} s) must be shorter than its fence ({fence_s:g} s)")
        self.store, self.path, self.heartbeat_s = store, path, heartbeat_s
        self.fence_s, self.clock = fence_s, clock
        self.owner = owner or _process_owner()
        self.info = dict(info or {})
        self.version: str | None = None
        self.beat = 0
        self.renewed_at: float | None = None
        """``clock`` reading taken just before the last successful write of the lock was sent."""
        self.failures = 0
        """Renewals that failed (raised) since the last one that succeeded."""
        self.last_error = ""
        """The last failed renewal's exception, in words."""
        self.lost = threading.Event()
        self.lost_reason = ""
        self.lost_at: float | None = None
        """``clock`` reading when ``lost`` was set."""
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def document(self) -> bytes:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "beat": self.beat, "since": time.time(), **self.info}).encode()

    def _write(self, write: Callable[[], str | None]) -> str | None:
        """Run one conditional write of the lock; on success, record the version and when it was sent."""
        sent = self.clock()
        version = write()
        if version is not None:
            self.version, self.renewed_at = version, sent
        return version

    def acquire(self) -> bool:
        """Create the lock file; whether this lease holds it now."""
        if self._write(lambda: self.store.create(self.path, self.document())) is not None:
            self._start()
            return True
        return False

    def take_over(self, stale_version: str) -> bool:
        """Replace a lock judged stale (still at ``stale_version``); whether this lease holds it now."""
        if self._write(lambda: self.store.replace(self.path, self.document(), stale_version)) is not None:
            self._start()
            return True
        self.version = None
        return False

    @property
    def released(self) -> bool:
        """Whether :meth:`release` was called."""
        return self._released

    def mark_lost(self, reason: str) -> None:
        """Give the lease up for good (no more writes of the lock); ``reason`` says why, in words."""
        if not self.lost.is_set():
            self.lost_reason, self.lost_at = reason, self.clock()
            self.lost.set()

    def held(self) -> bool:
        """Whether writes guarded by this lease may go on now: acquired, not released, not lost, and
        (with a fence) last renewed less than ``fence_s`` ago.  Sets ``lost`` once the fence has passed."""
        if self.version is None or self._released or self.lost.is_set():
            return False
        if self.fence_s is not None:
            silent = self.clock() - self.renewed_at
            if silent >= self.fence_s:
                failed = f"; {self.failures} renewal(s) failed, the last with {self.last_error}" if self.failures else ""
                self.mark_lost(f"no successful renewal for {silent:.1f} s, past its {self.fence_s:g} s fence{failed}")
                return False
        return True

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless :meth:`held`."""
        if not self.held():
            raise LeaseLost(f"lease {self.path} is not held: {self.lost_reason or 'released or never acquired'}")

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"lease:{self.path}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                if self._stop.is_set() or not self.held():
                    return  # released, taken over, or fenced: this lease writes the lock no more
                self.beat += 1
                try:
                    version = self._write(lambda: self.store.replace(self.path, self.document(), self.version))
                except Exception as exc:  # noqa: BLE001 - a transient storage error: try again next beat
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    continue
                if version is None:
                    self.mark_lost("taken over by another party (or removed)")  # judged dead by a waiter
                    return
                self.failures = 0

    def release(self) -> bool:
        """Stop the heartbeat and delete the lock if this lease still holds it; whether it did."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            holding = self.held()
            self._released = True
            if not holding:
                return False
            try:
                return self.store.delete(self.path, self.version)
            except Exception:  # noqa: BLE001 - the lock then goes stale and is taken over
                return False


def read_lease(store: ConditionalStore, path: str) -> tuple[dict[str, Any], str] | None:
    """The lease document at ``path`` and its version, or None (no file; an unreadable one reads as {})."""
    current = store.read(path)
    if current is None:
        return None
    try:
        document = json.loads(current.data)
    except ValueError:
        document = {}
    return (document if isinstance(document, dict) else {}), current.version


@dataclass(frozen=True)
class Holder:
    """Another party's lease on a file as a watcher sees it: its document, its version, and for how
    many seconds of the watcher's clock it has had that version."""

    document: dict[str, Any]
    version: str
    silent_s: float

    def names(self) -> str:
        """Who holds it, in words: ``owner (host H, pid P)``."""
        document = self.document
        return f"{document.get('owner', '?')} (host {document.get('host', '?')}, pid {document.get('pid', '?')})"


def claim_lease(new_lease: Callable[[], Lease], stale_after_s: float, *, alive: Callable[[Holder], Exception],
                watching: Callable[[Holder], None] | None = None, taken_over: Callable[[Holder], None] | None = None,
                poll_s: float = 0.5) -> Lease:
    """A started lease from ``new_lease()`` on a file that only one party may hold, for a party that does
    not wait for a live holder.

    The lease is acquired when the file is free.  Otherwise the holder's lease is watched on this
    process's clock (:class:`StaleWatch`): ``watching(holder)`` is called when a holder is first seen;
    if its lease changes, the holder is alive and ``alive(holder)`` is raised; if it has not changed
    for ``stale_after_s`` seconds, it is taken over (conditional on the stale version) and
    ``taken_over(holder)`` is called.  When another watcher takes it over first, the new holder is
    watched from the start."""
    watch = StaleWatch(stale_after_s)
    first: str | None = None
    while True:
        lease = new_lease()
        if lease.acquire():
            return lease
        current = read_lease(lease.store, lease.path)
        if current is None:
            continue  # released between the two calls
        document, version = current
        holder = Holder(document, version, watch.unchanged_for(version))
        if first is None:
            first = version
            if watching is not None:
                watching(holder)
        elif version != first:
            raise alive(holder)
        if holder.silent_s > stale_after_s:
            if lease.take_over(version):
                if taken_over is not None:
                    taken_over(holder)
                return lease
            first = None  # another watcher took it over first: watch the new holder from the start
            continue
        time.sleep(poll_s)
