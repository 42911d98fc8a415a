"""``omasgan search | sensitivity | seeds | confirm | results``: their arguments, handlers and printed
tables; and the registration of the other study subcommands (``compare``, ``report``, ``compact``,
``baseline``).  Every check of the input runs before Ray starts (see preparation.prepare_study); each
study's experiment is built in :mod:`omasgan.distributed.studies.experiments`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from omasgan.cli import add_config_options, build_config
from omasgan.config import STAGES
from omasgan.deprecation import deprecated
from omasgan.errors import ConfigError
from omasgan.search_spaces import DEFAULT_WINDOW, MIN_WINDOW, check_window
from omasgan.vocabulary import SCORE_CHOICES, SPACE_NAMES

from ..analysis.objective import AGGREGATES, check_aggregate
from ..store.study_folder import STUDY_FILE, StudySpec, result_root, study_folders
from ..studies.experiments import run_study, sensitivity_sweeps
from ..studies.preparation import (
    SCHEDULERS,
    RunOptions,
    StudyOutcome,
    default_study_name,
    parse_float_list,
    parse_int_list,
)
from .baseline import split_set_options
from .subcommand import add_subcommand

SPACES = SPACE_NAMES


# ---------------------------------------------------------------- building the spec from arguments


def spec_from_args(kind: str, args: argparse.Namespace) -> StudySpec:
    """The StudySpec of ``omasgan KIND`` from its arguments (on ``--resume``: only its name and kind,
    the rest is read from the stored study.json); a one-line ConfigError on bad input."""
    if args.resume:  # everything else comes from the stored study.json
        name = args.name or ""
        if not name:
            raise ConfigError("--resume needs --name, the study to continue")
        return StudySpec(name=name, kind=kind, dataset="-", classes=[0], seeds=[0], base_config={})
    baseline_sets, config_sets = split_set_options(getattr(args, "set", None))
    base = build_config(argparse.Namespace(**{**vars(args), "set": config_sets}))
    classes = parse_int_list(args.classes, "--classes")
    seeds = parse_int_list(args.seeds, "--seeds")
    options: dict[str, Any] = {"scores": getattr(args, "scores", "test")}
    if kind == "search":
        if args.trials < 1:
            raise ConfigError(f"--trials must be >= 1; got {args.trials}")
        try:
            window = check_window(args.sampler_window)
        except ValueError as exc:
            raise ConfigError(f"--sampler-window: {exc}") from None
        options.update(space=args.space, trials=args.trials, scheduler=args.scheduler, sampler_seed=args.sampler_seed,
                       sampler_window=window,
                       with_optimizer=args.with_optimizer, with_batch=args.with_batch,
                       objective=check_aggregate(args.objective))
        if args.confirm is not None:
            if args.confirm < 1:
                raise ConfigError(f"--confirm must be >= 1 (the number of top trials to confirm); got {args.confirm}")
            from ..studies.confirmation import fresh_seeds

            probe = StudySpec(name="-", kind="search", dataset="-", classes=classes, seeds=seeds, base_config={})
            options.update(confirm_top=args.confirm, confirm_seeds=fresh_seeds(probe, args.confirm_seeds))
    elif kind == "sensitivity":
        params = [p.strip() for p in args.param.split(",") if p.strip()]
        if not params:
            raise ConfigError("--param is empty; give a dotted config key such as task2.mu")
        if (args.values is None) == (args.grid is None):
            raise ConfigError("give exactly one of --values V1,V2,... or --grid paper")
        values = parse_float_list(args.values, "--values") if args.values is not None else None
        options.update(sweeps=sensitivity_sweeps(base, params, values, args.grid))
    elif kind == "seeds" and args.method != "omasgan":
        from omasgan.baselines import BaselineConfig

        options.update(baseline=BaselineConfig(method=args.method).with_overrides(baseline_sets).to_dict())
    if baseline_sets and "baseline" not in options:
        raise ConfigError(f"--set {baseline_sets[0]!r} sets a baseline; it needs seeds --method knn|iforest|ae")
    return StudySpec(
        name=args.name or default_study_name(kind, base.data.dataset), kind=kind, dataset=base.data.dataset,
        classes=classes, seeds=seeds, base_config=base.to_dict(), last_stage=args.last_stage, options=options,
    )


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """RunOptions from the command line; ``explicit`` names the run options given (the parser's
    defaults for them are None, so that --resume can tell given from restored)."""
    from ..studies.preparation import RESTORED_OPTIONS

    given = {name: getattr(args, name) for name in RESTORED_OPTIONS if getattr(args, name, None) is not None}
    return RunOptions(
        storage=args.storage, study_dir=args.study_dir, resume=args.resume, verbose=args.verbose, report=args.report,
        explicit=frozenset(given), **given,
    )


# ---------------------------------------------------------------- running and printing


def final_table(outcome: StudyOutcome) -> str:
    from ..analysis.tables import render, search_table, seeds_table, sensitivity_table
    rows = outcome.rows()
    kind = outcome.spec.kind
    if kind == "search":
        how = outcome.spec.options.get("objective", "mean")
        title = (f"trials, best first (objective: the {how} of the final J's validation AUROC over all the trial's "
                 f"units, what the search maximises; '-' when a unit failed or the trial stopped early)")
        table = search_table(rows, outcome.trial_configs, outcome.spec)
    elif kind == "sensitivity":
        title = ("sensitivity: the final J's AUROC per swept value (the mean over seeds of each seed's mean "
                 "over classes, and its SD over seeds)")
        table = sensitivity_table(rows, outcome.spec)
    else:
        title = "test AUROC per held-out class: mean and SD over seeds, per detector"
        table = seeds_table(rows, outcome.spec)
    return f"{title}\n{render(table)}"


def print_outcome(outcome: StudyOutcome) -> None:
    print()
    print(final_table(outcome))
    if outcome.trial_errors:
        print(f"\n{len(outcome.trial_errors)} trial(s) ended with an error:")
        for trial_id, error in outcome.trial_errors.items():
            print(f"  {trial_id}: {error}")
    if outcome.removed_files:
        print(f"\nremoved {outcome.removed_files} result file(s) of trials the interrupted driver never recorded")
    if outcome.compaction is not None:
        print(f"\ncompacted the results: {outcome.compaction.summary()}")
    paths = outcome.paths
    print(f"\nstudy folder:   {paths.control}")
    print(f"results:        {paths.data_root}/results  (Parquet, hive partitions dataset/holdout_class/seed)")
    print(f"scores:         {paths.data_root}/scores")
    if outcome.spec.kind == "search":
        print(f"optuna journal: {paths.journal}")
    print(f"tune:           {paths.tune_root}/{outcome.spec.name}")
    print(f"summary:        omasgan results {paths.control}")


def cmd_study(kind: str):
    def handler(args: argparse.Namespace) -> int:
        spec = spec_from_args(kind, args)
        options = options_from_args(args)
        outcome = run_study(kind, spec, options)
        print_outcome(outcome)
        top = outcome.spec.options.get("confirm_top") if kind == "search" else None
        if top:
            from ..studies.confirmation import print_confirmation, run_confirmation

            seeds = ",".join(map(str, outcome.spec.options["confirm_seeds"]))
            print_confirmation(run_confirmation(outcome.paths, options, top, seeds))
        if options.report:
            from ..report.sections import write_report

            print(f"report:         {write_report(outcome.paths.control)}")
        return 0

    return handler


def cmd_confirm(args: argparse.Namespace) -> int:
    from ..studies.confirmation import print_confirmation, run_confirmation
    from ..studies.preparation import StudyPaths, check_writable

    folder = Path(args.study).resolve()
    spec = StudySpec.read(folder)
    if spec.kind != "search":
        raise ConfigError(f"{str(folder)!r} holds a {spec.kind} study; `omasgan confirm` confirms a search")
    data_root = spec.options.get("data_root") or str(folder)
    paths = StudyPaths(folder, data_root)
    options = RunOptions(storage=data_root, study_dir=str(folder.parent), address=args.address,
                         cpus_per_unit=args.cpus_per_unit, gpus_per_unit=args.gpus_per_unit,
                         parallel_units=args.parallel_units, max_concurrent=args.max_concurrent,
                         max_failures=args.max_failures, verbose=args.verbose)
    check_writable(data_root)
    from ..studies.confirmation import prepare_confirmation

    prepare_confirmation(paths, args.top, args.seeds)  # every check before Ray starts
    print_confirmation(run_confirmation(paths, options, args.top, args.seeds))
    if args.report:
        from ..report.sections import write_report

        print(f"report:         {write_report(folder)}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from ..analysis.tables import render
    from ..store.result_query import parse_where, summary
    from ..store.result_store import ResultStore, dataset_schema

    root = Path(args.folder)
    folders = study_folders(root)
    if folders:
        roots = sorted({result_root(f) for f in folders})
    elif (root / "results").is_dir():
        roots = [str(root.resolve())]
    else:
        raise ConfigError(f"{str(root)!r} holds no study ({STUDY_FILE}) and no results/ folder")
    where = parse_where(args.where) if args.where else None  # filters and groups run in the Parquet scan
    by = [c.strip() for c in (args.by or "").split(",") if c.strip()]
    unknown = [c for c in by if c not in dataset_schema().names]
    if unknown:
        raise ConfigError(f"--by {unknown} are not columns; e.g. holdout_class, seed, trial_id, sweep_value")
    matched, table = summary([ResultStore(r) for r in roots], by, where, args.where or "")
    print(f"{matched} rows from {len(roots)} result folder(s)")
    print(render(table))
    return 0


# ---------------------------------------------------------------- argparse


class GpusPerUnit(argparse.Action):
    """Stores ``--gpus-per-unit``; given by its old name ``--gpus-per-trial``, also prints one line saying
    the old name is deprecated and the release that removes it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string == "--gpus-per-trial":
            print(f"omasgan: warning: {deprecated('--gpus-per-trial', 'use --gpus-per-unit (the same option)')}",
                  file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_run_options(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--classes", default="0", help="held-out classes, e.g. 0-9 or 0,3,5 (default 0)")
    parser.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2 or 0-2 (default 0)")
    parser.add_argument("--last-stage", choices=STAGES, default="j", help="train up to this stage (default j)")
    parser.add_argument("--name", help=f"study name, the folder under --storage (default {kind}-<dataset>-<time>)")
    parser.add_argument("--storage", default="studies",
                        help="where studies live: a folder, or a URI every node reaches (s3://..., default ./studies)")
    parser.add_argument("--study-dir", default="studies",
                        help="with a URI --storage: the local folder for working copies of study.json and the "
                        "Optuna journal (both also live under the URI)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the study --name after an interruption, from any machine that reaches "
                        "--storage; run options not given are restored")
    # the run options' defaults are None: RunOptions holds the real defaults, and --resume restores the
    # options not given from study.json
    parser.add_argument("--address", help="join a Ray cluster (auto, or ray://HOST:10001); local or none: an embedded "
                        "Ray on this machine")
    parser.add_argument("--cpus-per-unit", type=float, help="CPUs of one (class, seed) unit (default 1)")
    parser.add_argument("--gpus-per-unit", "--gpus-per-trial", dest="gpus_per_unit", type=float, action=GpusPerUnit,
                        help="GPUs of one unit; fractions pack several on one GPU (default 0)")
    parser.add_argument("--parallel-units", type=int,
                        help="units a trial runs at once (default: as many as the cluster can ever hold, "
                        "its autoscaler's node types included)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default 2)")
    parser.add_argument("--max-failures", type=int, help="retries of a failed trial (default 2)")
    parser.add_argument("--max-failed-trials", type=int, metavar="N",
                        help="halt the study once N trials have failed (ended in error, or with a failed unit); "
                        "--resume continues it (default: never)")
    parser.add_argument("--placement-timeout", dest="placement_timeout_s", type=float, metavar="SECONDS",
                        help="halt the study when a trial has waited this long for its placement group (its GPUs, "
                        "CPUs) with no trial running; the progress lines say what it waits for after 20 s "
                        "(default 1800)")
    parser.add_argument("--cache", help="the stage cache's folder or URI (default: the study's own, "
                        "<storage>/<name>/cache); studies given the same one train each shared stage once")
    parser.add_argument("--report", action="store_true", help="write the report when the study ends")
    parser.add_argument("--scores", choices=SCORE_CHOICES, default="test",
                        help="per-sample scores to store: none; test (default): the test split of J, what the "
                        "report's histograms read; all: validation and test of every detector (the scores "
                        "table grows fastest of all: one row per sample, detector and unit)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's worker logs")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``omasgan search | sensitivity | seeds | confirm | results``, then ``compare``, ``report``,
    ``compact`` and ``baseline`` (in this order: the order of ``omasgan --help``)."""
    search = add_subcommand(
        sub, "search", cmd_study("search"),
        help="Optuna search (Ray Tune) maximising the mean validation AUROC over classes x seeds",
        description="Tuner + OptunaSearch (seeded multivariate TPE). Each trial trains every (class, seed) unit "
        "as its own Ray task; the objective is the mean validation AUROC of the final J over the units.")
    add_config_options(search)
    _add_run_options(search, "search")
    search.add_argument("--space", choices=SPACES, default="full",
                        help="full: divergence, mu, nu, alpha..delta, zeta and the variants (with their own "
                        "parameters); task2 / task3 / j: that stage's only; variants: the variant switches "
                        "task2.boundaries, task2.feature_space, j.refine_steps, j.score only")
    search.add_argument("--trials", type=int, default=8, help="trials (default 8)")
    search.add_argument("--objective", choices=AGGREGATES, default="mean",
                        help="how a trial's units (classes x seeds) become its objective: the mean of their validation "
                        "AUROCs, their interquartile mean, or the worst class's mean over seeds (default mean); a "
                        "trial with a failed unit is told to Optuna as failed")
    search.add_argument("--scheduler", choices=SCHEDULERS, default="fifo", help="fifo, or asha (stops weak trials early)")
    search.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    search.add_argument("--sampler-window", type=int, default=DEFAULT_WINDOW, metavar="N",
                        help="past N finished trials, TPE fits on the 25 best and the most recent ones, N in all, so a "
                        f"suggestion's cost stops growing (default {DEFAULT_WINDOW}; 0: every trial; else >= {MIN_WINDOW}); "
                        "a search of at most N trials is exactly plain TPE")
    search.add_argument("--confirm", type=int, metavar="K",
                        help="after the search, rerun the top K trials and the base config on fresh seeds and compare "
                        "each with the base, paired by (class, seed); best-config.json is then the confirmed winner")
    search.add_argument("--confirm-seeds", help="the confirmation's seeds (default 100-102, or as many as --seeds); "
                        "never seeds of the search")
    search.add_argument("--with-optimizer", action="store_true", help="also search the learning rates")
    search.add_argument("--with-batch", action="store_true", help="also search Q (bank size) and N (batch size)")

    sens = add_subcommand(sub, "sensitivity", cmd_study("sensitivity"),
                          help="one parameter at a time around a base config, over classes x seeds",
                          description="A grid search (no Optuna): one trial per value of each --param.")
    add_config_options(sens)
    _add_run_options(sens, "sensitivity")
    sens.add_argument("--param", default="", help="dotted config key(s), e.g. task2.mu or task2.mu,j.zeta")
    sens.add_argument("--values", help="values to try, e.g. 0.05,0.2,1")
    sens.add_argument("--grid", choices=("paper",), help="the built-in grid around the base value")

    seeds = add_subcommand(sub, "seeds", cmd_study("seeds"),
                           help="a fixed config over classes x seeds: mean and SD of test AUROC",
                           description="Trains --config (e.g. a search's best-config.json) on every (class, seed) "
                           "and prints the mean and SD over seeds per class and overall (the paper's Figure 11).")
    add_config_options(seeds)
    _add_run_options(seeds, "seeds")
    seeds.add_argument("--method", default="omasgan",
                       help="omasgan, or a baseline scored in the same protocol: knn, iforest, ae "
                       "(settings with --set baseline.k=10 ...)")

    confirm = add_subcommand(
        sub, "confirm", cmd_confirm, help="rerun a search's top trials and its base config on fresh seeds and compare them",
        description="Confirmation of a finished search: its top --top trials (by the search's objective) and the "
        "base config are trained on seeds the search never used (default 100-102), same classes; each candidate "
        "is compared with the base paired by (class, seed) on J's validation AUROC (mean difference, stratified "
        "bootstrap interval, P(A > B), Wilcoxon p; Bonferroni over the candidates), the test split shown. Writes "
        "confirmation.json; `omasgan report` then takes best-config.json from it. Rerun to resume or reread.")
    confirm.add_argument("study", help="the search's study folder (it holds study.json)")
    confirm.add_argument("--top", type=int, default=2, help="top trials to confirm (default 2)")
    confirm.add_argument("--seeds", help="fresh seeds, e.g. 100-104 (default 100-102, or as many as the search's)")
    confirm.add_argument("--address", help="join a Ray cluster (auto, or ray://HOST:10001); default: embedded Ray")
    confirm.add_argument("--parallel-units", type=int, help="units a trial runs at once (default: as many as fit)")
    confirm.add_argument("--cpus-per-unit", type=float, default=1.0, help="CPUs of one unit (default 1)")
    confirm.add_argument("--gpus-per-unit", type=float, default=0.0, help="GPUs of one unit (default 0)")
    confirm.add_argument("--max-concurrent", type=int, default=2, help="candidates trained at once (default 2)")
    confirm.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial (default 2)")
    confirm.add_argument("--report", action="store_true", help="write the study's report afterwards")
    confirm.add_argument("--verbose", action="store_true", help="show Ray's worker logs")

    results = add_subcommand(sub, "results", cmd_results,
                             help="summarise the Parquet results of a study folder (or a folder of them)")
    results.add_argument("folder", help="a study folder, a folder of study folders, or a folder holding results/")
    results.add_argument("--where", help="a filter in pandas query syntax, run in the Parquet scan: comparisons "
                         "of a column with a value, 'in' lists, isna()/notna(), and/or/not, "
                         "e.g. \"stage == 'j' and seed in [0, 1]\"")
    results.add_argument("--by", help="extra columns to group by, e.g. holdout_class or sweep_value")

    from .report import add_compare_parser, add_report_parser

    add_compare_parser(sub)
    add_report_parser(sub)

    from .compact import add_compact_parser

    add_compact_parser(sub)

    from .baseline import add_baseline_parser

    add_baseline_parser(sub)

