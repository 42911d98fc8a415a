"""The core package stays pure PyTorch: no module under omasgan/ imports Ray, Optuna or pyarrow
(the card folders trainables/, search_spaces/, distributed/ may)."""

import ast
from pathlib import Path

import omasgan

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
