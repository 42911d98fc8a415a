"""Ray Tune trainables for OMASGAN (installed as ``omasgan.trainables``).

- :mod:`.function_trainables`  one Tune function trainable per stage and one for the pipeline
- :mod:`.trial`                 the stage-by-stage trial logic, checkpoints and reports
- :mod:`.cache`                 the content-addressed, single-flight stage cache
- :mod:`.storage`               the storage primitives: URI file systems and atomic replacement,
                                conditional writes, heartbeated leases (below trainables/ and distributed/)

Names are imported on first use (``from omasgan.trainables import pipeline_trainable`` as before), so
importing the storage room, or the package, does not load Ray, Tune or torch.
"""

from importlib import import_module

_EXPORTS = {
    **{name: "cache" for name in ("StageCache", "StageCacheError", "StageCacheTimeout", "stage_cache_key")},
    **{name: "function_trainables" for name in ("j_trainable", "make_trainable", "pipeline_trainable",
                                                "task1_trainable", "task2_trainable", "task3_trainable")},
    **{name: "trial" for name in ("OBJECTIVE", "FaultInjection", "TrialSettings", "run_trial", "trial_config")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
