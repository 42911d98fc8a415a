"""A study trial's durable record: the stage rounds it finished and what it reported after each.

Tune's own checkpoint of a trial becomes the restore point only once the driver has processed the
trial's result and saved the experiment state.  A driver killed in between loses that checkpoint,
although the round's Parquet rows are written and the Optuna journal may already hold the trial's
final value.  So the trainable also writes this record, atomically, after every round and before it
reports; a restored trial replays the rounds its record holds (it reports them again, it does not
train them again) and trains only the rest.

Layout: ``<data root>/trials/<trial id>.json``, a JSON object::

    {"rounds": [...], "outcomes": {"<class>,<seed>": UnitOutcome}, "objective": float,
     "reports": {"<round>": the metrics reported after that round}}

The training ledger sits next to it: every unit that trained a stage itself (rather than taking it
from the stage cache) adds one file ``<data root>/trials/<trial id>.training/<class>-<seed>.<uuid>.json``
holding ``{"holdout", "seed", "trained": {stage: count}, "host"}``.  A file per event, never rewritten,
so units on many nodes add to it at once and an attempt that later fails keeps its count: the ledger
says how often each stage of each unit was trained, across every retry and resume.

``root`` is a local path or any URI ``pyarrow.fs`` understands, like the study's other data.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any, Iterable

import pyarrow.fs as pafs

from omasgan.trainables.storage.filesystems import open_filesystem, write_atomic

TRIALS_FOLDER = "trials"


class TrialRecords:
    """Read, write and delete the records of one study's trials under ``<root>/trials``."""

    def __init__(self, root: str) -> None:
        self.fs, base = open_filesystem(root)
        self.folder = f"{base}/{TRIALS_FOLDER}"

    def path(self, trial_id: str) -> str:
        return f"{self.folder}/{trial_id}.json"

    def read(self, trial_id: str) -> dict[str, Any] | None:
        """The trial's record, or None when it has none (or an unreadable one)."""
        try:
            with self.fs.open_input_stream(self.path(trial_id)) as handle:
                record = json.loads(handle.read().decode())
        except (FileNotFoundError, OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("rounds"), list) else None

    def write(self, trial_id: str, record: dict[str, Any]) -> None:
        """Replace the trial's record atomically (write a temporary file, then move it)."""
        write_atomic(self.fs, self.path(trial_id), json.dumps(record).encode())

    def trial_ids(self) -> list[str]:
        if self.fs.get_file_info(self.folder).type != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.folder))
        return sorted(i.base_name[: -len(".json")] for i in infos
                      if i.type == pafs.FileType.File and i.base_name.endswith(".json")
                      and not i.base_name.startswith("."))

    def delete(self, trial_ids: Iterable[str]) -> None:
        """Delete the records and training ledgers of ``trial_ids``."""
        for trial_id in trial_ids:
            try:
                self.fs.delete_file(self.path(trial_id))
            except (FileNotFoundError, OSError):
                pass
            if self.fs.get_file_info(self.ledger(trial_id)).type == pafs.FileType.Directory:
                self.fs.delete_dir(self.ledger(trial_id))

    # ---- the training ledger -------------------------------------------------------------------
    def ledger(self, trial_id: str) -> str:
        return f"{self.folder}/{trial_id}.training"

    def record_training(self, trial_id: str, holdout: int, seed: int, trained: dict[str, int]) -> None:
        """Add one event: unit (``holdout``, ``seed``) of ``trial_id`` trained these stages this often."""
        event = {"holdout": int(holdout), "seed": int(seed), "host": socket.gethostname(),
                 "trained": {stage: int(n) for stage, n in trained.items() if n}}
        path = f"{self.ledger(trial_id)}/{int(holdout)}-{int(seed)}.{uuid.uuid4().hex}.json"
        write_atomic(self.fs, path, json.dumps(event).encode())

    def training_counts(self, trial_ids: Iterable[str] | None = None) -> dict[tuple[str, int, int], dict[str, int]]:
        """``{(trial id, class, seed): {stage: times trained}}`` summed over the ledgers of
        ``trial_ids`` (default: every trial with a ledger)."""
        if self.fs.get_file_info(self.folder).type != pafs.FileType.Directory:
            return {}
        if trial_ids is None:
            infos = self.fs.get_file_info(pafs.FileSelector(self.folder))
            trial_ids = [i.base_name[: -len(".training")] for i in infos
                         if i.type == pafs.FileType.Directory and i.base_name.endswith(".training")]
        counts: dict[tuple[str, int, int], dict[str, int]] = {}
        for trial_id in trial_ids:
            folder = self.ledger(trial_id)
            if self.fs.get_file_info(folder).type != pafs.FileType.Directory:
                continue
            for info in self.fs.get_file_info(pafs.FileSelector(folder)):
                if info.type != pafs.FileType.File or info.base_name.startswith(".") \
                        or not info.base_name.endswith(".json"):
                    continue
                with self.fs.open_input_stream(info.path) as handle:
                    event = json.loads(handle.read().decode())
                unit = counts.setdefault((trial_id, int(event["holdout"]), int(event["seed"])), {})
                for stage, n in event["trained"].items():
                    unit[stage] = unit.get(stage, 0) + int(n)
        return counts
