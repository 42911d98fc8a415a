"""A checkpoint per stage: state dicts, the config, metrics, history and library versions.

Format (a ``torch.save`` file, loaded with ``weights_only=True``)::

    {"format": "omasgan-stage/1", "stage": "task1", "config": {...nested config...},
     "sample_shape": [C, H, W], "is_image": true, "state_dicts": {"generator": ..., ...},
     "history": {...}, "metrics": {...}, "wall_time_s": 12.3, "steps": 400,
     "versions": {...}, "code_version": "omasgan-0.1.0", "extra": {...}}

Files are written to a hidden temporary name in the same folder and renamed into place
(:mod:`omasgan.atomic_write`), so a reader never sees a half-written checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic_write import write_file_atomic
from .config import OMASGANConfig
from .errors import OMASGANError
from .provenance import CODE_VERSION, library_versions
from .stages.common import StageResult, new_critic, new_generator

FORMAT = "omasgan-stage/1"

STAGE_MODULES: dict[str, dict[str, str]] = {
    "task1": {"generator": "generator", "discriminator": "critic"},
    "task2": {"boundary": "generator", "critic": "critic"},
    "task3": {"generator": "generator", "critic": "critic"},
    "j": {"detector": "critic", "critic": "critic", "boundary": "generator"},
}
"""For each stage, the modules it may hold and whether each is of the generator or the critic family.
A name with a numeric suffix (``boundary_1``, ``critic_2``: the K boundary models of
``task2.boundaries``) is of its base name's family.  J holds ``critic`` (Task 3's, for
``j.score = critic | fusion``) and ``boundary`` models (refined ones, ``j.refine_steps > 0``) only
in those variants."""


def module_family(stage: str, name: str) -> str | None:
    """"generator" or "critic" for a module ``name`` of ``stage``; None when the stage has no such module."""
    families = STAGE_MODULES.get(stage, {})
    if name in families:
        return families[name]
    base, _, suffix = name.rpartition("_")
    return families.get(base) if suffix.isdigit() else None


class CheckpointError(OMASGANError):
    """A checkpoint file is missing, truncated, of another format or does not fit its config."""


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a hidden temporary beside ``path``, fsync, then rename over ``path``
    (:func:`omasgan.atomic_write.write_file_atomic`)."""
    write_file_atomic(path, lambda handle: torch.save(obj, handle))


def stage_payload(
    result: StageResult,
    config: OMASGANConfig,
    sample_shape: tuple[int, ...],
    is_image: bool,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dictionary of one stage (state dicts moved to the CPU)."""
    return {
        "format": FORMAT,
        "stage": result.stage,
        "config": config.to_dict(),
        "sample_shape": list(sample_shape),
        "is_image": bool(is_image),
        "state_dicts": {
            name: {k: v.detach().cpu() for k, v in module.state_dict().items()}
            for name, module in result.modules.items()
        },
        "history": result.history,
        "metrics": metrics or {},
        "wall_time_s": result.wall_time_s,
        "steps": result.steps,
        "versions": library_versions(),
        "code_version": CODE_VERSION,
        "extra": extra or {},
    }


def save_stage(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a payload made by :func:`stage_payload` atomically."""
    atomic_torch_save(payload, path)


def read_payload(path: str | Path) -> dict[str, Any]:
    """Read and check a stage checkpoint file (no modules built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or not a torch file
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an {FORMAT} file")
    if payload.get("stage") not in STAGE_MODULES:
        raise CheckpointError(f"checkpoint {str(path)!r} names an unknown stage {payload.get('stage')!r}")
    return payload


def modules_from_payload(payload: dict[str, Any], device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """Rebuild a stage's modules from its checkpoint payload, in eval mode on ``device``."""
    config = OMASGANConfig.from_dict(payload["config"])
    shape, is_image = tuple(payload["sample_shape"]), bool(payload["is_image"])
    modules: dict[str, nn.Module] = {}
    stage = payload["stage"]
    state_dicts = payload.get("state_dicts", {})
    missing = [name for name in STAGE_MODULES[stage] if name not in state_dicts and _required(stage, name)]
    if missing:
        raise CheckpointError(f"checkpoint of stage {stage!r} does not fit its config: it has no module {missing[0]!r}")
    for name, state in state_dicts.items():
        family = module_family(stage, name)
        if family is None:
            raise CheckpointError(f"checkpoint of stage {stage!r} holds an unknown module {name!r}")
        module = new_generator(config.network, shape, is_image) if family == "generator" else new_critic(
            config.network, shape
        )
        try:
            module.load_state_dict(state)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint of stage {stage!r} does not fit its config: {exc}") from None
        modules[name] = module.to(device).eval()
    return modules


def _required(stage: str, name: str) -> bool:
    """Every module of a stage is required except J's variant-only ones."""
    return not (stage == "j" and name != "detector")


def load_stage(path: str | Path, device: str | torch.device = "cpu") -> tuple[StageResult, dict[str, Any]]:
    """A :class:`StageResult` rebuilt from a checkpoint file, and the file's payload."""
    payload = read_payload(path)
    result = StageResult(
        payload["stage"],
        modules_from_payload(payload, device),
        payload.get("history", {}),
        float(payload.get("wall_time_s", 0.0)),
        int(payload.get("steps", 0)),
    )
    return result, payload
