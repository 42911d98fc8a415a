"""``omasgan compact FOLDER``: merge the small result files of a study (or of every study in a folder)
into a few parts per partition (:mod:`omasgan.distributed.store.compaction`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from omasgan.errors import ConfigError

from ..store.compaction import READ_THREADS, compact_store
from ..store.compaction_scope import settled_by_records
from ..store.study_folder import STUDY_FILE, StudySpec, read_confirmation, result_root, study_folders
from .subcommand import add_subcommand


def cmd_compact(args: argparse.Namespace) -> int:
    """Compact every study under ``args.folder``, one line each; a one-line ConfigError on bad input."""
    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads} is out of range; give an integer >= 1")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError(f"{str(folder)!r} does not exist or is not a folder; give a study folder")
    folders = study_folders(folder)
    if not folders:
        raise ConfigError(f"{str(folder)!r} holds no study ({STUDY_FILE} in it or in a folder directly inside it)")
    for path in folders:
        spec = StudySpec.read(path)
        root = result_root(path)
        settled = settled_by_records(root, spec, confirmed=read_confirmation(path) is not None)
        stats = compact_store(root, settled=settled, threads=args.threads,
                              say=lambda text: print(f"omasgan compact: {spec.name}: {text}", flush=True))
        print(f"omasgan compact: {spec.name}: {stats.summary()}", flush=True)
    return 0


def add_compact_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``omasgan compact`` to the ``omasgan`` subcommands."""
    parser = add_subcommand(
        sub, "compact", cmd_compact, help="merge a study's small result files into a few large ones per partition",
        description="Merge the small Parquet files of a study's results and scores tables (one per unit and "
        "stage) into a few large parts per (data set, class, seed) partition, atomically: readers see every "
        "row exactly once before, during and after. Safe on a running study (only rounds the trials have "
        "finished are merged). Every study also compacts itself when it ends.")
    parser.add_argument("folder", help="a study folder (holds study.json) or a folder of study folders")
    parser.add_argument("--threads", type=int, default=READ_THREADS,
                        help=f"small files read at once (default {READ_THREADS}; more for object stores)")
    return parser
