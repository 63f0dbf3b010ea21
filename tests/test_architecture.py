"""The package's structure: layers import downward only, no import cycles, light imports.

Every ``plastinet`` module belongs to a *unit*: a subpackage (``spiking``, ``experiments``
...) or a top-level module (``simulation``, ``cli`` ...). :data:`ALLOWED` says which units
each unit may import from (every import statement counts, including those inside
functions); the unit graph must have no cycles, and neither may the modules of a unit.
docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plastinet"

#: Foundations every unit may use: errors, units, parameters, seeds, sizes, array checks,
#: result conventions, BLAS thread control, building the compiled loops.
CORE = {"_version", "errors", "units", "params", "seeds", "sizes", "validation", "results", "_blas", "_native"}
#: Which units each unit may import from (besides itself and :data:`CORE`).
ALLOWED: dict[str, set[str]] = {
    **{name: set() for name in CORE},
    "fwp": set(),                                   # rate rules, feature maps, the rate engine
    "tasks": set(),
    "io": set(),                                    # files: model files, results, checkpoints
    "spiking": {"io"},                              # spiking spec and the numpy engine (checkpoints)
    "backends": {"fwp", "spiking"},
    "simulation": {"backends"},                     # the front door
    "analysis": {"fwp", "plotting"},                # Dataset -> Dataset (fwp: see ANALYSIS_FWP)
    "plotting": set(),
    "training": {"fwp", "tasks", "io"},
    "experiments": {"fwp", "tasks", "io", "spiking", "backends", "simulation", "analysis", "plotting",
                    "training"},
    "testing": {"fwp", "spiking", "backends", "simulation"},
    "sweep": {"io", "backends", "experiments"},
    "cli": {"io", "fwp", "backends", "simulation", "experiments", "sweep", "plotting"},
    "__main__": {"cli"},
    "__init__": {"simulation"},                     # ``plastinet.simulate`` (lazy)
}
#: The only rate-engine modules analysis may use: specs and closed-form decay helpers, no runner.
ANALYSIS_FWP = {"plastinet.fwp", "plastinet.fwp.rules", "plastinet.fwp.feature_maps", "plastinet.fwp.forms",
                "plastinet.fwp.forms.decay"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _unit(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _imports() -> dict[str, set[str]]:
    """Every plastinet module -> the plastinet modules it imports (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("plastinet")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("plastinet"):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    targets.add(sub if _is_module(sub) else node.module)
        found[module] = targets
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_unit_imports_only_from_the_layers_below_it():
    imports = _imports()
    units = {_unit(m) for m in imports}
    assert units <= set(ALLOWED), f"units without layer rules: {sorted(units - set(ALLOWED))}"
    bad = []
    for module, targets in sorted(imports.items()):
        unit = _unit(module)
        for target in sorted(targets):
            other = _unit(target)
            if other == unit or other in CORE and unit not in CORE or other in ALLOWED[unit]:
                if unit == "analysis" and other == "fwp" and target not in ANALYSIS_FWP:
                    bad.append(f"{module} -> {target} (analysis runs no rate engine)")
                continue
            if unit in CORE and other in CORE:
                continue
            bad.append(f"{module} -> {target}")
    assert not bad, "imports against the layer rules:\n" + "\n".join(bad)


def test_no_import_cycles_between_units_or_between_the_modules_of_a_unit():
    imports = _imports()
    units: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports.items():
        units[_unit(module)] |= {_unit(t) for t in targets if _unit(t) != _unit(module)}
    assert _cycle(units) is None, f"unit cycle: {' -> '.join(_cycle(units))}"
    # modules: a package's __init__ importing its own submodules is the usual re-export, not a cycle
    modules = {m: {t for t in ts if t in imports and not (m.startswith(t + ".") and t == m.rsplit(".", 1)[0])}
               for m, ts in imports.items()}
    modules = {m: {t for t in ts if not (m.startswith(t + "."))} for m, ts in modules.items()}
    assert _cycle(modules) is None, f"module cycle: {' -> '.join(_cycle(modules))}"


def _loaded_after(code: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(m for m in sys.modules if m.startswith('plastinet'))))"],
                         env=env, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.splitlines()[-1])


def test_the_spiking_package_and_a_spiking_run_load_no_rate_engine_backend_or_experiment():
    loaded = _loaded_after("import plastinet.spiking")
    assert "plastinet.spiking.engine" in loaded
    heavy = [m for m in loaded if _unit(m) in ("fwp", "backends", "experiments", "analysis", "training")]
    assert not heavy, heavy
    loaded = _loaded_after(
        "import numpy as np\n"
        "from plastinet.spiking import LIF, Network, PoissonGroup, Projection, SpikeProbe, run\n"
        "from plastinet.spiking.rules import PairSTDP\n"
        "net = Network()\n"
        "pre = net.add(PoissonGroup(name='pre', n=80, rate=20.0))\n"
        "post = net.add(LIF(name='post', n=60))\n"
        "net.add(Projection(name='syn', pre=pre, post=post, target='I_e', weight=np.full((60, 80), 0.5), rule=PairSTDP()))\n"
        "net.add(SpikeProbe(name='sp', population='post'))\n"
        "run(net, 0.2, seed=0)")
    assert not [m for m in loaded if m.startswith("plastinet.fwp")], [m for m in loaded if "fwp" in m]


def test_the_analysis_package_loads_no_spiking_engine_backend_or_experiment():
    loaded = _loaded_after("import plastinet.analysis")
    runners = [m for m in loaded if _unit(m) in ("spiking", "backends", "experiments", "simulation", "training")]
    assert not runners, runners


def test_the_package_cites_no_file_outside_it():
    """Docstrings and result attributes must not point at design notes that do not ship."""
    cited = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "DESIGN.md" in p.read_text(encoding="utf-8")]
    cited += [str(p.relative_to(ROOT)) for p in (ROOT / "models").glob("*.toml")
              if "DESIGN" in p.read_text(encoding="utf-8")]
    assert not cited, cited
