"""``omasgan cache ls|prune``: the stage cache's entries, shown and removed.

ROOT is a cache root (``.../NAME/cache``), a study's folder or storage URI (its ``cache/`` is used), or
a local study folder whose results live under a URI (``study.json`` names it)."""

from __future__ import annotations

import argparse
import re
from datetime import timezone
from pathlib import Path

from omasgan.config import STAGES
from omasgan.errors import ConfigError

from .subcommand import add_subcommand

AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> float:
    """``"7d"`` -> seconds; units s, m, h, d."""
    match = AGE.match(text.strip())
    if not match:
        raise ConfigError(f"--older-than {text!r} must be a number and a unit, e.g. 30m, 12h or 7d")
    return float(match.group(1)) * SECONDS[match.group(2)]


def resolve_root(root: str) -> str:
    """The cache root ROOT stands for (see the module docstring); a ConfigError when it holds no cache."""
    from omasgan.trainables.cache import cache_root_of
    from omasgan.trainables.storage.filesystems import open_filesystem

    from ..store.study_folder import STUDY_FILE, result_root

    if "://" not in root and (Path(root) / STUDY_FILE).is_file():
        root = result_root(Path(root))
    try:
        cache = cache_root_of(root)
        fs, base = open_filesystem(cache)
        kind = fs.get_file_info(base).type
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cache root {root!r} cannot be read: {str(exc).splitlines()[0]}") from None
    import pyarrow.fs as pafs

    if kind != pafs.FileType.Directory:
        raise ConfigError(f"{root!r} holds no stage cache (no folder there, and no cache/ in it)")
    return cache


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_cache(args: argparse.Namespace) -> int:
    from omasgan.trainables.cache import list_entries, prune_entries

    root = resolve_root(args.root)
    if args.cache_command == "ls":
        items = list_entries(root)
        print(f"{root}: {sum(1 for i in items if i.size is not None)} entries, "
              f"{_size(sum(i.size or 0 for i in items))}")
        for item in items:
            when = item.modified.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if item.modified else "-"
            lock = f"  being built by {item.lock_owner}" if item.lock_owner else ""
            print(f"  {item.stage:<6} {item.key[:16]}  {_size(item.size):>10}  {when}{lock}")
        return 0
    stages = [s.strip() for s in (args.stage or "").split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"--stage {unknown[0]!r}; choose from: {', '.join(STAGES)}")
    older = parse_age(args.older_than) if args.older_than else None
    if not (stages or older is not None or args.damaged or args.all):
        raise ConfigError("cache prune needs a selector: --stage, --older-than, --damaged or --all")
    removed = prune_entries(root, stages=stages or None, older_than_s=older, damaged=args.damaged,
                            everything=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for item in removed:
        print(f"{verb} {item.stage}/{item.key[:16]} ({_size(item.size)})")
    print(f"{verb} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, {_size(sum(i.size or 0 for i in removed))}"
          f" (entries being built are never removed)")
    return 0


def add_cache_parser(sub: argparse._SubParsersAction) -> None:
    cache = add_subcommand(sub, "cache", cmd_cache, help="show (ls) or remove (prune) stage-cache entries",
                           description="The stage cache of a study (or any cache root): list its entries, or "
                           "remove those matching every selector given.")
    commands = cache.add_subparsers(dest="cache_command", required=True, metavar="{ls,prune}")
    ls = add_subcommand(commands, "ls", cmd_cache,
                        help="list entries: stage, key, size, last written, who builds it now")
    ls.add_argument("root", help="a cache root, a study folder or a study's storage URI")
    prune = add_subcommand(commands, "prune", cmd_cache, help="remove entries matching every selector given")
    prune.add_argument("root", help="a cache root, a study folder or a study's storage URI")
    prune.add_argument("--stage", help=f"only these stages, e.g. task3,j ({', '.join(STAGES)})")
    prune.add_argument("--older-than", help="only entries last written longer ago, e.g. 12h or 7d")
    prune.add_argument("--damaged", action="store_true", help="only entries that fail their checksum")
    prune.add_argument("--all", action="store_true", help="every entry (with other selectors: those)")
    prune.add_argument("--dry-run", action="store_true", help="print what would be removed; remove nothing")
