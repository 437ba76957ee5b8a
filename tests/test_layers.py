"""The house's import rules, checked on the source (every import, those inside functions too): no cycles among
obliviate's modules, and a layer never imports a higher one. The layers, bottom up, one folder each:
core < data < models < engine < evals < methods < attacks < audit < report < runs < cli (``obliviate/__init__.py``,
the public API, may import any)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "obliviate"
LAYERS = ("core", "data", "models", "engine", "evals", "methods", "attacks", "audit", "report", "runs", "cli")


def _modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports() -> dict[str, set[str]]:
    """Module -> the obliviate modules it imports (a package's __init__ re-exporting its own modules excluded)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = {}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        out = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                src = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
                names = [f"{src}.{a.name}" for a in node.names] + [src]
            for n in names:
                r = resolve(n)
                if r and r != m and not (f.name == "__init__.py" and r.startswith(m + ".")):
                    out.add(r)
        edges[m] = out
    return edges


def test_no_import_cycles():
    edges = _imports()
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == [], f"import cycles: {cycles}"


def _layer(m: str) -> int:
    return LAYERS.index(m.split(".")[1])


def test_the_package_holds_layers_only():
    """``obliviate/`` holds its ``__init__.py`` and the layers' folders, nothing else."""
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name != "__init__.py")
    folders = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert loose == [] and folders == sorted(LAYERS)


def test_lower_layers_never_import_higher_ones():
    upward = sorted(f"{m} -> {t}" for m, ts in _imports().items() for t in ts
                    if m != "obliviate" and _layer(t) > _layer(m))
    assert upward == [], "imports that run up the layers:\n" + "\n".join(upward)
