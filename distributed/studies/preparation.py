"""The three studies: ``search`` (Tuner + OptunaSearch), ``sensitivity`` (a grid, one parameter at a
time) and ``seeds`` (one config over classes x seeds).

Each study:

1. checks its whole input (:func:`prepare_study`) before Ray starts: classes the data set has, a
   known parameter, a writable storage, a name not in use (locally and on the storage URI), a study
   to continue when resuming;
2. writes ``study.json`` (on resume: reads it, wherever the study started, and restores its run
   options), takes the study's driver lease (:mod:`.control`), and starts (embedded) or joins
   (``--address``) Ray;
3. runs one Tune experiment whose trials run their (class, seed) units as Ray tasks
   (:mod:`.trainable`), every unit writing its rows to the Parquet store as it finishes a stage;
4. prints live progress, then a final table computed from the Parquet rows, and the paths.

A search's Optuna study lives in ``optuna-journal.log`` in the study folder; ``--resume`` restores
the Tune experiment (whose searcher state holds that study), so finished trials are not rerun and
unfinished ones resume at their next stage.  Result files are named per (trial, unit, stage), so a
rerun unit replaces its file; after the experiment, files of trials the experiment does not know
(a trial started in the instant before the driver was killed, and never recorded) are removed, so
the dataset ends with exactly one row set per trial, unit, stage and split.  A trial's durable
record (:mod:`omasgan.distributed.store.trial_record`) and the searcher (:mod:`.journal_search`) cover a
driver killed between a trial's last report and Tune's next experiment snapshot.
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

from ..store.study_folder import CACHE_FOLDER, JOURNAL_FILE, STUDY_FILE, TUNE_FOLDER, StudySpec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SCHEDULERS = ("fifo", "asha")


RESTORED_OPTIONS = {"address": "--address", "cpus_per_unit": "--cpus-per-unit", "gpus_per_unit": "--gpus-per-unit",
                    "parallel_units": "--parallel-units", "max_concurrent": "--max-concurrent",
                    "max_failures": "--max-failures", "cache": "--cache", "max_failed_trials": "--max-failed-trials",
                    "placement_timeout_s": "--placement-timeout"}
"""Run options a study records in ``study.json`` (``options["run"]``) and ``--resume`` restores."""


@dataclass
class RunOptions:
    """How a study runs (not what it computes): where, on what, how parallel.

    ``explicit`` names the options the user gave (the command line's); None means all of them (a
    RunOptions built in Python).  On resume, options not given are restored from ``study.json``."""

    storage: str = "studies"
    study_dir: str = "studies"
    address: str | None = None
    cpus_per_unit: float = 1.0
    gpus_per_unit: float = 0.0
    parallel_units: int | None = None
    max_concurrent: int = 2
    max_failures: int = 2
    cache: str | None = None
    """The stage cache's root (a folder or a URI every node reaches); None: the study's own
    ``<storage>/<name>/cache``.  Studies given one cache share every stage their keys share."""
    max_failed_trials: int | None = None
    """The failure budget: halt the study once this many trials have failed (None: never; see .guards)."""
    placement_timeout_s: float = 1800.0
    """Halt the study when a trial has waited this long for its placement group with no trial running."""
    resume: bool = False
    verbose: bool = False
    report: bool = False
    fault: Any = None  # trainables.FaultInjection, for tests
    explicit: frozenset[str] | None = None

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
        if self.max_failed_trials is not None and self.max_failed_trials < 1:
            raise ConfigError(f"--max-failed-trials must be >= 1 (the failed trials that halt the study); "
                              f"got {self.max_failed_trials}")
        if not (self.placement_timeout_s > 0 and math.isfinite(self.placement_timeout_s)):
            raise ConfigError(f"--placement-timeout must be a number of seconds > 0; got {self.placement_timeout_s}")
        for what, where in (("--storage", self.storage), ("--cache", self.cache)):
            check_uri_has_no_credentials(what, where)
        if self.cache is not None:
            if not self.cache.strip():
                raise ConfigError("--cache must name a folder or a URI; got an empty string")
            if "://" not in self.cache:  # the workers' working folders differ from the driver's
                self.cache = str(Path(self.cache).expanduser().resolve())


def check_uri_has_no_credentials(what: str, uri: str | None) -> None:
    """A storage URI must not carry credentials (``s3://KEY:SECRET@bucket/path``): they would be stored in
    study.json and printed in every progress line.  The error shows the URI with them masked."""
    if not uri or "://" not in uri:
        return
    from urllib.parse import urlsplit

    scheme, _, rest = uri.partition("://")
    location = rest.split("?", 1)[0]
    before, at, after = location.partition("@")
    parts = urlsplit(uri)
    # a secret key may hold "/", which ends the URI's authority early: look for KEY:SECRET@ anywhere before it too
    if parts.username is None and parts.password is None and not (at and ":" in before):
        return
    masked = f"{scheme}://***@{after if at else location.split('@', 1)[-1]}"
    raise ConfigError(f"{what} {masked}: the URI carries credentials; remove them from it and give them the usual "
                      f"way (an instance profile on the cluster, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                      f"~/.aws/credentials or AWS_PROFILE): the URI is written to study.json and printed")


def restore_run_options(options: RunOptions, stored: dict[str, Any]) -> tuple[RunOptions, list[str], list[str]]:
    """``options`` with the options the user did not give taken from ``stored`` (a study's
    ``options["run"]``); also the restored ones and the given ones that differ from the stored, in words."""
    given = set(RESTORED_OPTIONS) if options.explicit is None else set(options.explicit)
    restored, differing, changes = [], [], {}
    for name, flag in RESTORED_OPTIONS.items():
        if name not in stored:
            continue
        if name in given:
            if getattr(options, name) != stored[name]:
                differing.append(f"{flag} {getattr(options, name)} differs from the study's {stored[name]} "
                                 f"(study.json); using {getattr(options, name)}")
        else:
            changes[name] = stored[name]
            if stored[name] is not None:
                restored.append(f"{flag} {stored[name]}")
    return replace(options, **changes), restored, differing


@dataclass
class StudyPaths:
    """The local control folder (study.json, journal) and the data root every node reaches."""

    control: Path
    data_root: str

    @property
    def remote(self) -> bool:
        """Whether the data root is a URI (the control folder then holds working copies)."""
        return "://" in self.data_root

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

            from omasgan.trainables.storage.filesystems import ensure_folder

            fs, base = pafs.FileSystem.from_uri(storage)
            ensure_folder(fs, base)
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


@dataclass
class PreparedStudy:
    """A checked study, its folders, its run options (restored on resume) and its driver lease."""

    spec: StudySpec
    options: RunOptions
    paths: StudyPaths
    lease: Any = None
    shape: Any = None
    """The cluster's maximum as the placement check read it (capacity.ClusterShape)."""

    def close(self) -> None:
        """Release the driver lease (only if this driver still holds it)."""
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def __enter__(self) -> "PreparedStudy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"study name {name!r} must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")


def prepare_study(spec: StudySpec, options: RunOptions) -> PreparedStudy:
    """Check everything that can be checked without Ray, take the study's driver lease, and write (or,
    on resume, read and restore) study.json; nothing is written when a check fails.

    A new study is refused when its name is in use: a study.json in the local folder, or any file
    under the storage URI's folder of that name.  On ``resume``, ``spec`` gives only the name; the
    stored spec wins, and run options not given are restored from it (a given one that differs is
    named in a warning).  The caller closes the returned study (releasing the lease)."""
    from .control import StudyControl, lease_stale_after_s, placement_grace_s, say, warn

    _check_name(spec.name)
    # the environment's time settings are checked here, before anything is written
    lease_stale_after_s()
    placement_grace_s()
    if options.resume:
        check_writable(options.storage)
        paths = study_paths(options.storage, spec.name, options.study_dir)
        control = StudyControl(spec.name, paths.data_root)
        stored = control.read_spec()
        if stored is None and (paths.control / STUDY_FILE).is_file():
            stored = StudySpec.read(paths.control)  # a study started before study.json lived on the storage
        if stored is None:
            where = paths.data_root if paths.remote else str(paths.control)
            raise ConfigError(f"--resume: {where!r} holds no study (no {STUDY_FILE}); check --storage and --name")
        if stored.kind != spec.kind:
            raise ConfigError(f"--resume: {paths.data_root!r} holds a {stored.kind} study, not a {spec.kind} study")
        options, restored, differing = restore_run_options(options, stored.options.get("run", {}))
        if stored.options.get("run", {}).get("storage") not in (None, options.storage):
            differing.append(f"--storage {options.storage} differs from the study's {stored.options['run']['storage']}")
        shape = check_placement(stored, options)
        lease = control.acquire_lease()
        try:
            if paths.remote:
                stored.write(paths.control)
                if control.read_spec() is None:
                    control.create_spec(stored)
                if stored.kind == "search":
                    say(spec.name, control.pull_journal(paths.journal))
            if restored:
                say(spec.name, f"run options restored from {STUDY_FILE}: {', '.join(restored)}")
            for line in differing:
                warn(line)
        except BaseException:
            lease.release()
            raise
        return PreparedStudy(stored, options, paths, lease, shape)

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
    control = StudyControl(spec.name, paths.data_root)
    if paths.remote:
        if control.read_spec() is not None:
            raise ConfigError(f"{paths.data_root!r} already holds a study named {spec.name!r}; pass --resume to "
                              f"continue it (from any machine), or choose another --name")
        files = control.contents()
        if files:
            raise ConfigError(f"{paths.data_root!r} already holds files of an earlier study (e.g. {files[0]}); "
                              f"choose another --name, or remove that folder")
    shape = check_placement(spec, options)
    run = {name: getattr(options, name) for name in RESTORED_OPTIONS}
    run["storage"] = options.storage
    spec = replace(spec, options={**spec.options, "data_root": paths.data_root if paths.remote else None,
                                  "run": run})
    if not control.create_spec(spec):
        raise ConfigError(f"{paths.data_root!r} already holds a study named {spec.name!r} (another driver created "
                          f"it just now); pass --resume to continue it, or choose another --name")
    lease = control.acquire_lease()
    if paths.remote:
        spec.write(paths.control)
    return PreparedStudy(spec, options, paths, lease, shape)


def warn_driver_credentials(options: RunOptions) -> None:
    """A driver that joins a cluster with AWS keys in its environment makes every trial act with them:
    Ray Tune copies AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN into each trial's
    environment, so the workers' instance profile (deploy/iam.py's worker role) is bypassed."""
    from .control import warn
    from .session import joins_cluster

    if joins_cluster(options) and options.storage.startswith("s3://") and os.environ.get("AWS_ACCESS_KEY_ID"):
        warn("AWS_ACCESS_KEY_ID is set in this driver's environment: Ray Tune copies it into every trial, so the "
             "trials write with these keys, not with the workers' instance profile; on the cluster's head, unset it "
             "and let the head's profile sign the driver's requests")


def check_placement(spec: StudySpec, options: RunOptions):
    """The cluster's maximum (this machine before an embedded Ray starts; else the joined cluster's),
    after checking that a trial's placement group of ``spec``'s units can ever fit it: a ConfigError with
    the numbers otherwise.  Runs before the study writes anything (study.json, the lease)."""
    from .capacity import check_fit
    from .session import cluster_shape

    warn_driver_credentials(options)
    shape = cluster_shape(options)
    check_fit(shape, options.cpus_per_unit, options.gpus_per_unit, len(spec.units), options.parallel_units)
    return shape


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
        """The study's :class:`~omasgan.distributed.store.result_store.ResultStore`."""
        from ..store.result_store import ResultStore

        return ResultStore(self.paths.data_root)

    def rows(self, columns: list[str] | None = None):
        """This study's result rows as a pandas DataFrame: ``columns`` (default: every column but the
        config and library versions, i.e. what the study tables read), read from the Parquet scan."""
        import pyarrow.dataset as ds

        from ..store.result_store import dataset_schema

        if columns is None:
            columns = [n for n in dataset_schema().names
                       if not n.startswith("cfg_") and n not in ("config_json", "versions_json")]
        return self.store.read(filter=ds.field("study") == self.spec.name, columns=columns).to_pandas()

