"""A study's control state on its storage, so that any machine can continue it, and one driver at a time.

With ``--storage`` a URI (``s3://bucket/omasgan``), everything a study needs lives under
``<storage>/<name>/``, next to its results:

    study.json           the StudySpec, created once with a conditional write (a second driver starting
                         the same name loses the race and is refused), never rewritten
    optuna-journal.log   a copy of the search's Optuna journal, uploaded after every append
    driver.lease         the driver lease: which driver runs the study now (a heartbeated Lease)

The driver works on local copies in ``--study-dir/<name>/`` (Optuna's journal backend needs a local
file); ``--resume`` on another machine, or after ``ray down``, downloads them from the URI first.  With
a local ``--storage`` the study folder is the control folder and holds all three itself.

The driver lease keeps a second driver out: a driver creates ``driver.lease`` before it writes
anything and refreshes it every few seconds.  Another driver finding it watches it on its own clock:
if it changes, a live driver holds the study and this one is refused; if it does not change for
``OMASGAN_DRIVER_LEASE_STALE_S`` seconds (default 30), its driver is dead (killed, its machine gone)
and the lease is taken over, with a write conditional on the stale version.  A driver that finds its
own lease taken over stops deleting anything (see :mod:`.runner`).

The Optuna journal's backend re-binds on unpickling: Tune pickles the searcher (with its journal
backend) into the experiment state, and a study resumed elsewhere must append to *this* driver's
copy, not to a path on the machine that started it (:func:`bind_journal`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from omasgan.atomic_write import write_file_atomic
from omasgan.errors import ConfigError

from ..store.study_folder import JOURNAL_FILE, STUDY_FILE, StudySpec

LEASE_FILE = "driver.lease"
LEASE_STALE_ENV = "OMASGAN_DRIVER_LEASE_STALE_S"
DEFAULT_LEASE_STALE_S = 30.0
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


class StudyControl:
    """The control files of one study under its data root (a local folder or a URI)."""

    def __init__(self, name: str, data_root: str) -> None:
        from omasgan.trainables.conditional import conditional_store
        from omasgan.trainables.storage import open_filesystem

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
    def push_journal(self, local: Path) -> None:
        """Upload the local journal as the study's copy (atomically)."""
        from omasgan.trainables.storage import write_atomic

        if local.is_file():
            write_atomic(self.fs, self.journal_path, local.read_bytes())

    def pull_journal(self, local: Path) -> str:
        """Make ``local`` the newest journal of the two (the journal is append-only, so the longer one
        that starts with the other is newer); returns what was done, in words."""
        current = self.store.read(self.journal_path)
        remote = current.data if current is not None else None
        mine = local.read_bytes() if local.is_file() else None
        if remote is None:
            if mine:
                self.push_journal(local)
                return "uploaded this machine's journal (the storage had no copy)"
            return "no journal yet"
        if mine is not None and mine.startswith(remote):
            if len(mine) > len(remote):
                self.push_journal(local)
                return "this machine's journal was ahead of the storage's copy; uploaded it"
            return "journal up to date"
        if mine is not None and not remote.startswith(mine):
            backup = local.with_name(f"{local.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            local.replace(backup)
            warn(f"the local journal {local} differs from the study's copy {self.where(self.journal_path)}; "
                 f"kept it as {backup} and took the study's copy")
        local.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(local, lambda handle: handle.write(remote))
        return f"restored the journal from {self.where(self.journal_path)}"

    # ---- the driver lease ---------------------------------------------------------------------
    def acquire_lease(self, *, stale_after_s: float | None = None, poll_s: float = 0.5):
        """Take the study's driver lease (a started, heartbeated :class:`Lease`).

        Raises ConfigError, naming the holder, when another driver's lease changes while this one
        watches it (a live driver).  A lease that does not change for ``stale_after_s`` seconds of this
        process's clock is taken over."""
        from omasgan.trainables.conditional import Lease, StaleWatch, read_lease

        stale_after_s = lease_stale_after_s() if stale_after_s is None else stale_after_s
        watch = StaleWatch(stale_after_s)
        first: tuple[dict[str, Any], str] | None = None
        while True:
            lease = Lease(self.store, self.lease_path, heartbeat_s=min(5.0, stale_after_s / 4),
                          info={"study": self.name})
            if lease.acquire():
                return lease
            current = read_lease(self.store, self.lease_path)
            if current is None:
                continue  # released between the two calls
            document, version = current
            holder = (f"{document.get('owner', '?')} (host {document.get('host', '?')}, "
                      f"pid {document.get('pid', '?')})")
            if first is None:
                first = current
                say(self.name, f"another driver's lease is on the study: {holder}; watching its heartbeat for "
                               f"up to {stale_after_s:.0f} s to see whether it is alive")
            elif version != first[1]:
                raise ConfigError(
                    f"study {self.name!r} is being run by another driver, {holder}: its lease "
                    f"{self.where(self.lease_path)} is being refreshed; stop that driver or wait until it ends "
                    f"(one driver per study)")
            silent = watch.unchanged_for(version)
            if silent > stale_after_s:
                if lease.take_over(version):
                    say(self.name, f"took over the lease of {holder}: unchanged for {silent:.0f} s, so its driver "
                                   "is gone")
                    return lease
                first = None
                continue
            time.sleep(poll_s)


# ---------------------------------------------------------------- the Optuna journal, mirrored

_BOUND: dict[str, tuple[str, str | None]] = {}


def bind_journal(study: str, local: Path, mirror_root: str | None) -> None:
    """Make every journal backend of ``study`` unpickled in this process use ``local`` (and upload
    to ``mirror_root``'s journal copy), wherever the pickling process kept its file."""
    _BOUND[study] = (str(local), mirror_root)


def journal_storage(study: str, local: Path, mirror_root: str | None):
    """An Optuna JournalStorage on ``local`` whose every append is also uploaded to the copy under
    ``mirror_root`` (None: a local study, no copy)."""
    import optuna

    bind_journal(study, local, mirror_root)
    local.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(__getattr__("MirroredJournalBackend")(str(local), study, mirror_root))


def _mirrored_backend_class():
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    class _MirroredJournalBackend(JournalFileBackend):
        """JournalFileBackend that uploads the whole file to the study's copy after each append, and
        re-binds to this process's copy when unpickled (:func:`bind_journal`)."""

        def __init__(self, file_path: str, study: str, mirror_root: str | None) -> None:
            super().__init__(file_path)
            self._study, self._mirror_root = study, mirror_root

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            super().append_logs(logs)
            if self._mirror_root:
                StudyControl(self._study, self._mirror_root).push_journal(Path(self._file_path))

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
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

