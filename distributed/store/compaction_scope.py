"""What a compaction merges and what it drops: the small files no trial will write again, and the rows
of trials an experiment does not know.

While trials may still write (``omasgan compact`` on a running study), only *settled* small files
are merged (:func:`settled_by_records`): those of rounds the trial's durable record
(:mod:`.trial_record`) holds as finished, which no retry or resume writes again.  At the end of a
study every file is settled, and the rows of trials the experiment does not know (see
``omasgan.distributed.studies.runner.remove_orphan_files``) are dropped (:class:`OrphanRule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pyarrow.compute as pc
import pyarrow.dataset as ds

from .result_schema import parse_small_file, partition_of
from .trial_record import TrialRecords

DETECTOR_STAGES = {"task1": "task1", "task3": "task3", "final": "j"}
"""The stage round that writes each OMASGAN detector's scores (a baseline's method: ``baseline``)."""


@dataclass
class OrphanRule:
    """Which rows a compaction drops: those of ``study``, in the partitions of ``seeds`` (None: every
    seed), whose trial id is not in ``keep`` (an experiment's own trials, see
    ``omasgan.distributed.studies.runner.remove_orphan_files``)."""

    study: str
    keep: set[str]
    seeds: list[int] | None = None

    def expression(self, folder: str) -> pc.Expression | None:
        """The rows to drop in the partition ``folder`` (``dataset=D/holdout_class=K/seed=S``)."""
        partition = partition_of(folder)
        if self.seeds is not None and (partition is None or partition[2] not in {str(s) for s in self.seeds}):
            return None
        return (ds.field("study") == self.study) & ~ds.field("trial_id").isin(sorted(self.keep))


def settled_by_records(root: str, spec: Any, confirmed: bool = False) -> Callable[[str, str], bool] | None:
    """Which small files of the study ``spec`` (a StudySpec) no trial will write again, for a
    compaction while the study may run: in the partitions of the study's own seeds, files of the
    rounds each trial's durable record holds as finished; in other partitions (a confirmation's fresh
    seeds, whose rows carry the confirmed trial's id), every file once the confirmation has finished
    (``confirmed``), none before.  None (every file) for a ``baseline`` study, whose units are
    written once per command.  Files of other studies in the store count as settled."""
    if spec.kind == "baseline":
        return None
    records = TrialRecords(root)
    rounds: dict[str, set[str]] = {}
    for trial_id in records.trial_ids():
        record = records.read(trial_id)
        rounds[trial_id] = set(record["rounds"]) if record else set()
    own_seeds = {str(s) for s in spec.seeds}

    def settled(table: str, relative_path: str) -> bool:
        folder, _, name = relative_path.rpartition("/")
        named = parse_small_file(name)
        if named is None or named.study != spec.name:
            return True
        partition = partition_of(folder)
        if partition is None or partition[2] not in own_seeds:
            return confirmed
        stage = named.row_set if table == "results" else DETECTOR_STAGES.get(named.row_set, "baseline")
        return stage in rounds.get(named.trial_id, set())

    return settled
