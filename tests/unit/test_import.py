"""`import optlib` stays light, and the engine's modules form no import cycle."""

import ast
import subprocess
import sys
from pathlib import Path

OPTLIB = Path(__file__).resolve().parents[2] / "optlib"


def _modules():
    """{dotted name: path} of every module in optlib."""
    found = {}
    for path in OPTLIB.rglob("*.py"):
        parts = path.relative_to(OPTLIB.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path, modules):
    """The optlib modules ``path`` imports anywhere in it (at the top or inside a function)."""
    edges = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optlib"):
            edges |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            edges |= {a.name for a in node.names if a.name.startswith("optlib")}
    return {e for e in edges if e in modules}


def test_import_optlib_does_not_import_tensorflow():
    code = ("import sys, optlib, optlib.engine.schemes, optlib.engine.sweep, optlib.engine.executors, optlib.cli, "
            "optlib.engine.store, optlib.inputs.models, optlib.inputs.data_refs, optlib.inputs.readers, "
            "optlib.inputs.preparation, optlib.inputs.tfds_folder, optlib.inputs.archive, "
            "optlib.guide.wizard, optlib.analysis.reference\n"
            "optlib.schemes.names(); optlib.Store\n"
            "heavy = [m for m in ('tensorflow', 'tf_keras', 'keras', 'streamlit') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_module_imports_one_that_imports_it_back():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    cycles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(trail[trail.index(other):] + [other]))
            elif other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_every_module_imports_alone():
    names = sorted(name for name in _modules() if not name.endswith("__main__"))
    processes = {name: subprocess.Popen([sys.executable, "-c", f"import {name}"], stderr=subprocess.PIPE, text=True)
                 for name in names}
    failed = {name: p.communicate()[1].strip().splitlines()[-1:] for name, p in processes.items() if p.wait()}
    assert len(names) > 30 and failed == {}


def test_pages_use_the_public_modules_and_the_store_never_engine_internals():
    """Pages read results and call the engine's entry points; jobs, executors and builders are the engine's own."""
    internal = ("optlib.engine.job", "optlib.engine.executors", "optlib.engine.convert", "optlib.engine.measure",
                "optlib.engine.schemes.", "optlib._")
    pages = [*(OPTLIB.parent / "pages").glob("*.py"), OPTLIB.parent / "app.py"]
    modules = _modules()
    found = {}
    for page in pages:
        tree = ast.parse(page.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optlib"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    target = full if full in modules else node.module
                    if target.startswith(internal) or alias.name.startswith("_"):
                        found.setdefault(page.name, []).append(full)
    assert len(pages) > 8 and found == {}


# The floors of optlib, lowest first: a module may import its own floor and those below, never one above.
FLOORS = ("optlib.inputs", "optlib.engine", "optlib.guide", "optlib.analysis", "optlib.views")
BASE = {"optlib._keras", "optlib._quiet", "optlib.errors", "optlib.paths", "optlib.units"}  # below every floor


def _floor(name):
    if name in BASE:
        return -1
    for number, floor in enumerate(FLOORS):
        if name == floor or name.startswith(floor + "."):
            return number
    return len(FLOORS)  # optlib itself, the CLI and the API: the top


def _builder_modules():
    """The modules named by the registry's builder strings ("module:function"), imported when a scheme runs."""
    from optlib.engine import schemes

    return {s.builder.split(":")[0] for s in schemes.list_schemes(variants=True)}


def _upward(modules, graph):
    return sorted(f"{a} -> {b}" for a, edges in graph.items() for b in edges
                  if _floor(a) < len(FLOORS) and _floor(b) > _floor(a))


def test_engine_and_inputs_never_import_a_floor_above_them():
    """Every import counts, those inside functions and the registry's builder strings too."""
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    graph["optlib.engine.schemes"] |= _builder_modules() & set(modules)
    assert [edge for edge in _upward(modules, graph) if _floor(edge.split(" -> ")[0]) <= 1] == []


def test_the_floor_check_sees_a_planted_import_inside_a_function():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    graph["optlib.engine.measure"] = graph["optlib.engine.measure"] | {"optlib.analysis.insight"}
    assert "optlib.engine.measure -> optlib.analysis.insight" in _upward(modules, graph)
