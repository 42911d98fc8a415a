"""Ray Tune function trainables: one per OMASGAN stage and one for the whole pipeline.

    trainable = pipeline_trainable(base_config, cache_root="/shared/omasgan/cache",
                                   cpus_per_trial=2, gpus_per_trial=0.25)
    tune.Tuner(trainable, param_space={"task2.mu": tune.loguniform(0.05, 5)}, ...).fit()

``task1_trainable`` ... ``j_trainable`` run the pipeline up to that stage (upstream stages come from
the stage cache, or are trained and published there), so a Task 1-only search over the divergence
is ``task1_trainable(base)`` with ``{"divergence.name": tune.choice([...])}``.  Every report carries
``objective`` (the best validation AUROC so far), ``stage`` and that stage's validation metrics;
a checkpoint is saved at each stage boundary and a restarted trial resumes at its next stage.

Resources: each trainable is wrapped with ``tune.with_resources`` ({"cpu": cpus_per_trial,
"gpu": gpus_per_trial}, fractional GPUs allowed); inside a trial torch uses the config's ``threads``
(default 1: a part of the run's identity, so give ``cpus_per_trial`` at least that many) and the GPU
Ray assigned (``cuda`` with ``CUDA_VISIBLE_DEVICES`` set by Ray), else the CPU; its data then stays
on that GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from omasgan.config import STAGES, OMASGANConfig

from .trial import FaultInjection, TrialSettings, run_trial


def trial_device() -> str:
    """The GPU Ray assigned to this trial (visible as cuda:0), or the CPU when it assigned none."""
    return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


def make_trainable(
    last_stage: str,
    base_config: OMASGANConfig,
    *,
    cache_root: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    cache_options: dict[str, Any] | None = None,
    fault: FaultInjection | None = None,
):
    """A resource-wrapped Tune function trainable running stages up to ``last_stage``."""
    if last_stage not in STAGES:
        raise ValueError(f"last_stage={last_stage!r}; choose one of: {', '.join(STAGES)}")
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise ValueError(f"cpus_per_trial must be > 0 and gpus_per_trial >= 0; got {cpus_per_trial}, {gpus_per_trial}")
    settings = TrialSettings(
        base=base_config.to_dict(), last_stage=last_stage, cache_root=cache_root,
        cache_options=dict(cache_options or {}), fault=fault,
    )
    def omasgan_trainable(params: dict[str, Any]) -> None:
        context = tune.get_context()
        trial_dir = Path(context.get_trial_dir())
        device = trial_device()

        def report(metrics: dict[str, Any], folder: Path | None) -> None:
            checkpoint = tune.Checkpoint.from_directory(str(folder)) if folder is not None else None
            tune.report({**metrics, "device": device, "torch_threads": torch.get_num_threads()}, checkpoint=checkpoint)

        checkpoint = tune.get_checkpoint()
        kwargs = dict(trial_dir=trial_dir, trial_id=context.get_trial_id(), device=device)
        if checkpoint is None:
            run_trial(params, settings, report, **kwargs)
        else:
            with checkpoint.as_directory() as folder:
                run_trial(params, settings, report, restored=Path(folder), **kwargs)

    omasgan_trainable.__name__ = f"omasgan_{last_stage}"
    omasgan_trainable.__qualname__ = omasgan_trainable.__name__
    return tune.with_resources(omasgan_trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})


def pipeline_trainable(base_config: OMASGANConfig, **options):
    """Task 1 -> 2 -> 3 -> J for one config."""
    return make_trainable("j", base_config, **options)


def task1_trainable(base_config: OMASGANConfig, **options):
    return make_trainable("task1", base_config, **options)


def task2_trainable(base_config: OMASGANConfig, **options):
    return make_trainable("task2", base_config, **options)


def task3_trainable(base_config: OMASGANConfig, **options):
    return make_trainable("task3", base_config, **options)


def j_trainable(base_config: OMASGANConfig, **options):
    return make_trainable("j", base_config, **options)
