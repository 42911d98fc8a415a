"""``omasgan reproduce``: the paper's MNIST experiments as one resumable set of studies.

A reproduction at a named budget (:mod:`omasgan.budgets`) is a folder ``<storage>/<name>/`` of seeds
studies over the same held-out digits x seeds, one per *part*:

    omasgan   OMASGAN with the paper's settings (KL-WGAN): Task 1's critic, Task 3's critic and J per unit
              (the paper's ablation, its mean and seed-SD claims)
    fgan      the same with the paper's f-GAN base model (its Figure 9)
    knn, iforest, ae   the baselines, scored in the same protocol

and ``reproduce.json``, the plan.  Every part is an ordinary seeds study (``omasgan results`` and ``omasgan
report`` read the folder like any folder of studies); they share one stage cache.  Running it again with
``--resume`` continues the unfinished parts and skips the finished ones (a finished study resumes to
nothing), so a reproduction survives a killed driver like any study.  The claims table is computed from the
parts' rows afterwards (:mod:`omasgan.distributed.analysis.claims`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from omasgan.atomic_write import write_file_atomic
from omasgan.budgets import FGAN_OVERRIDES, Budget, budget
from omasgan.config import OMASGANConfig
from omasgan.errors import ConfigError

from ..store.study_folder import STUDY_FILE, StudySpec
from .preparation import RunOptions, study_paths

PLAN_FILE = "reproduce.json"
PARTS = ("knn", "iforest", "ae", "omasgan", "fgan")
"""Every part, in the order they run (the baselines first: they take seconds)."""
BASELINE_PARTS = ("knn", "iforest", "ae")


@dataclass
class ReproductionPlan:
    """What a reproduction trains: the budget, its config, the units and the parts."""

    name: str
    budget: str
    base_config: dict[str, Any]
    digits: list[int]
    seeds: list[int]
    parts: list[str] = field(default_factory=lambda: list(PARTS))

    def __post_init__(self) -> None:
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown:
            raise ConfigError(f"--parts {unknown} are not parts of a reproduction; choose from: {', '.join(PARTS)}")
        if not self.parts:
            raise ConfigError(f"--parts is empty; choose from: {', '.join(PARTS)}")

    @property
    def dataset(self) -> str:
        return self.base_config["data"]["dataset"]

    def study(self, part: str) -> StudySpec:
        """The seeds study of ``part``."""
        from omasgan.baselines import BaselineConfig  # torch and scikit-learn: not for building the parser

        base = OMASGANConfig.from_dict(self.base_config)
        options: dict[str, Any] = {"scores": "none", "reproduction": self.name, "part": part}
        if part == "fgan":
            base = base.with_overrides(FGAN_OVERRIDES)
        elif part in BASELINE_PARTS:
            options["baseline"] = BaselineConfig(method=part).to_dict()
        return StudySpec(name=part, kind="seeds", dataset=base.data.dataset, classes=list(self.digits),
                         seeds=list(self.seeds), base_config=base.to_dict(), options=options)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def read(cls, folder: Path) -> "ReproductionPlan":
        path = folder / PLAN_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(**document)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{str(path)!r} is not a reproduction's plan ({type(exc).__name__}: {exc})") from None


def plan_from_budget(name: str, budget_name: str, digits: list[int], seeds: list[int] | None, parts: list[str],
                     data: dict[str, Any], overrides: list[str] | None = None) -> ReproductionPlan:
    """The plan of a new reproduction: ``budget_name``'s config (with ``data`` fields such as data_root,
    and ``overrides``), its default seeds unless ``seeds`` is given."""
    chosen: Budget = budget(budget_name)
    config = chosen.config(**data)
    if overrides:
        config = config.with_overrides(overrides)
    return ReproductionPlan(name=name, budget=budget_name, base_config=config.to_dict(), digits=list(digits),
                            seeds=list(seeds) if seeds else list(chosen.seeds), parts=list(parts))


def reproduction_folders(storage: str, name: str, study_dir: str) -> tuple[Path, str]:
    """(the local folder of the plan and the parts' working copies, the storage root of the parts)."""
    paths = study_paths(storage, name, study_dir)
    return paths.control, paths.data_root


def prepare_plan(plan: ReproductionPlan, folder: Path, resume: bool) -> ReproductionPlan:
    """Write the plan of a new reproduction, or read the stored one to continue (``resume``); a
    reproduction is never silently restarted with another plan."""
    stored = folder / PLAN_FILE
    if resume:
        if not stored.is_file():
            raise ConfigError(f"--resume: {str(folder)!r} holds no reproduction ({PLAN_FILE}); check --storage and --name")
        return ReproductionPlan.read(folder)
    if stored.is_file():
        raise ConfigError(f"{str(folder)!r} already holds a reproduction; pass --resume to continue it, or choose "
                          "another --name")
    folder.mkdir(parents=True, exist_ok=True)
    body = plan.to_json().encode()
    write_file_atomic(stored, lambda handle: handle.write(body))
    return plan


def run_reproduction(plan: ReproductionPlan, options: RunOptions, folder: Path, data_root: str,
                     run_part: Callable[[StudySpec, RunOptions], Any]) -> list[str]:
    """Run (or continue) every part of ``plan`` as a seeds study under ``data_root`` (working copies in
    ``folder``), one after another, through ``run_part(spec, options)``; returns the parts run.  The
    parts share the stage cache ``options.cache`` (default ``<data_root>/cache``)."""
    cache = options.cache or f"{data_root}/cache"
    storage = data_root if "://" in data_root else str(Path(data_root))
    for part in plan.parts:
        spec = plan.study(part)
        started = (folder / part / STUDY_FILE).is_file()
        part_options = replace(options, storage=storage, study_dir=str(folder), cache=cache, resume=started,
                               explicit=options.explicit if started else None)
        print(f"[{plan.name}] part {part}: {'continuing' if started else 'starting'} the seeds study {part} "
              f"({len(plan.digits)} digits x {len(plan.seeds)} seeds)", flush=True)
        run_part(spec, part_options)
    return list(plan.parts)
