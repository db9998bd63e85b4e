"""The import graph of src/nnlab: no cycles (function-level imports included), no private names across modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Private names still used across modules in files that another issue owns; each entry is a debt, not a rule.
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()  # (module, target, name) pairs allowed for now: none


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _target(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_graph(src: Path = SRC) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Every module's nnlab imports (anywhere in the file), and each (module, imported module, private name) use."""
    modules = {module_name(p, src): p for p in (src / "nnlab").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    private: list[tuple[str, str, str]] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        imported: set[str] = set()
        bound: dict[str, str] = {}  # local name -> the nnlab module it names
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "nnlab":
                        imported.add(alias.name)
                        if alias.asname:
                            bound[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                target = _target(name, path.name == "__init__.py", node)
                if target.split(".")[0] != "nnlab":
                    continue
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    if submodule in modules:
                        imported.add(submodule)
                        bound[alias.asname or alias.name] = submodule
                    else:
                        imported.add(target)
                        if _private(alias.name):
                            private.append((name, target, alias.name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
                other = bound.get(node.value.id)
                if other is not None and other != name:
                    private.append((name, other, node.attr))
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph, private


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_in_nnlab():
    graph, _ = import_graph()
    assert len(graph) > 50  # the walk found the package
    assert "nnlab.training.tbptt" in graph["nnlab.training.fit"]  # function-level imports are seen
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_a_private_name_of_another():
    _, private = import_graph()
    found = sorted(set(private) - KNOWN_PRIVATE)
    assert not found, "\n".join(f"{m} uses {target}.{name}" for m, target, name in found)


# What any command may use besides the one library part it calls: error mapping, the error types, run-folder basics.
COMMAND_SHARED = {"nnlab.cli._common", "nnlab.errors", "nnlab.runs"}


def library_parts(imported: set[str]) -> set[str]:
    """The nnlab packages and top-level modules among `imported` (`nnlab.reports.x` and `nnlab.reports.y` are one)."""
    return {".".join(m.split(".")[:2]) for m in imported - COMMAND_SHARED}


def test_each_command_calls_one_library_part():
    """Commands stay thin: a command module maps its options and errors onto one package or module of the library."""
    graph, _ = import_graph()
    commands = sorted(m for m in graph
                      if m.startswith("nnlab.cli.") and m not in ("nnlab.cli.main", "nnlab.cli._common"))
    assert "nnlab.cli.runs" in commands
    wide = {m: sorted(library_parts(graph[m])) for m in commands if len(library_parts(graph[m])) > 1}
    assert not wide, "\n".join(f"{m} imports {', '.join(parts)}" for m, parts in wide.items())


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "nnlab" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_walk_finds_a_function_level_cycle_and_private_names(tmp_path):
    src = _write(tmp_path, {
        "__init__.py": "",
        "a.py": "from nnlab import b\n",
        "pkg/__init__.py": "",
        "pkg/c.py": "def f():\n    from nnlab.pkg.d import _hidden\n",
        "pkg/d.py": "from nnlab import a\n_hidden = 1\n",
        "b.py": "def g():\n    from .pkg import c\n    return c._f()\n",
    })
    graph, private = import_graph(src)
    assert find_cycle(graph) == ["nnlab.a", "nnlab.b", "nnlab.pkg.c", "nnlab.pkg.d", "nnlab.a"]
    assert sorted(private) == [("nnlab.b", "nnlab.pkg.c", "_f"), ("nnlab.pkg.c", "nnlab.pkg.d", "_hidden")]
    (src / "nnlab" / "pkg" / "d.py").write_text("_hidden = 1\n")
    assert find_cycle(import_graph(src)[0]) is None


def test_the_package_overview_names_every_part_once():
    """nnlab/__init__.py's docstring has one line per package and module of src/nnlab: what it owns."""
    import nnlab

    named = re.findall(r"^  (\S+) {2,}\S", nnlab.__doc__, flags=re.M)
    root = SRC / "nnlab"
    parts = sorted([f"{p.name}/" for p in root.iterdir() if p.is_dir() and any(p.glob("*.py"))]
                   + [p.name for p in root.glob("*.py") if p.name != "__init__.py"])
    assert sorted(named) == parts
    assert len(named) == len(set(named))
