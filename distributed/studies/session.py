"""Where a study's Ray runs: an embedded Ray on this machine, or a cluster it joins (``--address``);
and the largest shape that Ray can take, which the placement check reads before anything is written."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .capacity import ClusterShape
    from .preparation import RunOptions

EMBEDDED = "local"
"""``--address local``: the embedded Ray on this machine, said explicitly (e.g. to resume on a laptop a
study whose stored address is ``auto``)."""


class _TuneInterruptAdvice(logging.Filter):
    """Drops what Tune logs when its run is interrupted (Ctrl+C, a halted study): its advice to call
    ``Tuner.restore`` is not how a study resumes (``--resume --name NAME``, which the study prints), and
    a trial interrupted before its first report has no metrics to fetch."""

    STARTS = ("Stop signal received", "Experiment has been interrupted", "Trials did not complete",
              "Failed to fetch metrics")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.STARTS)


def quiet_tune_interrupt_advice() -> None:
    """Install :class:`_TuneInterruptAdvice` on the handlers of Ray's logger (its records do not
    propagate to the root logger), once."""
    for handler in logging.getLogger("ray").handlers:
        if not any(isinstance(f, _TuneInterruptAdvice) for f in handler.filters):
            handler.addFilter(_TuneInterruptAdvice())


def joins_cluster(options: "RunOptions") -> bool:
    return bool(options.address) and options.address != EMBEDDED


def start_ray(options: "RunOptions") -> None:
    """Join ``--address``, or start an embedded Ray on this machine (no address, or ``local``).

    The embedded instance declares one logical CPU more than the machine has: each running trial's
    coordinator holds a 0.01-CPU bundle and only waits on its units, so the units can use every core."""
    import ray

    # a study checkpoints a few bytes after every stage; Tune's warning about frequent snapshots is noise,
    # and the study prints its own progress lines instead of Tune's tables
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    quiet_tune_interrupt_advice()
    if ray.is_initialized():
        return
    quiet = {"log_to_driver": options.verbose, "include_dashboard": False, "logging_level": logging.WARNING}
    if joins_cluster(options):
        ray.init(address=options.address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
    else:
        ray.init(num_cpus=(os.cpu_count() or 1) + 1, **quiet)


def cluster_shape(options: "RunOptions") -> "ClusterShape":
    """The most the study's Ray can ever hold: this machine, read before an embedded Ray starts; else the
    joined cluster's (joining it: its autoscaler's node types, or the nodes alive now)."""
    import ray

    from .capacity import joined_cluster_shape, this_machine

    if not joins_cluster(options) and not ray.is_initialized():
        return this_machine()
    start_ray(options)
    return joined_cluster_shape()
