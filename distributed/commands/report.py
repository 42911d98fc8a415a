"""``omasgan report`` and ``omasgan compare``: their arguments, handlers and printed lines.

The work is in the report room: :func:`omasgan.distributed.report.sections.write_report` writes the
page, :func:`omasgan.distributed.report.compare.compare` pairs two configs or methods.  Building the
parser imports neither pandas, pyarrow nor matplotlib.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omasgan.vocabulary import SPLITS

from ..report import compare as comparison
from ..report.formats import FORMATS
from .subcommand import add_subcommand


def cmd_report(args: argparse.Namespace) -> int:
    """Read the Parquet results of the studies in RESULTS_DIR (search, sensitivity, seeds, baseline) and
    write a page of tables and PNG figures: per-class AUROC, ablation, seed robustness, sensitivity
    curves, search history and importance, score histograms, 2-D boundary samples, metrics and wall
    time. A search study's best config (chosen on validation AUROC) goes to best-config.json."""
    from ..report.sections import write_report

    page = write_report(args.results_dir, out=args.out, fmt=args.format)
    figures = len(list((page.parent / "figures").glob("*.png")))
    configs = "".join(f", {p.name}" for p in sorted(page.parent.glob("best-config*.json")))
    print(f"omasgan report: wrote {page} ({figures} figures, tables/*.csv{configs})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the paired comparison of --a against --b: per class, then overall (and --json)."""
    import pandas as pd

    from ..analysis.tables import render

    result = comparison.compare(args.folder, args.a, args.b, split=args.split, metric=args.metric)
    print(f"A = {result['a']}: {result['a_is']}")
    print(f"B = {result['b']}: {result['b_is']}")
    print(f"{args.split} {args.metric}, paired by (held-out class, seed); unpaired units left out: "
          f"A {result['unpaired']['a']}, B {result['unpaired']['b']}")
    table = pd.DataFrame(result["per_class"])
    print(render(table))
    print(result["line"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``omasgan report`` to the ``omasgan`` subcommands."""
    parser = add_subcommand(sub, "report", cmd_report, description=cmd_report.__doc__,
                            help="write a report page (tables, PNG figures, best config) from study results")
    parser.add_argument("results_dir", metavar="RESULTS_DIR",
                        help="a study folder (holds study.json) or a folder of study folders")
    parser.add_argument("--out", metavar="DIR", help="report folder (default RESULTS_DIR/report); "
                        "an earlier report there is replaced")
    parser.add_argument("--format", choices=FORMATS, default="md", help="md (report.md) or html (report.html)")
    return parser


def add_compare_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``omasgan compare`` to the ``omasgan`` subcommands (its description: the forms of --a and --b,
    from :mod:`omasgan.distributed.report.compare`)."""
    parser = add_subcommand(
        sub, "compare", cmd_compare,
        help="two configs or methods paired by (class, seed): difference, interval, test, verdict",
        description=comparison.__doc__.split("\n\n", 1)[1] if comparison.__doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a study folder or a folder of study folders")
    parser.add_argument("--a", required=True, help="STUDY, STUDY:TRIAL, STUDY:METHOD, TRIAL or METHOD[@task1|task3]")
    parser.add_argument("--b", required=True, help="the reference, same forms as --a")
    parser.add_argument("--split", choices=SPLITS, default="test", help="default test (choose configs on val)")
    parser.add_argument("--metric", choices=comparison.METRICS, default="auroc", help="default auroc")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    return parser
