"""The layout reads one way: pages -> ui -> pedsense (runs/jobs -> infer/evaluation -> train ->
data -> config/io), with no import cycle and nothing running back up.

Read from the source (every import, at module level or inside a function), not from
``sys.modules``: a lazy import that runs back up is as wrong as an eager one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Lower layers first; a module may import its own layer and the ones before it.
LAYERS = (
    ("base", ("pedsense", "pedsense.config", "pedsense.io", "pedsense.errors", "pedsense.device",
              "pedsense.procs")),
    ("data", ("pedsense.data", "pedsense.geometry", "pedsense.metrics", "pedsense.catalogue")),
    ("run folders", ("pedsense.runfolder", "pedsense.runsummary", "pedsense.workqueue", "pedsense.runqueue",
                     "pedsense.runlabels", "pedsense.runfilter", "pedsense.runreport",
                     "pedsense.sysmon", "pedsense.epoch_predictions")),
    ("train", ("pedsense.train",)),
    ("inference", ("pedsense.infer", "pedsense.evaluation", "pedsense.benchmarks", "pedsense.breakdown",
                   "pedsense.export", "pedsense.errors_browser")),
    ("management", ("pedsense.runs", "pedsense.jobs", "pedsense.worker", "pedsense.supervisor", "pedsense.launches", "pedsense.sweeps",
                    "pedsense.leaderboard", "pedsense.mlflow_export")),
    ("cli", ("pedsense.commands", "pedsense.cli", "pedsense.__main__")),
    ("ui", ("ui",)),
    ("pages", ("pages", "app")),
)
# The package's lazy ``pedsense.evaluate`` (README's one-liner) is the one deliberate upward name.
ALLOWED = {("pedsense", "pedsense.evaluation")}


def layer_of(module: str) -> int:
    best, found = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found is not None, f"{module} belongs to no layer: add it to LAYERS"
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def sources() -> list[Path]:
    files = [REPO / "app.py"]
    for folder in ("pedsense", "ui", "pages"):
        files += sorted((REPO / folder).rglob("*.py"))
    return files


def imports(path: Path, module: str) -> tuple[set[str], set[str]]:
    """(every project module imported, those imported at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    every, top = set(), set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            # ``from pedsense.train import resnet_lstm`` imports the submodule, not only the package
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        names = [n for n in names if n.split(".")[0] in ("pedsense", "ui", "pages", "app")]
        every.update(names)
        if node in tree.body:
            top.update(names)
    return every, top


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    every, top = {}, {}
    for path in sources():
        module = module_name(path)
        every[module], top[module] = imports(path, module)
    return every, top


def test_every_import_flows_downwards():
    every, _ = graph()
    wrong = []
    for module, targets in every.items():
        for target in targets:
            allowed = any(module == a and (target == b or target.startswith(b + ".")) for a, b in ALLOWED)
            if not allowed and layer_of(target) > layer_of(module):
                wrong.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle():
    every, _ = graph()
    modules = set(every)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {resolve(t) for t in ts} - {None, m} for m, ts in every.items()}
    done, stack = set(), []

    def visit(node: str) -> None:
        if node in stack:
            cycle = stack[stack.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        stack.append(node)
        for child in sorted(edges.get(node, ())):
            visit(child)
        stack.pop()
        done.add(node)

    for module in sorted(modules):
        visit(module)


def test_pages_hold_only_pages_and_stay_short():
    for page in sorted((REPO / "pages").glob("*.py")):
        lines = page.read_text(encoding="utf-8").count("\n")
        assert lines <= 150, f"{page.name} has {lines} lines: move its helpers to ui/"
    every, _ = graph()
    for module, targets in every.items():
        if not module.startswith("pages"):
            assert not any(t.startswith("pages") for t in targets), f"{module} imports a page"


def test_no_library_module_is_oversized():
    for path in sorted((REPO / "pedsense").rglob("*.py")) + sorted((REPO / "ui").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").count("\n")
        assert lines <= 520, f"{path.relative_to(REPO)} has {lines} lines: split it by job"


def test_no_test_skips_when_pedsense_itself_fails_to_import():
    """A broken import of pedsense's own code must fail the suite, never turn into a skip."""
    skipping = ("importorskip(\"pedsense", "importorskip('pedsense", "find_spec(\"pedsense", "find_spec('pedsense",
                "importorskip(\"ui", "find_spec(\"ui")
    found = [f"{path.name}:{number}" for path in sorted((REPO / "tests").glob("*.py")) if path.name != "test_layers.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if any(pattern in line for pattern in skipping)]
    assert not found, f"import pedsense's modules plainly instead: {found}"

