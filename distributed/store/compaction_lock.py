"""One compaction at a time per result store: ``<root>/_compaction.lock``, a fenced lease.

The lock is a :class:`~omasgan.trainables.storage.leases.Lease` of the storage's conditional store:
created only if absent (a hard link on a local disk, ``If-None-Match: *`` on S3, generation 0 on GCS),
renewed every ``LOCK_HEARTBEAT_S`` by its owner, and deleted on release only while the owner still
holds it.  It is judged by the rule every lease of the project is judged by
(:func:`~omasgan.trainables.storage.leases.claim_lease`): a second compaction that finds the lock
watches it on its own clock; if it changes, its owner is alive and the second compaction is refused
with one line naming the owner (:class:`CompactionBusy`); if it does not change for
``LOCK_STALE_S`` seconds, its owner is gone (killed, its machine lost) and the lock is taken over with
a replace conditional on the version watched, so of two compactions that find it stale one wins.  No
clock or process id of the owner's machine is compared with the watcher's.

The lease is fenced (``LOCK_FENCE_S``, half the stale window): an owner that could not renew it for
that long (a paused process, a storage that refuses its writes) no longer holds it, and
:meth:`StoreLock.check` raises LeaseLost before the compaction commits or deletes anything, so a
compaction whose lock was taken over never writes after the one that took it over started.
"""

from __future__ import annotations

from typing import Any, Callable

from omasgan.errors import ConfigError
from omasgan.trainables.storage.conditional import conditional_store
from omasgan.trainables.storage.leases import Holder, Lease, claim_lease

LOCK_FILE = "_compaction.lock"
LOCK_STALE_S = 30.0
"""A lock that has not changed for this long (of the watcher's own clock) was left by a compaction
that is gone, and is taken over."""
LOCK_FENCE_S = 15.0
"""An owner holds the lock only while its last renewal was sent less than this long ago."""
LOCK_HEARTBEAT_S = 5.0
"""How often the owner renews the lock (three renewals per fence)."""
LOCK_POLL_S = 0.5
"""How often a second compaction reads the lock while it watches it."""


class CompactionBusy(ConfigError):
    """Another compaction holds the store's lock."""


class StoreLock:
    """The compaction lock of the result store at ``root`` (see the module docstring); a context manager.

    ``stale_after_s``, ``fence_s``, ``heartbeat_s`` and ``poll_s`` default to the module's ``LOCK_*``
    settings (read when the lock is made; the guarantee needs every party's fence shorter than the stale
    window the others watch it with); ``say`` is told, in words, when another compaction's lock is
    found and watched, and when it is taken over."""

    def __init__(self, root: str, *, stale_after_s: float | None = None, fence_s: float | None = None,
                 heartbeat_s: float | None = None, poll_s: float | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.conditional, base = conditional_store(root)
        self.path = f"{base}/{LOCK_FILE}"
        self.stale_after_s = LOCK_STALE_S if stale_after_s is None else stale_after_s
        self.fence_s = LOCK_FENCE_S if fence_s is None else fence_s
        self.heartbeat_s = LOCK_HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self.poll_s = LOCK_POLL_S if poll_s is None else poll_s
        self.say = say or (lambda text: None)
        self.lease: Lease | None = None

    def _new_lease(self) -> Lease:
        return Lease(self.conditional, self.path, heartbeat_s=self.heartbeat_s, fence_s=self.fence_s)

    def _busy(self, holder: Holder) -> CompactionBusy:
        return CompactionBusy(f"{self.root!r} is being compacted by {holder.names()}: its lock {self.path} is being "
                              "renewed; wait for that compaction to finish (one compaction at a time)")

    def acquire(self) -> None:
        """Take the lock (waiting up to the stale window while another compaction's lock is watched), or
        raise CompactionBusy naming its owner when that lock is renewed meanwhile."""
        self.lease = claim_lease(
            self._new_lease, self.stale_after_s, alive=self._busy, poll_s=self.poll_s,
            watching=lambda holder: self.say(f"another compaction's lock is on the store: {holder.names()}; watching "
                                             f"it for up to {self.stale_after_s:.0f} s to see whether it is alive"),
            taken_over=lambda holder: self.say(f"took over the compaction lock of {holder.names()}: unchanged for "
                                               f"{holder.silent_s:.0f} s, so that compaction is gone"))

    def check(self) -> None:
        """Raise LeaseLost unless this process holds the lock now (acquired, renewed within its fence)."""
        if self.lease is None:
            raise RuntimeError(f"the compaction lock {self.path} was never acquired")
        self.lease.check()

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
