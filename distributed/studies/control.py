"""A study's control state on its storage, so that any machine can continue it, and one driver at a time.

With ``--storage`` a URI (``s3://bucket/omasgan``), everything a study needs lives under
``<storage>/<name>/``, next to its results:

    study.json           the StudySpec, created once with a conditional write (a second driver starting
                         the same name loses the race and is refused), never rewritten
    optuna-journal/      the search's Optuna journal as an append-only log of objects
                         (:mod:`.journal_mirror`): every append adds one object with only the new records,
                         created only while this driver holds the lease and only if no other driver
                         has used its sequence number; snapshots keep what a resume reads small
    optuna-journal.log   studies from before that log: the whole journal (read, and copied into the log)
    driver.lease         the driver lease: which driver runs the study now (a heartbeated, fenced Lease)

The driver works on local copies in ``--study-dir/<name>/`` (Optuna's journal backend needs a local
file); ``--resume`` on another machine, or after ``ray down``, downloads them from the URI first.  With
a local ``--storage`` the study folder is the control folder and holds all of them itself (the journal
as the one file ``optuna-journal.log``).

The driver lease keeps a second driver out: a driver creates ``driver.lease`` before it writes
anything and refreshes it every few seconds.  Another driver finding it watches it on its own clock:
if it changes, a live driver holds the study and this one is refused; if it does not change for
``OMASGAN_DRIVER_LEASE_STALE_S`` seconds (default 30), its driver is dead (killed, its machine gone)
and the lease is taken over, with a write conditional on the stale version.

The lease is fenced at half that window: the driver holds it only while its last successful renewal
was sent less than ``stale / 2`` seconds ago, on a clock that also counts a suspended machine's sleep
(:func:`~omasgan.trainables.storage.leases.suspend_aware_clock`).  A driver whose renewals fail (expired
credentials, throttling) or that was paused (SIGSTOP, a laptop asleep) past the fence has lost the
lease for good: its journal writes are refused (:class:`DriverLease`), its searcher asks for no more
trials (:mod:`.journal_search`), its Tune experiment is halted (:mod:`.guards`) and it deletes
nothing (:mod:`.runner`) -- all before another driver can find the lease stale.

The Optuna journal's backend re-binds on unpickling: Tune pickles the searcher (with its journal
backend) into the experiment state, and a study resumed elsewhere must append to *this* driver's
copy, not to a path on the machine that started it (:func:`bind_journal`).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from omasgan.atomic_write import write_file_atomic
from omasgan.errors import ConfigError

from ..store.study_folder import JOURNAL_FILE, STUDY_FILE, StudySpec

LEASE_FILE = "driver.lease"
LEASE_STALE_ENV = "OMASGAN_DRIVER_LEASE_STALE_S"
DEFAULT_LEASE_STALE_S = 30.0
LEASE_FENCE_FRACTION = 0.5
"""A driver holds its lease for this fraction of the stale window after its last successful renewal."""
LEASE_BEATS_PER_FENCE = 3
"""Renewals tried within one fence (so two in a row may fail before the lease is lost)."""
PLACEMENT_GRACE_ENV = "OMASGAN_PLACEMENT_GRACE_S"
DEFAULT_PLACEMENT_GRACE_S = 60.0


def seconds_from_env(name: str, default: float) -> float:
    """The positive number of seconds in environment variable ``name``, or ``default`` when it is unset
    or empty; a ConfigError naming the variable and its value otherwise."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be a number of seconds, e.g. {default:g}") from None
    if not value > 0:
        raise ConfigError(f"{name}={raw!r} must be > 0 seconds")
    return value


def lease_stale_after_s() -> float:
    """Seconds without a change after which another driver's lease counts as dead."""
    return seconds_from_env(LEASE_STALE_ENV, DEFAULT_LEASE_STALE_S)


def placement_grace_s() -> float:
    """Seconds a trial's round waits on a placement group that is not CREATED (a node of it died and
    Ray is placing its bundles again) before the trial fails, releases its group and is retried by Tune
    from its last finished stage (``trainable.wait_for_units``)."""
    return seconds_from_env(PLACEMENT_GRACE_ENV, DEFAULT_PLACEMENT_GRACE_S)


