"""Ray Tune trainables for OMASGAN (installed as ``omasgan.trainables``).

- :mod:`.function_trainables`  one Tune function trainable per stage and one for the pipeline
- :mod:`.trial`                 the stage-by-stage trial logic, checkpoints and reports
- :mod:`.cache`                 the content-addressed, single-flight stage cache
- :mod:`.storage`               the storage primitives: URI file systems and atomic replacement,
                                conditional writes, heartbeated leases (below trainables/ and distributed/)
"""

from .cache import StageCache, StageCacheError, StageCacheTimeout, stage_cache_key
from .function_trainables import (
    j_trainable,
    make_trainable,
    pipeline_trainable,
    task1_trainable,
    task2_trainable,
    task3_trainable,
)
from .trial import OBJECTIVE, FaultInjection, TrialSettings, run_trial, trial_config

__all__ = [
    "OBJECTIVE",
    "FaultInjection",
    "StageCache",
    "StageCacheError",
    "StageCacheTimeout",
    "TrialSettings",
    "j_trainable",
    "make_trainable",
    "pipeline_trainable",
    "run_trial",
    "stage_cache_key",
    "task1_trainable",
    "task2_trainable",
    "task3_trainable",
    "trial_config",
]
