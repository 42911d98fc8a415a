"""``omasgan report``: its arguments and handler, kept apart from :mod:`.sections` so that building the
``omasgan`` parser does not import pandas, pyarrow or matplotlib."""

from __future__ import annotations

import argparse

FORMATS = ("md", "html")


def cmd_report(args: argparse.Namespace) -> int:
    from .sections import write_report

    page = write_report(args.results_dir, out=args.out, fmt=args.format)
    figures = len(list((page.parent / "figures").glob("*.png")))
    configs = "".join(f", {p.name}" for p in sorted(page.parent.glob("best-config*.json")))
    print(f"omasgan report: wrote {page} ({figures} figures, tables/*.csv{configs})")
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``omasgan report`` to the ``omasgan`` subcommands."""
    parser = sub.add_parser(
        "report", help="write a report page (tables, PNG figures, best config) from study results",
        description="Read the Parquet results of the studies in RESULTS_DIR (search, sensitivity, seeds, "
        "baseline) and write a page of tables and PNG figures: per-class AUROC, ablation, seed robustness, "
        "sensitivity curves, search history and importance, score histograms, 2-D boundary samples, metrics "
        "and wall time. A search study's best config (chosen on validation AUROC) goes to best-config.json.")
    parser.add_argument("results_dir", metavar="RESULTS_DIR",
                        help="a study folder (holds study.json) or a folder of study folders")
    parser.add_argument("--out", metavar="DIR", help="report folder (default RESULTS_DIR/report); "
                        "an earlier report there is replaced")
    parser.add_argument("--format", choices=FORMATS, default="md", help="md (report.md) or html (report.html)")
    parser.set_defaults(handler=cmd_report)
    return parser