def say(study: str, text: str) -> None:
    print(f"[{study}] {text}", flush=True)


def warn(text: str) -> None:
    print(f"omasgan: warning: {text}", file=sys.stderr, flush=True)


@dataclass
class DriverLease:
    """A study's driver lease in this process, with what its refusals say.

    ``lease`` is the :class:`~omasgan.trainables.storage.leases.Lease` on ``driver.lease``; ``where``
    names that file as the user wrote the root; ``stale_after_s`` is the window after which another
    driver takes a silent lease over."""

    lease: Any
    study: str
    where: str
    stale_after_s: float

    def held(self) -> bool:
        return self.lease.held()

    def mark_lost(self, reason: str) -> None:
        self.lease.mark_lost(reason)

    def line(self) -> str:
        """The one line a driver that lost its lease stops with."""
        reason = self.lease.lost_reason or "released"
        return (f"study {self.study!r}: lost the study's lease {self.where} ({reason}): stopping; no more trials, "
                f"no journal writes; another driver may take the study over (--resume does, once the lease has "
                f"not changed for {self.stale_after_s:g} s)")

    def check(self) -> None:
        """Raise LeaseLost with :meth:`line` unless the lease is held."""
        from omasgan.trainables.storage.leases import LeaseLost

        if not self.lease.held():
            raise LeaseLost(self.line())


_DRIVER_LEASES: dict[str, DriverLease] = {}


def lease_lost(study: str, lease: Any) -> Exception:
    """The LeaseLost a driver of ``study`` that no longer holds ``lease`` stops with (its one line)."""
    from omasgan.trainables.storage.leases import LeaseLost

    found = _DRIVER_LEASES.get(study)
    if found is not None and found.lease is lease:
        return LeaseLost(found.line())
    return LeaseLost(f"study {study!r}: lost the study's lease ({lease.lost_reason or 'released'}): stopping; "
                     "no more trials, no journal writes; another driver may take the study over")


def driver_lease(study: str) -> DriverLease | None:
    """This process's driver lease of ``study`` (None when this process took none, or released it):
    every write of the study's driver state checks it first."""
    found = _DRIVER_LEASES.get(study)
    return None if found is None or found.lease.released else found


