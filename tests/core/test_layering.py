"""How the packages may depend on each other: the core package stays pure PyTorch (no module under
omasgan/ imports Ray, Optuna or pyarrow; the card folders trainables/, search_spaces/, distributed/
may); no package uses another's private names; the rooms of distributed/ import one way; only its
commands/ room builds argparse parsers; no import cycle among all the modules; and the old module paths
of distributed/ still unpickle (once installed, see tests/distributed/commands/test_deprecations.py)."""

import ast
from pathlib import Path

import omasgan

from helpers import REPO

FORBIDDEN = {"ray", "optuna", "pyarrow"}


def test_core_never_imports_ray_optuna_or_pyarrow():
    core = Path(omasgan.__file__).parent
    offenders = []
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(core)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


ROOT = REPO
PACKAGES = {"omasgan": "omasgan", "trainables": "omasgan.trainables", "search_spaces": "omasgan.search_spaces",
            "distributed": "omasgan.distributed"}
"""Each source folder and the package it installs as (see setup.py)."""
ROOMS = ("store", "analysis", "studies", "report", "commands")
"""The sub-packages of omasgan.distributed, each importing only those before it."""


def _modules():
    """(path, dotted module name, the package it belongs to) of every module of the four packages."""
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            yield path, ".".join((package, *parts)), package


def _package_of(module: str) -> str | None:
    """Which of the four packages ``module`` is in (the longest matching name), or None."""
    matches = [p for p in PACKAGES.values() if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def _imports(path: Path, module: str, tree: ast.AST | None = None):
    """(node, imported module, the names taken from it) of every import in ``path`` (parsed as ``tree``
    when given), relative imports resolved against ``module``."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree or ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:  # "import a.b" binds a; "import a.b as x" binds x to a.b
                local = alias.asname or alias.name.split(".")[0]
                yield node, alias.name, [], {local: alias.name if alias.asname else local}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names = [alias.name for alias in node.names]
            yield node, target, names, {alias.asname or alias.name: f"{target}.{alias.name}" for alias in node.names}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    return [node.id, *parts] if isinstance(node, ast.Name) else None


def test_no_module_uses_a_private_name_of_another_package():
    offenders = []
    for path, module, package in _modules():
        bound = {}  # a local name -> the dotted name it was imported as
        for node, target, names, binds in _imports(path, module):
            bound.update(binds)
            owner = _package_of(target or "")
            if owner and owner != package:
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: from {target} import {n}"
                              for n in names if _private(n)]
        for node in ast.walk(ast.parse(path.read_text())):
            parts = _dotted(node) if isinstance(node, ast.Attribute) else None
            if not parts or parts[0] not in bound or not _private(parts[-1]):
                continue
            owner = _package_of(".".join([bound[parts[0]], *parts[1:-1]]))
            if owner and owner != package:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {'.'.join(parts)}")
    assert offenders == []


def test_the_rooms_of_distributed_import_only_earlier_rooms():
    offenders = []
    for path, module, _ in _modules():
        parts = module.split(".")
        if parts[:2] != ["omasgan", "distributed"] or len(parts) < 4:
            continue  # the package's own __init__ and cli.py stand above the rooms
        room = ROOMS.index(parts[2])
        for node, target, _, _ in _imports(path, module):
            pieces = (target or "").split(".")
            if pieces[:2] == ["omasgan", "distributed"] and len(pieces) > 2 and pieces[2] in ROOMS:
                if ROOMS.index(pieces[2]) > room:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {target}")
    assert offenders == []


def test_every_module_of_distributed_is_in_a_room():
    loose = sorted(p.name for p in (ROOT / "distributed").glob("*.py"))
    rooms = sorted(p.name for p in (ROOT / "distributed").iterdir() if (p / "__init__.py").is_file())
    assert loose == ["__init__.py", "cli.py", "moved_modules.py"] and rooms == sorted(ROOMS)


def test_old_module_paths_still_unpickle_as_the_modules_they_became():
    """A study folder pickled before the split names old paths (Tune's experiment state: trainable,
    callbacks, searcher); resuming it must find them.  Once the finder is installed, each old path is
    the new module itself, no old path shadows a module that exists, and an object pickled under an
    old path loads."""
    import importlib
    import pickle

    from omasgan.distributed.moved_modules import MOVED, PACKAGE, install
    from omasgan.distributed.studies.journal_search import ending

    install()
    for old, new in MOVED.items():
        assert not (ROOT / "distributed" / f"{old}.py").exists() and not (ROOT / "distributed" / old).is_dir(), old
        assert importlib.import_module(f"{PACKAGE}.{old}") is importlib.import_module(f"{PACKAGE}.{new}"), old
    data = pickle.dumps(ending, protocol=0).replace(b"omasgan.distributed.studies.journal_search",
                                                    b"omasgan.distributed.journal_search")
    assert b"omasgan.distributed.journal_search\n" in data and pickle.loads(data) is ending


def test_the_storage_primitives_import_nothing_else_of_the_card_folders():
    """omasgan.trainables.storage is the lowest room of the card folders: the rest of trainables/ and all
    of distributed/ build on it, so it imports neither (only the core and its own modules)."""
    storage = "omasgan.trainables.storage"
    offenders = []
    for path, module, _ in _modules():
        if module != storage and not module.startswith(storage + "."):
            continue
        for node, target, _, _ in _imports(path, module):
            owner = _package_of(target or "")
            if owner in ("omasgan.trainables", "omasgan.distributed") and not (
                    target == storage or target.startswith(storage + ".")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {target}")
    assert offenders == []


PARSER_CALLS = {"ArgumentParser", "add_parser", "add_argument", "add_subparsers", "add_argument_group",
                "add_mutually_exclusive_group"}


def test_only_the_commands_room_of_distributed_builds_argparse_parsers():
    """Every subcommand's parser and handler live in distributed/commands/ (omasgan/cli.py, the core's own
    CLI, is outside distributed/)."""
    offenders = []
    for path, module, _ in _modules():
        parts = module.split(".")
        if parts[:2] != ["omasgan", "distributed"] or parts[2:3] == ["commands"]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in PARSER_CALLS:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert offenders == []


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks (imports for annotations only: they
    never run)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (_dotted(node.test) or [""])[-1] == "TYPE_CHECKING":
            inside.update(id(n) for statement in node.body for n in ast.walk(statement))
    return inside


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the four packages it imports, at the top or inside a function (a lazy
    import is an import too), leaving out imports for annotations only (``if TYPE_CHECKING:``).
    ``from package import name`` counts as importing ``package.name`` when that is a module."""
    modules = {module: path for path, module, _ in _modules()}
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_nodes(tree)
        edges = set()
        for node, target, names, _ in _imports(path, module, tree):
            if id(node) in skipped or not target:
                continue
            if isinstance(node, ast.ImportFrom):
                edges.update(f"{target}.{n}" if f"{target}.{n}" in modules else target for n in names)
            else:
                edges.add(target)
        graph[module] = {m for m in edges if m in modules and m != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None when it has none (a depth-first search)."""
    state: dict[str, str] = {}  # module -> "open" (on the current path) or "done"
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return path[path.index(imported):] + [imported]
            if imported not in state:
                cycle = visit(imported)
                if cycle:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_find_cycle_names_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_no_import_cycle_among_the_modules_of_the_four_packages():
    graph = import_graph()
    # the imports inside functions count: experiments imports the runner only when it builds an experiment
    assert "omasgan.distributed.studies.runner" in graph["omasgan.distributed.studies.experiments"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
