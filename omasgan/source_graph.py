"""The import graph of the ``omasgan`` package, read from its source files (nothing is imported).

:class:`PackageSources` finds a module of the ``omasgan`` namespace the way the import system does
(the finders on ``sys.meta_path``, so the folders an install maps under ``omasgan``, such as
``omasgan.trainables``, are found too) and reads its file.  From the parsed source it lists the
``omasgan.*`` modules the module imports, anywhere in its body (an import inside a function counts:
it runs when the function does):

- ``import omasgan.a.b`` and ``from omasgan.a import b`` where ``omasgan.a.b`` is a module: ``omasgan.a.b``;
- ``from omasgan.a import name`` where ``name`` is not a module: ``omasgan.a`` (its ``__init__``);
- relative imports resolved against the importing module's package.

A parent package's ``__init__`` that Python runs on the way to a submodule is not counted as a
dependency of the importer: it is one only when it is named (``from omasgan.stages import x``).

:meth:`PackageSources.all_modules` lists every module file of the namespace (for the whole
package's digest) by walking package folders, without parsing.

The source text of a module can be replaced (``PackageSources(replaced={name: text})``), to ask what
a digest would be had the module been edited (or added: a name with no file becomes a plain module).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata

PACKAGE = "omasgan"


def normalise_line_endings(text: bytes) -> bytes:
    """``text`` with CRLF and CR line endings made LF (a checkout on Windows hashes like one on Linux)."""
    return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


@dataclass(frozen=True)
class ModuleSource:
    """One module's name, whether it is a package (its ``__init__.py``), and its source text (line
    endings normalised)."""

    name: str
    is_package: bool
    text: bytes
    locations: tuple[str, ...] = ()
    """A package's folders (its ``__path__``); empty for a plain module or a replaced text."""

    def __post_init__(self) -> None:
        if not (self.name == PACKAGE or self.name.startswith(PACKAGE + ".")):
            raise ValueError(f"module {self.name!r} is not in the {PACKAGE} namespace")


def in_package(name: str) -> bool:
    """Whether ``name`` is ``omasgan`` or a module under it."""
    return name == PACKAGE or name.startswith(PACKAGE + ".")