class StudyControl:
    """The control files of one study under its data root (a local folder or a URI)."""

    def __init__(self, name: str, data_root: str) -> None:
        from omasgan.trainables.storage.conditional import conditional_store
        from omasgan.trainables.storage.filesystems import open_filesystem

        self.name, self.data_root = name, data_root
        self.fs, self.base = open_filesystem(data_root)
        self.store, _ = conditional_store(data_root)

    @property
    def spec_path(self) -> str:
        return f"{self.base}/{STUDY_FILE}"

    @property
    def journal_path(self) -> str:
        return f"{self.base}/{JOURNAL_FILE}"

    @property
    def lease_path(self) -> str:
        return f"{self.base}/{LEASE_FILE}"

    def where(self, path: str) -> str:
        """``path`` as the user wrote the root (``s3://bucket/...`` rather than ``bucket/...``)."""
        return f"{self.data_root.rstrip('/')}{path[len(self.base):]}"

    # ---- study.json ---------------------------------------------------------------------------
    def read_spec(self) -> StudySpec | None:
        """The stored StudySpec, or None when there is none; a malformed one is a ConfigError."""
        current = self.store.read(self.spec_path)
        if current is None:
            return None
        return StudySpec.from_json(current.data.decode(errors="replace"), self.where(self.spec_path))

    def create_spec(self, spec: StudySpec) -> bool:
        """Write study.json only if none exists (one request the storage checks); whether it did."""
        return self.store.create(self.spec_path, spec.to_json().encode()) is not None

    def contents(self, limit: int = 3) -> list[str]:
        """Up to ``limit`` files already under the study's data root (hidden files skipped)."""
        import pyarrow.fs as pafs

        if self.fs.get_file_info(self.base).type != pafs.FileType.Directory:
            return []
        found = []
        for info in self.fs.get_file_info(pafs.FileSelector(self.base, recursive=True)):
            if info.type == pafs.FileType.File and not info.base_name.startswith("."):
                found.append(self.where(info.path))
                if len(found) >= limit:
                    break
        return found

    # ---- the journal copy ---------------------------------------------------------------------
    @property
    def mirror_folder(self) -> str:
        from .journal_mirror import MIRROR_FOLDER

        return f"{self.base}/{MIRROR_FOLDER}"

    def new_mirror(self):
        """A :class:`~.journal_mirror.JournalMirror` of this study's journal log (unfenced)."""
        from .journal_mirror import JournalMirror

        return JournalMirror(self.store, self.fs, self.mirror_folder, legacy=self.journal_path)

    def mirror(self):
        """This process's mirror of the study's journal, fenced by its driver lease (:func:`study_mirror`)."""
        return study_mirror(self.name, self.data_root)

    def push_journal(self, local: Path) -> None:
        """Upload the local journal's records that the study's log does not hold yet (one new object),
        while this process holds the study's driver lease (LeaseLost otherwise)."""
        if local.is_file():
            self.mirror().push(local)

    def pull_journal(self, local: Path) -> str:
        """Make ``local`` the newest journal of the two (the journal is append-only, so the longer one
        that starts with the other is newer), uploading what only ``local`` holds; returns what was
        done, in words.  A study's old whole-file copy is read and copied into the log."""
        mirror = self.mirror()
        remote, legacy = mirror.read()
        where = self.where(self.journal_path if legacy else mirror.folder)
        mine = local.read_bytes() if local.is_file() else None
        if remote is None:
            if mine:
                mirror.push(local)
                return "uploaded this machine's journal (the storage had no copy)"
            return "no journal yet"
        if mine is not None and mine.startswith(remote):
            if len(mine) > len(remote):
                mirror.push(local)
                return "this machine's journal was ahead of the storage's copy; uploaded it"
            if legacy:
                mirror.push(local)
                return f"journal up to date; copied {where} into {self.where(mirror.folder)}/"
            return "journal up to date"
        if mine is not None and not remote.startswith(mine):
            backup = local.with_name(f"{local.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            local.replace(backup)
            warn(f"the local journal {local} differs from the study's copy {where}; "
                 f"kept it as {backup} and took the study's copy")
        local.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(local, lambda handle: handle.write(remote))
        if legacy:
            mirror.push(local)
        return f"restored the journal from {where}"

    # ---- the driver lease ---------------------------------------------------------------------
    def acquire_lease(self, *, stale_after_s: float | None = None, poll_s: float = 0.5):
        """Take the study's driver lease (a started, heartbeated :class:`Lease`).

        Raises ConfigError, naming the holder, when another driver's lease changes while this one
        watches it (a live driver).  A lease that does not change for ``stale_after_s`` seconds of this
        process's clock is taken over."""
        from omasgan.trainables.storage.leases import Lease, claim_lease

        stale_after_s = lease_stale_after_s() if stale_after_s is None else stale_after_s
        fence_s = stale_after_s * LEASE_FENCE_FRACTION

        def new_lease() -> Lease:
            return Lease(self.store, self.lease_path, heartbeat_s=min(5.0, fence_s / LEASE_BEATS_PER_FENCE),
                         fence_s=fence_s, info={"study": self.name})

        def alive(holder) -> ConfigError:
            return ConfigError(
                f"study {self.name!r} is being run by another driver, {holder.names()}: its lease "
                f"{self.where(self.lease_path)} is being refreshed; stop that driver or wait until it ends "
                f"(one driver per study)")

        lease = claim_lease(
            new_lease, stale_after_s, alive=alive, poll_s=poll_s,
            watching=lambda holder: say(self.name, f"another driver's lease is on the study: {holder.names()}; "
                                                   f"watching its heartbeat for up to {stale_after_s:.0f} s to "
                                                   "see whether it is alive"),
            taken_over=lambda holder: say(self.name, f"took over the lease of {holder.names()}: unchanged for "
                                                     f"{holder.silent_s:.0f} s, so its driver is gone"))
        return self._register(lease, stale_after_s)

    def _register(self, lease: Any, stale_after_s: float) -> Any:
        """Make ``lease`` this process's driver lease of the study (:func:`driver_lease`); returns it."""
        _DRIVER_LEASES[self.name] = DriverLease(lease, self.name, self.where(self.lease_path), stale_after_s)
        return lease


# ---------------------------------------------------------------- the Optuna journal, mirrored

_BOUND: dict[str, tuple[str, str | None]] = {}
_MIRRORS: dict[tuple[str, str], Any] = {}


def bind_journal(study: str, local: Path, mirror_root: str | None) -> None:
    """Make every journal backend of ``study`` unpickled in this process use ``local`` (and upload
    to ``mirror_root``'s journal log), wherever the pickling process kept its file."""
    _BOUND[study] = (str(local), mirror_root)


def study_mirror(study: str, data_root: str):
    """This process's :class:`~.journal_mirror.JournalMirror` of ``study`` under ``data_root`` (one per
    study and root, so it keeps its place in the log), fenced by the study's :func:`driver_lease`."""
    key = (study, data_root)
    mirror = _MIRRORS.get(key)
    if mirror is None:
        mirror = _MIRRORS[key] = StudyControl(study, data_root).new_mirror()
    mirror.lease = driver_lease(study)
    return mirror


def journal_storage(study: str, local: Path, mirror_root: str | None):
    """An Optuna JournalStorage on ``local`` whose appends are refused unless this process holds the
    study's driver lease (when it took one), and are also uploaded to the log under ``mirror_root``
    (None: a local study, no copy)."""
    import optuna

    bind_journal(study, local, mirror_root)
    local.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(__getattr__("MirroredJournalBackend")(str(local), study, mirror_root))


@contextmanager
def mirrored_once(storage: Any) -> Iterator[None]:
    """Within the block, the journal appends of ``storage`` (a :func:`journal_storage`) are uploaded
    as one object when the block ends, not one each; any other storage is left as it is."""
    backend = getattr(storage, "_backend", None)
    if not hasattr(backend, "batched"):
        yield
        return
    with backend.batched():
        yield


def _mirrored_backend_class():
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    class _MirroredJournalBackend(JournalFileBackend):
        """JournalFileBackend whose appends are fenced by the study's driver lease and uploaded to the
        study's journal log (one object per append, or per :meth:`batched` block), and which re-binds
        to this process's copy when unpickled (:func:`bind_journal`)."""

        def __init__(self, file_path: str, study: str, mirror_root: str | None) -> None:
            super().__init__(file_path)
            self._study, self._mirror_root = study, mirror_root
            self._batch_depth, self._unmirrored = 0, False

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            guard = driver_lease(self._study)
            if guard is not None:
                guard.check()
            super().append_logs(logs)
            self._unmirrored = True
            if not getattr(self, "_batch_depth", 0):
                self._mirror()

        def _mirror(self) -> None:
            if self._mirror_root and self._unmirrored:
                self._unmirrored = False
                study_mirror(self._study, self._mirror_root).push(Path(self._file_path))

        @contextmanager
        def batched(self) -> Iterator[None]:
            """Upload the appends made within the block as one object when it ends."""
            self._batch_depth = getattr(self, "_batch_depth", 0) + 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if not self._batch_depth:
                    self._mirror()

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            self._batch_depth, self._unmirrored = 0, False
            bound = _BOUND.get(self._study)
            if bound is not None and bound != (self._file_path, self._mirror_root):
                self._file_path, self._mirror_root = bound
                self._lock = JournalFileSymlinkLock(self._file_path)
                self._log_number_offset = {0: 0}
                Path(self._file_path).parent.mkdir(parents=True, exist_ok=True)
                Path(self._file_path).touch()

    _MirroredJournalBackend.__module__ = __name__
    _MirroredJournalBackend.__qualname__ = _MirroredJournalBackend.__name__ = "MirroredJournalBackend"
    return _MirroredJournalBackend


def __getattr__(name: str):
    # defined on first use, so importing this module does not import Optuna
    if name == "MirroredJournalBackend":
        if name not in globals():
            globals()[name] = _mirrored_backend_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
