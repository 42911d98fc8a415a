"""The three studies: ``search`` (Tuner + OptunaSearch), ``sensitivity`` (a grid, one parameter at a
time) and ``seeds`` (one config over classes x seeds).

Each study:

1. checks its whole input (:func:`prepare_study`) before Ray starts: classes the data set has, a
   known parameter, a writable storage, a folder that holds a study when resuming;
2. writes ``study.json`` and starts (embedded) or joins (``--address``) Ray;
3. runs one Tune experiment whose trials run their (class, seed) units as Ray tasks
   (:mod:`.study_trainable`), every unit writing its rows to the Parquet store as it finishes a stage;
4. prints live progress, then a final table computed from the Parquet rows, and the paths.

A search's Optuna study lives in ``optuna-journal.log`` in the study folder; ``--resume`` restores
the Tune experiment (whose searcher state holds that study), so finished trials are not rerun and
unfinished ones resume at their next stage.  Result files are named per (trial, unit, stage), so a
rerun unit replaces its file; after the experiment, files of trials the experiment does not know
(a trial started in the instant before the driver was killed, and never recorded) are removed, so
the dataset ends with exactly one row set per trial, unit, stage and split.  A trial's durable
record (:mod:`.trial_record`) and the searcher (:mod:`.journal_search`) cover a driver killed between
a trial's last report and Tune's next experiment snapshot.
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omasgan.config import STAGES, OMASGANConfig
from omasgan.errors import ConfigError

from .study_folder import CACHE_FOLDER, JOURNAL_FILE, STUDY_FILE, TUNE_FOLDER, StudySpec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SCHEDULERS = ("fifo", "asha")


@dataclass
class RunOptions:
    """How a study runs (not what it computes): where, on what, how parallel."""

    storage: str = "studies"
    study_dir: str = "studies"
    address: str | None = None
    cpus_per_unit: float = 1.0
    gpus_per_unit: float = 0.0
    parallel_units: int | None = None
    max_concurrent: int = 2
    max_failures: int = 2
    resume: bool = False
    verbose: bool = False
    report: bool = False
    fault: Any = None  # trainables.FaultInjection, for tests

    def __post_init__(self) -> None:
        if self.cpus_per_unit <= 0:
            raise ConfigError(f"--cpus-per-unit must be > 0; got {self.cpus_per_unit}")
        if self.gpus_per_unit < 0:
            raise ConfigError(f"--gpus-per-unit must be >= 0; got {self.gpus_per_unit}")
        if self.parallel_units is not None and self.parallel_units < 1:
            raise ConfigError(f"--parallel-units must be >= 1; got {self.parallel_units}")
        if self.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent must be >= 1; got {self.max_concurrent}")
        if self.max_failures < 0:
            raise ConfigError(f"--max-failures must be >= 0; got {self.max_failures}")


@dataclass
class StudyPaths:
    """The local control folder (study.json, journal) and the data root every node reaches."""

    control: Path
    data_root: str

    @property
    def tune_root(self) -> str:
        return f"{self.data_root}/{TUNE_FOLDER}"

    @property
    def cache_root(self) -> str:
        return f"{self.data_root}/{CACHE_FOLDER}"

    @property
    def journal(self) -> Path:
        return self.control / JOURNAL_FILE


def study_paths(storage: str, name: str, study_dir: str = "studies") -> StudyPaths:
    if "://" in storage:
        return StudyPaths(Path(study_dir).resolve() / name, f"{storage.rstrip('/')}/{name}")
    control = Path(storage).resolve() / name
    return StudyPaths(control, str(control))


def parse_int_list(text: str, what: str) -> list[int]:
    """``"0-3,7"`` -> [0, 1, 2, 3, 7] (order kept, duplicates dropped)."""
    values: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(-?\d+)(?:-(\d+))?", part)
        if not match:
            raise ConfigError(f"{what} {text!r}: {part!r} is not an integer or a range like 0-9")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise ConfigError(f"{what} {text!r}: the range {part!r} is empty")
        values += [v for v in range(low, high + 1) if v not in values]
    if not values:
        raise ConfigError(f"{what} is empty; give at least one, e.g. 0 or 0-9 or 0,3,5")
    return values


def parse_float_list(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what} {text!r} must be comma-separated numbers, e.g. 0.1,0.3,1") from None
    if not values:
        raise ConfigError(f"{what} is empty; give comma-separated numbers, e.g. 0.1,0.3,1")
    return values


def check_classes(base: OMASGANConfig, classes: list[int]) -> None:
    """Every class exists in the data set, and each unit's data request passes its checks."""
    from omasgan.data import dataset_classes
    from omasgan.run import validate_run

    d = base.data
    if d.protocol == "ood":
        raise ConfigError("studies iterate over held-out classes; protocol 'ood' has none (use loo or occ)")
    have = dataset_classes(d.dataset, data_root=d.data_root, tabular_path=d.tabular_path, label_column=d.label_column)
    missing = [k for k in classes if k not in have]
    if missing:
        raise ConfigError(f"class(es) {missing} are not in data set {d.dataset!r}; it has classes "
                          f"{', '.join(map(str, have))}")
    for k in classes:
        validate_run(base.with_overrides({"data.holdout": k}))


