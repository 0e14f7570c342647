"""The library's shape, read from its source: no import cycles, no private names
crossing modules, Tornado privates in one module, no oversized class or function.

These are the rules of the layered core (docs/architecture.md); the layers
themselves are import-linter contracts in pyproject.toml, checked by .ci/run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parent.parent / "tornado_sio"
MAX_CLASS_LINES = 400
MAX_FUNCTION_LINES = 80
#: The one module allowed to use Tornado's and sockjs-tornado's private API.
PRIVATE_API_MODULE = "tornado_sio.http._fastpath"


def _modules() -> Dict[str, Tuple[Path, ast.Module]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


MODULES = _modules()


def _typing_only_lines(tree: ast.Module) -> Set[int]:
    lines: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                for child in node.body:
                    lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _resolve(module: str, is_package: bool, level: int, name: str) -> str:
    if not level:
        return name
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def _import_graph() -> Dict[str, Set[str]]:
    """module -> modules of the package it imports at run time (function-level imports count)."""
    graph: Dict[str, Set[str]] = defaultdict(set)
    for module, (path, tree) in MODULES.items():
        typing_only = _typing_only_lines(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if getattr(node, "lineno", 0) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node.level, node.module or "")
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    dest = sub if sub in MODULES else target
                    if dest in MODULES and dest != module:
                        graph[module].add(dest)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.name != module:
                        graph[module].add(alias.name)
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    return found


def _private_names() -> Tuple[Dict[str, Set[str]], List[Tuple[str, str, int]]]:
    """(private name -> modules defining it, [(module, name, line) of non-self uses])."""
    defined: Dict[str, Set[str]] = defaultdict(set)
    uses: List[Tuple[str, str, int]] = []
    for module, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name.startswith("_") and not node.name.startswith("__"):
                    defined[node.name].add(module)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if node.id.startswith("_") and not node.id.startswith("__"):
                    defined[node.id].add(module)
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    if isinstance(node.ctx, ast.Store):
                        defined[node.attr].add(module)
                    else:
                        uses.append((module, node.attr, node.lineno))
                else:
                    uses.append((module, node.attr, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        uses.append((module, alias.name, node.lineno))
    return defined, uses


def test_the_library_has_no_import_cycles():
    assert _cycles(_import_graph()) == []


def test_no_private_name_crosses_modules():
    defined, uses = _private_names()
    crossings = sorted({(m, n, line) for m, n, line in uses if n in defined and m not in defined[n]})
    assert crossings == []


def test_tornado_and_sockjs_privates_live_in_one_module():
    defined, uses = _private_names()
    foreign = defaultdict(set)
    for module, name, _ in uses:
        if name not in defined:
            foreign[module].add(name)
    for module, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("tornado", "sockjs"):
                foreign[module].update(a.name for a in node.names if a.name.startswith("_"))
    offenders = {m: sorted(names) for m, names in foreign.items() if names and m != PRIVATE_API_MODULE}
    assert offenders == {}


def test_no_class_is_longer_than_400_lines():
    long = [(m, n.name, n.end_lineno - n.lineno + 1) for m, (_, tree) in MODULES.items()
            for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
            and n.end_lineno - n.lineno + 1 > MAX_CLASS_LINES]
    assert long == []


def test_no_function_is_longer_than_80_lines():
    long = [(m, n.name, n.end_lineno - n.lineno + 1) for m, (_, tree) in MODULES.items()
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_protocol_layer_imports_neither_tornado_nor_asyncio():
    offenders = []
    for module, (_, tree) in MODULES.items():
        if not module.startswith("tornado_sio.protocol"):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            offenders += [(module, n) for n in names if n.split(".")[0] in ("tornado", "asyncio", "sockjs")]
    assert offenders == []
