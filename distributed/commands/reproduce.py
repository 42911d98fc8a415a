"""``omasgan reproduce``: the paper's MNIST experiments at a named budget, and their claims table.

    omasgan reproduce --budget quick                                   # sklearn digits: minutes, no download
    omasgan reproduce --budget quality --data-root DIR                 # MNIST at the project's CPU budget
    omasgan reproduce --budget paper --data-root /data --address auto --storage s3://B/omasgan --gpus-per-unit 1
    omasgan reproduce --resume --name reproduce-quality                # after an interruption
    omasgan reproduce --table-only --name reproduce-quality            # the claims table from what is there

Every part runs as a seeds study (:mod:`omasgan.distributed.studies.reproduce`); the claims table goes to
``<study-dir or storage>/<name>/claims/`` (claims.md, claims.html, claims.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omasgan.budgets import BUDGETS, budget
from omasgan.errors import ConfigError

from ..studies.experiments import run_study
from ..studies.preparation import RunOptions, parse_int_list
from ..studies.reproduce import PARTS, ReproductionPlan, plan_from_budget, prepare_plan, reproduction_folders, \
    run_reproduction
from .subcommand import add_subcommand

RUN_FLAGS = ("address", "cpus_per_unit", "gpus_per_unit", "parallel_units", "max_concurrent", "max_failures",
             "max_failed_trials", "placement_timeout_s")


def _run_part(spec, options: RunOptions) -> None:
    """Run (or continue) one part of a reproduction: a seeds study."""
    run_study("seeds", spec, options)


def _rows(plan: ReproductionPlan, data_root: str):
    """Every part's result rows, with the part each played (its study name)."""
    import pandas as pd
    import pyarrow.dataset as ds

    from ..store.result_store import ResultStore

    frames = []
    for part in plan.parts:
        part_root = f"{data_root}/{part}"
        if "://" not in part_root and not (Path(part_root) / "results").is_dir():
            continue
        table = ResultStore(part_root).read(filter=ds.field("study") == part,
                                            columns=["study", "detector", "split", "status", "auroc", "holdout_class",
                                                     "seed", "stage"])
        frames.append(table.to_pandas().assign(part=part))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["study", "detector", "split", "status", "auroc", "holdout_class", "seed", "stage", "part"])


def cmd_reproduce(args: argparse.Namespace) -> int:
    name = args.name or f"reproduce-{args.budget}"
    folder, data_root = reproduction_folders(args.storage, name, args.study_dir)
    if args.table_only:
        plan = ReproductionPlan.read(folder)
    else:
        digits = parse_int_list(args.digits, "--digits")
        seeds = parse_int_list(args.seeds, "--seeds") if args.seeds else None
        parts = [p.strip() for p in args.parts.split(",") if p.strip()]
        data = {"data_root": args.data_root} if args.data_root else {}
        overrides = list(args.set or [])
        if args.resume:
            plan = ReproductionPlan.read(folder) if (folder / "reproduce.json").is_file() else None
            if plan is None:
                raise ConfigError(f"--resume: {str(folder)!r} holds no reproduction (reproduce.json); check --storage "
                                  "and --name")
        else:
            plan = plan_from_budget(name, args.budget, digits, seeds, parts, data, overrides)
        given = {flag: getattr(args, flag) for flag in RUN_FLAGS if getattr(args, flag) is not None}
        if args.cache:
            given["cache"] = args.cache
        options = RunOptions(storage=args.storage, study_dir=args.study_dir, verbose=args.verbose,
                             explicit=frozenset(given), **given)
        plan = prepare_plan(plan, folder, args.resume)
        run_reproduction(plan, options, folder, data_root, _run_part)
    from ..analysis.claims import evaluate_claims
    from ..report.claims import write_claims

    chosen = budget(plan.budget)
    rows = _rows(plan, data_root)
    claims = evaluate_claims(rows, plan.dataset, missing_command=(
        f"omasgan reproduce --resume --name {plan.name} --storage {args.storage}  (runs what is unfinished of "
        f"the parts {', '.join(plan.parts)})"))
    out = write_claims(folder, plan, claims, rows, chosen)
    print(f"\nclaims at budget {plan.budget!r} ({len(rows[rows.split == 'test']) if len(rows) else 0} test rows):")
    for claim in claims:
        measured = "-" if claim.verdict == "untested" else (
            f"{claim.measured:.3f} [{claim.ci_low:.3f}, {claim.ci_high:.3f}], {claim.units} units")
        data = f" on {claim.data}" if "stand-in" in claim.data else ""
        print(f"  {claim.verdict:<10} {claim.statement}: paper {claim.paper:g}, measured {measured}{data}")
    print(f"claims table:   {out / 'claims.md'}  (and claims.html, claims.json)")
    print(f"studies:        {folder}  (omasgan results / omasgan report read it)")
    return 0


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        sub, "reproduce", cmd_reproduce, help="the paper's MNIST experiments at a named budget, with a claims table",
        description="Runs the paper's MNIST leave-one-out experiments as seeds studies over held-out digits x seeds: "
        "OMASGAN with the paper's settings (the ablation: Task 1's critic, Task 3's critic, J), the f-GAN base model "
        "of its Figure 9, and the kNN, Isolation Forest and autoencoder baselines in the same protocol; then writes "
        "the claims table (claims.md/.html/.json): each claim's paper number and where it is stated, the measured "
        "value with its 95%% interval over (digit, seed) units, and the verdict (consistent, below, above) with the "
        "test used. Resumable (--resume). Budgets: " + "; ".join(f"{b.name}: {b.description}" for b in BUDGETS.values()))
    parser.add_argument("--budget", choices=tuple(BUDGETS), default="quick", help="the training budget (default quick)")
    parser.add_argument("--data-root", help="folder with MNIST/raw/ (torchvision's layout) for the MNIST budgets")
    parser.add_argument("--digits", default="0-9", help="held-out digits (default 0-9)")
    parser.add_argument("--seeds", help="training seeds (default: the budget's, e.g. 0-2)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"parts to run (default all: {', '.join(PARTS)})")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a setting of the budget's config (repeatable); recorded in reproduce.json")
    parser.add_argument("--name", help="the reproduction's folder under --storage (default reproduce-<budget>)")
    parser.add_argument("--storage", default="studies", help="a folder, or a URI every node reaches (default ./studies)")
    parser.add_argument("--study-dir", default="studies", help="with a URI --storage: the local folder of working copies")
    parser.add_argument("--resume", action="store_true", help="continue the reproduction --name (its plan is stored)")
    parser.add_argument("--table-only", action="store_true", help="write the claims table from the results there; run nothing")
    parser.add_argument("--cache", help="the stage cache every part shares (default <storage>/<name>/cache)")
    parser.add_argument("--address", help="join a Ray cluster (auto); default: an embedded Ray on this machine")
    parser.add_argument("--cpus-per-unit", type=float, help="CPUs of one (digit, seed) unit (default 1)")
    parser.add_argument("--gpus-per-unit", type=float, help="GPUs of one unit (default 0)")
    parser.add_argument("--parallel-units", type=int, help="units a study runs at once (default: as many as fit)")
    parser.add_argument("--max-concurrent", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-failures", type=int, help="retries of a failed trial (default 2)")
    parser.add_argument("--max-failed-trials", type=int, help="halt a part once this many of its trials failed")
    parser.add_argument("--placement-timeout", dest="placement_timeout_s", type=float,
                        help="halt when a trial waits this long for its placement group (default 1800 s)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's worker logs")