def check_writable(storage: str) -> None:
    """Create ``storage`` if needed and write and delete a probe file there; a clear error if not."""
    probe = f".omasgan-probe-{uuid.uuid4().hex}"
    try:
        if "://" in storage:
            import pyarrow.fs as pafs

            fs, base = pafs.FileSystem.from_uri(storage)
            fs.create_dir(base, recursive=True)
            with fs.open_output_stream(f"{base}/{probe}") as stream:
                stream.write(b"ok")
            fs.delete_file(f"{base}/{probe}")
        else:
            os.makedirs(storage, exist_ok=True)
            path = Path(storage) / probe
            path.write_text("ok")
            path.unlink()
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable
        raise ConfigError(f"storage {storage!r} is not writable: {exc}") from None


def prepare_study(spec: StudySpec, options: RunOptions) -> StudyPaths:
    """Check everything that can be checked without Ray, then write (or, on resume, read) study.json.

    Returns the study's paths.  On ``resume``, ``spec`` gives only the name; the stored spec wins."""
    if not NAME_PATTERN.match(spec.name):
        raise ConfigError(f"study name {spec.name!r} must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    if options.resume:
        paths = study_paths(options.storage, spec.name, options.study_dir)
        if not (paths.control / STUDY_FILE).is_file():
            raise ConfigError(f"--resume: {str(paths.control)!r} holds no study (no {STUDY_FILE}); "
                              f"check --storage and --name")
        stored = StudySpec.read(paths.control)
        if stored.kind != spec.kind:
            raise ConfigError(f"--resume: {str(paths.control)!r} holds a {stored.kind} study, not a {spec.kind} study")
        check_writable(options.storage)
        return paths
    base = OMASGANConfig.from_dict(spec.base_config)
    check_classes(base, spec.classes)
    scores = spec.options.get("scores", "test")
    if scores not in ("none", "test", "all"):
        raise ConfigError(f"scores {scores!r} is not allowed; choose one of: none, test, all")
    if spec.last_stage not in STAGES:
        raise ConfigError(f"last stage {spec.last_stage!r}; choose one of: {', '.join(STAGES)}")
    check_writable(options.storage)
    paths = study_paths(options.storage, spec.name, options.study_dir)
    if (paths.control / STUDY_FILE).exists():
        raise ConfigError(f"{str(paths.control)!r} already holds a study; pass --resume to continue it, "
                          f"or choose another --name")
    spec = replace(spec, options={**spec.options, "data_root": paths.data_root if "://" in paths.data_root else None})
    spec.write(paths.control)
    return paths


def default_study_name(kind: str, dataset: str) -> str:
    return f"{kind}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass
class StudyOutcome:
    """What a finished study hands back: its folder, the Parquet rows' store, and Tune's results."""

    spec: StudySpec
    paths: StudyPaths
    trial_ids: list[str]
    trial_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    trial_errors: dict[str, str] = field(default_factory=dict)
    removed_files: int = 0
    compaction: Any = None
    """The end-of-study compaction's ``compaction.CompactionStats`` (None when it did not run)."""

    @property
    def store(self):
        """The study's :class:`~.result_store.ResultStore`."""
        from .result_store import ResultStore

        return ResultStore(self.paths.data_root)

    def rows(self, columns: list[str] | None = None):
        """This study's result rows as a pandas DataFrame: ``columns`` (default: every column but the
        config and library versions, i.e. what the study tables read), read from the Parquet scan."""
        import pyarrow.dataset as ds

        from .result_store import dataset_schema

        if columns is None:
            columns = [n for n in dataset_schema().names
                       if not n.startswith("cfg_") and n not in ("config_json", "versions_json")]
        return self.store.read(filter=ds.field("study") == self.spec.name, columns=columns).to_pandas()


def finite_mean(values) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else float("nan")