class PackageSources:
    """The sources of the ``omasgan`` namespace's modules, their imports and import closures (see the
    module docstring).  Memoised per instance."""

    def __init__(self, replaced: Mapping[str, bytes | str] | None = None) -> None:
        self.replaced = {name: normalise_line_endings(text.encode() if isinstance(text, str) else text)
                         for name, text in (replaced or {}).items()}
        self._modules: dict[str, ModuleSource | None] = {}
        self._trees: dict[str, ast.Module] = {}
        self._imports: dict[str, frozenset[str]] = {}

    # ---- finding and reading modules ---------------------------------------------------------
    def _spec(self, name: str) -> importlib.machinery.ModuleSpec | None:
        loaded = getattr(sys.modules.get(name), "__spec__", None)
        if loaded is not None and loaded.name == name:  # (an alias of a moved module has its new name)
            return loaded
        parent_name, _, _ = name.rpartition(".")
        if not parent_name:
            return importlib.util.find_spec(name)
        parent = self.get(parent_name)
        if parent is None or not parent.locations:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, list(parent.locations))
            if spec is not None:
                return spec
        return None

    def get(self, name: str) -> ModuleSource | None:
        """The module called ``name`` (None when there is no such module file)."""
        if name in self._modules:
            return self._modules[name]
        found = None
        if in_package(name):
            spec = self._spec(name)
            origin = spec.origin if spec is not None else None
            if spec is not None and origin and origin.endswith(".py") and os.path.isfile(origin):
                locations = tuple(spec.submodule_search_locations or ())
                text = self.replaced.get(name)
                if text is None:
                    with open(origin, "rb") as handle:
                        text = normalise_line_endings(handle.read())
                found = ModuleSource(name, spec.submodule_search_locations is not None, text, locations)
            elif spec is None and name in self.replaced:  # a module that is not written yet
                found = ModuleSource(name, False, self.replaced[name])
        self._modules[name] = found
        return found

    def source(self, name: str) -> ModuleSource:
        """The module called ``name``; raises LookupError when there is none."""
        module = self.get(name)
        if module is None:
            raise LookupError(f"no source file for module {name}")
        return module

    def tree(self, name: str) -> ast.Module:
        """The parsed source of module ``name``."""
        if name not in self._trees:
            self._trees[name] = ast.parse(self.source(name).text, filename=name)
        return self._trees[name]

    # ---- imports -----------------------------------------------------------------------------
    def resolve(self, importer: str, module: str | None, level: int) -> str:
        """The absolute name ``from <level dots><module> import ...`` in ``importer`` refers to."""
        if level == 0:
            return module or ""
        package = importer if self.source(importer).is_package else importer.rpartition(".")[0]
        parts = package.split(".")
        if level - 1 >= len(parts):
            raise ImportError(f"{importer}: relative import beyond the top-level package")
        base = ".".join(parts[: len(parts) - (level - 1)])
        return f"{base}.{module}" if module else base

    def imports(self, name: str) -> frozenset[str]:
        """The ``omasgan.*`` modules ``name`` imports anywhere in its source (see the module docstring)."""
        if name in self._imports:
            return self._imports[name]
        found: set[str] = set()
        for node in _import_statements(self.tree(name).body):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if in_package(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = self.resolve(name, node.module, node.level)
                if not in_package(base):
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if alias.name != "*" and self.get(submodule) is not None else base)
        found = {module for module in found if self.get(module) is not None}
        found.discard(name)
        self._imports[name] = frozenset(found)
        return self._imports[name]

    def closure(self, roots: Iterable[str]) -> frozenset[str]:
        """``roots`` and every module they import, transitively."""
        seen: set[str] = set()
        stack = [self.source(root).name for root in roots]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.imports(name) - seen)
        return frozenset(seen)

    def defining_module(self, module: str, name: str, depth: int = 8) -> str:
        """The module that defines what ``from <module> import <name>`` binds: the submodule
        ``module.name`` when there is one, else the module a re-export in ``module`` points to
        (``from .task1 import train_task1`` in a package's ``__init__``), else ``module`` itself."""
        if self.get(f"{module}.{name}") is not None:
            return f"{module}.{name}"
        if depth > 0:
            for node in self.tree(module).body:
                if isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        if (alias.asname or alias.name) == name:
                            base = self.resolve(module, node.module, node.level)
                            if in_package(base) and self.get(base) is not None:
                                return self.defining_module(base, alias.name, depth - 1)
        return module

    # ---- the whole package -------------------------------------------------------------------
    def _walk(self, package: str) -> set[str]:
        """Every module file under a package's folders (sub-folders that are regular packages)."""
        found = set()
        for location in self.source(package).locations:
            for folder, subfolders, files in os.walk(location):
                relative = os.path.relpath(folder, location)
                prefix = package if relative == "." else f"{package}.{relative.replace(os.sep, '.')}"
                subfolders[:] = sorted(d for d in subfolders if os.path.isfile(os.path.join(folder, d, "__init__.py")))
                for file in sorted(files):
                    if file.endswith(".py"):
                        stem = file[:-3]
                        name = prefix if stem == "__init__" else f"{prefix}.{stem}"
                        if self.get(name) is not None:
                            found.add(name)
        return found

    def all_modules(self) -> frozenset[str]:
        """Every module file of the namespace: the files under ``omasgan``'s folders, and under the
        folder of every sub-package installed in a folder of its own (``omasgan.trainables`` in an
        editable install) that the distribution's entry points or the source of a module found so far
        names (``omasgan.<name>`` anywhere in its text: found by a text search, no parsing)."""
        walked: set[str] = set()
        modules: set[str] = set()
        named = [PACKAGE]
        try:
            named += [prefix for point in metadata.distribution(PACKAGE).entry_points if in_package(point.module)
                      for prefix in _prefixes(point.module)]
        except metadata.PackageNotFoundError:
            pass
        seen: set[str] = set()
        while named:
            name = named.pop()
            if name in seen:
                continue
            seen.add(name)
            module = self.get(name)
            if module is None or not module.locations or any(_inside(folder, walked) for folder in module.locations):
                continue
            walked.update(module.locations)
            found = self._walk(name)
            modules |= found
            for member in sorted(found):
                for text in NAMED_MODULE.findall(self.source(member).text):
                    named.extend(prefix for prefix in _prefixes(text.decode()) if prefix not in seen)
        return frozenset(modules)


NAMED_MODULE = re.compile(rb"\b" + PACKAGE.encode() + rb"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
"""A dotted name under the package, as it appears in source text (imports, strings, docstrings)."""


def _prefixes(name: str) -> list[str]:
    """``omasgan.a.b`` -> ``["omasgan", "omasgan.a", "omasgan.a.b"]``: the module and the packages it is in."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _import_statements(body: list[ast.stmt]) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement in ``body`` and the statement blocks nested in it (functions, classes,
    ``if``/``try``/``with``/loops/``match``); expressions, where no import can be, are not visited."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for block in ("body", "orelse", "finalbody", "handlers", "cases"):
            nested = getattr(node, block, None)
            if isinstance(nested, list) and nested:
                yield from _import_statements(nested)


def _inside(folder: str, roots: set[str]) -> bool:
    """Whether ``folder`` is one of ``roots`` or below one."""
    folder = os.path.realpath(folder)
    return any(folder == root or folder.startswith(root.rstrip(os.sep) + os.sep)
               for root in map(os.path.realpath, roots))
