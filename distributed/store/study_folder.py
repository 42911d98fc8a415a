"""A study's folder: what it holds and the ``study.json`` that describes it.

Every study (search, sensitivity, seeds, baseline) writes one folder ``<storage>/<name>/``::

    study.json            this module's StudySpec: kind, data set, classes, seeds, base config, options
    results/ scores/ samples/   the Parquet result store (omasgan.distributed.store.result_store)
    optuna-journal.log    search only: the Optuna study (JournalStorage, study name = the study's name)
    tune/                 the Ray Tune experiment (trial folders, checkpoints, experiment state)
    cache/                the stage cache shared by the study's trials
    trials/               each trial's durable record of its finished rounds (see trial_record)
    confirmation.json     a confirmed search only: its confirmation's summary (studies.confirmation)

With ``--storage s3://bucket/path`` (a cluster), all of it lives under ``s3://bucket/path/<name>/``
where every node reaches it, including ``study.json``, a copy of the journal and the driver lease
(see omasgan.distributed.studies.control); the driver keeps working copies of ``study.json`` and the
journal in the local folder ``--study-dir``/<name>, and ``study.json`` records the URI (``options["data_root"]``).

``omasgan results`` and ``omasgan report`` read any folder that holds ``study.json``, or a folder of
such folders; :func:`result_root` says where that study's Parquet tables are.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from omasgan.atomic_write import write_file_atomic
from omasgan.errors import ConfigError

STUDY_FILE = "study.json"
JOURNAL_FILE = "optuna-journal.log"
CONFIRMATION_FILE = "confirmation.json"
TUNE_FOLDER = "tune"
CACHE_FOLDER = "cache"
STUDY_KINDS = ("search", "sensitivity", "seeds", "baseline")


@dataclass
class StudySpec:
    """Everything needed to rerun or resume a study, saved as ``study.json`` when it starts."""

    name: str
    kind: str
    dataset: str
    classes: list[int]
    seeds: list[int]
    base_config: dict[str, Any]
    last_stage: str = "j"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in STUDY_KINDS:
            raise ConfigError(f"study kind {self.kind!r}; choose one of: {', '.join(STUDY_KINDS)}")
        for what, values in (("classes", self.classes), ("seeds", self.seeds)):
            if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ConfigError(f"a study's {what} must be a list of integers; got {values!r}")
        for what, value in (("base_config", self.base_config), ("options", self.options)):
            if not isinstance(value, dict):
                raise ConfigError(f"a study's {what} must be a JSON object; got {type(value).__name__}")
        if not self.classes:
            raise ConfigError("a study needs at least one class; got an empty class list")
        if not self.seeds:
            raise ConfigError("a study needs at least one seed; got an empty seed list")

    @property
    def units(self) -> list[tuple[int, int]]:
        """The (held-out class, seed) units of every trial, class-major."""
        return [(k, s) for k in self.classes for s in self.seeds]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, folder: Path) -> None:
        """Replace ``folder/study.json`` atomically (:func:`omasgan.atomic_write.write_file_atomic`)."""
        folder.mkdir(parents=True, exist_ok=True)
        body = self.to_json().encode()
        write_file_atomic(folder / STUDY_FILE, lambda handle: handle.write(body))

    @classmethod
    def from_json(cls, text: str, where: str) -> "StudySpec":
        """The spec in ``text``; a ConfigError naming ``where`` when it is not a study file."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where!r} is not a valid study file: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{where!r} is not a valid study file: it holds a {type(raw).__name__}, not an object")
        names = [f.name for f in fields(cls)]
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
                   and f.name not in raw]
        unknown = sorted(set(raw) - set(names))
        if missing or unknown:
            what = f"missing {missing}" if missing else f"unknown keys {unknown}"
            raise ConfigError(f"{where!r} is not a valid study file: {what}; a study file has {names}")
        try:
            return cls(**raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where!r} is not a valid study file: {exc}") from None

    @classmethod
    def read(cls, folder: Path) -> "StudySpec":
        """The spec in ``folder/study.json``; a one-line ConfigError when it is missing or malformed."""
        path = Path(folder) / STUDY_FILE
        if not path.is_file():
            raise ConfigError(f"{str(folder)!r} holds no study (no {STUDY_FILE}); give the folder a study wrote")
        return cls.from_json(path.read_text(errors="replace"), str(path))


def result_root(folder: Path) -> str:
    """Where the Parquet tables of the study in ``folder`` live: the folder itself, or the storage URI
    it recorded (a path or URI that ``ResultStore`` takes)."""
    spec = StudySpec.read(folder)
    return str(spec.options.get("data_root") or Path(folder).resolve())


def study_folders(root: Path) -> list[Path]:
    """``root`` itself if it is a study folder, else every study folder directly inside it."""
    root = Path(root)
    if (root / STUDY_FILE).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if (p / STUDY_FILE).is_file()) if root.is_dir() else []


def read_confirmation(folder: Path) -> dict[str, Any] | None:
    """The confirmation summary of the study in ``folder``, or None when it has none."""
    path = Path(folder) / CONFIRMATION_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
