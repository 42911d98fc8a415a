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

``root`` is a local path or any URI ``pyarrow.fs`` understands, like the study's other data.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import pyarrow.fs as pafs

from omasgan.trainables.storage import open_filesystem, write_atomic

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
        for trial_id in trial_ids:
            try:
                self.fs.delete_file(self.path(trial_id))
            except (FileNotFoundError, OSError):
                pass
