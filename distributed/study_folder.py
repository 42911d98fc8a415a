"""A study's folder: what it holds and the ``study.json`` that describes it.

Every study (search, sensitivity, seeds, baseline) writes one folder ``<storage>/<name>/``::

    study.json            this module's StudySpec: kind, data set, classes, seeds, base config, options
    results/ scores/ samples/   the Parquet result store (omasgan.distributed.result_store)
    optuna-journal.log    search only: the Optuna study (JournalStorage, study name = the study's name)
    tune/                 the Ray Tune experiment (trial folders, checkpoints, experiment state)
    cache/                the stage cache shared by the study's trials
    trials/               each trial's durable record of its finished rounds (see trial_record)

With ``--storage s3://bucket/path`` (a cluster), ``results/``, ``scores/``, ``samples/``, ``tune/``,
``cache/`` and ``trials/`` live under ``s3://bucket/path/<name>/`` where every node reaches them, while
``study.json`` and the journal (written only by the driver) stay in the local folder
``--study-dir``/<name>; ``study.json`` records the URI (``options["data_root"]``).

``omasgan results`` and ``omasgan report`` read any folder that holds ``study.json``, or a folder of
such folders; :func:`result_root` says where that study's Parquet tables are.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omasgan.errors import ConfigError

STUDY_FILE = "study.json"
JOURNAL_FILE = "optuna-journal.log"
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
        if not self.classes:
            raise ConfigError("a study needs at least one class; got an empty class list")
        if not self.seeds:
            raise ConfigError("a study needs at least one seed; got an empty seed list")

    @property
    def units(self) -> list[tuple[int, int]]:
        """The (held-out class, seed) units of every trial, class-major."""
        return [(k, s) for k in self.classes for s in self.seeds]

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{STUDY_FILE}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(json.dumps(asdict(self), indent=2))
        os.replace(temporary, folder / STUDY_FILE)

    @classmethod
    def read(cls, folder: Path) -> "StudySpec":
        path = Path(folder) / STUDY_FILE
        if not path.is_file():
            raise ConfigError(f"{str(folder)!r} holds no study (no {STUDY_FILE}); give the folder a study wrote")
        return cls(**json.loads(path.read_text()))


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
