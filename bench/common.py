"""What the bench scripts share: the target/oracle pair of a built-in benchmark, one row per method run on it, and
a value with its interval as a table cell. (Run a script as ``python bench/NAME.py``; this module sits beside it.)"""
from __future__ import annotations

import re
import time

# What the script measured, in the order it printed it: tables (title, header, rows of cell text) and lines of
# text. write_result stores them beside the values, and the docs render them from the results file.
RECORD: dict[str, list] = {"tables": [], "lines": []}
_CI = re.compile(r"^\s*([-+]?[\d.]+(?:e[-+]?\d+)?%?)\s*\[\s*([-+]?[\d.]+(?:e[-+]?\d+)?),\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\]")


def _parsed(text: str):
    """A cell as measured: its text, and its value and 95 % interval when it reads ``value [low, high]``."""
    m = _CI.match(text)
    if not m:
        return text
    v = m.group(1).rstrip("%")
    return {"text": text, "value": float(v), "ci": [float(m.group(2)), float(m.group(3))]}


def table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a table (``a | b | c`` lines under its title) and keep it for the results file."""
    rows = [[str(c) for c in r] for r in rows]
    print(f"\n{title}")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join(r))
    RECORD["tables"].append({"title": title, "header": list(header), "rows": [[_parsed(c) for c in r] for r in rows]})


def say(text: str) -> None:
    """Print a line of findings and keep it for the results file."""
    print(text, flush=True)
    RECORD["lines"].append(text)


def cell(metrics: dict, ci: dict | None, key: str) -> str:
    """``value [low, high]`` (3 and 2 decimals), ``value`` without an interval, ``n/a`` without a value."""
    v, c = metrics.get(key), (ci or {}).get(key)
    if v is None:
        return "n/a"
    return f"{v:.3f} [{c[0]:.2f}, {c[1]:.2f}]" if c else f"{v:.3f}"


def method_spec(spec: str, flag: str) -> tuple[str, dict]:
    """``name`` or ``name[key=value key=value]``: a method and the options it runs with beyond the bench's own
    (values as text, as the CLI's ``--set`` takes them). An unknown method, option or value is an error naming
    ``flag`` before any work starts."""
    from obliviate.cli.common import parse_sets
    from obliviate.core.utils import ObliviateError
    from obliviate.methods.registry import method_config

    name, bracket, rest = spec.partition("[")
    if bracket and not rest.endswith("]"):
        raise SystemExit(f"{flag}: {spec!r} should end with ']'")
    try:
        opts = parse_sets(rest[:-1].split(), flag=f"{flag} {spec!r}") if bracket else {}
        method_config(name, opts)
    except ObliviateError as e:
        raise SystemExit(f"{flag} {spec!r}: {e}") from None
    return name, opts


def pair(model: str, benchmark: str):
    """``(bench, target, oracle, tokenizer, request, paths)``: the cached target and oracle, the benchmark's request
    and the pair's folders (``paths["target"]``, ``paths["oracle"]``)."""
    import obliviate as ob

    bench = ob.load_benchmark(benchmark)
    paths = ob.train_pair(model, bench)
    target, tok = ob.load_model(paths["target"])
    oracle, _ = ob.load_model(paths["oracle"])
    return bench, target, oracle, tok, ob.UnlearnData.from_benchmark(bench, tok), paths


def references(target, oracle, tok, bench, paths: dict) -> tuple:
    """``(oracle's result, target's result against it)``, each read from the evaluation cache when these weights,
    this benchmark and this library were scored before (``obliviate.evals.cache``): a bench restarted on the same
    pair skips the two evaluations (minutes each on a pretrained pair on CPU)."""
    from obliviate.evals import EvalConfig
    from obliviate.evals.cache import evaluate_cached

    ref, _ = evaluate_cached(oracle, tok, bench, EvalConfig(), paths["oracle"], desc="evaluate oracle")
    base, _ = evaluate_cached(target, tok, bench, EvalConfig(), paths["target"], oracle=ref, desc="evaluate target")
    return ref, base


def text_nll(model, tok, texts: list[str], max_length: int = 256) -> tuple[float, int]:
    """``(summed negative log-likelihood, tokens)`` of plain ``texts`` under ``model``: a perplexity is
    ``exp(nll / tokens)``."""
    from obliviate.data import Example
    from obliviate.evals.scoring import Scorer

    scored = Scorer(model, tok, max_length=max_length).score([Example("", x) for x in texts])
    return -sum(float(x.logp.sum()) for x in scored), sum(x.logp.size for x in scored)


def perplexity(model, tok, texts: list[str]) -> float:
    """Per-token perplexity of plain ``texts`` under ``model`` (all their tokens pooled)."""
    import math

    nll, n = text_nll(model, tok, texts)
    return math.exp(nll / n)


def probe_hits(model, tok, probes: dict, names: list[str]) -> list[bool]:
    """Whether ``model`` answers each forget probe of the real targets ``names`` (as
    :func:`obliviate.evals.rwku.evaluate_rwku` judges it; the neighbours' probes are not asked)."""
    from dataclasses import replace

    from obliviate.evals.rwku import evaluate_rwku

    alone = {n: replace(probes[n], neighbours=[]) for n in names}
    return [r["correct"] for n in names for r in evaluate_rwku(model, tok, n, alone, bootstrap=0)["rows"]]


def _git(*args: str) -> str:
    """``git ARGS`` in the repository, its output stripped; ``unknown`` where git or the repository is missing."""
    import subprocess
    from pathlib import Path

    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cached_row(key: dict, compute) -> dict:
    """``compute()``'s JSON-able result, cached under ``$OBLIVIATE_CACHE/bench_rows`` by ``key`` and the library's
    source tree (git's tree hash of ``obliviate/``; never read back while it has uncommitted changes), so a long
    bench stopped midway resumes where it stopped and a change to the library measures again."""
    import hashlib
    import json
    from pathlib import Path

    from obliviate.core.utils import cache_dir, write_json_atomic

    # uncommitted library changes (or no git: "unknown") make the key one that is never read back
    tree = "unknown" if _git("status", "--porcelain", "--", "obliviate") else _git("rev-parse", "HEAD:obliviate")
    digest = hashlib.sha256(json.dumps([tree, key], sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = Path(cache_dir()) / "bench_rows" / f"{digest}.json"
    if tree != "unknown" and path.exists():
        return json.loads(path.read_text())
    out = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, json.loads(json.dumps(out, default=str)))
    return out


def run_rows(rows, target, tok, data) -> tuple[dict, dict, dict]:
    """Unlearn ``target`` once per ``(label, method, options)``: ``(models, infos, seconds)`` by label."""
    import obliviate as ob

    models, infos, secs = {}, {}, {}
    for label, method, opts in rows:
        t = time.time()
        models[label], infos[label] = ob.unlearn(target, tok, data, method, opts)
        secs[label] = time.time() - t
    return models, infos, secs


def evaluate_all(models: dict, target, oracle, tok, bench, paths: dict) -> dict:
    """Evaluation results of the target, the oracle (both through :func:`references`) and every model, each
    against the oracle."""
    import obliviate as ob

    o, t = references(target, oracle, tok, bench, paths)
    out = {"target": t, "oracle": o}
    for label, m in models.items():
        out[label] = ob.evaluate(m, tok, bench, oracle=o)
    return out


def print_table(results: dict, keys: list[str], secs: dict, seconds_label: str = "seconds",
                title: str = "value [95 % interval over people]") -> None:
    table(title, ["model", *keys, seconds_label],
          [[name, *[cell(r.metrics, r.ci, k) for k in keys], f"{secs[name]:.1f}" if name in secs else "-"]
           for name, r in results.items()])


def print_attacks(models: dict, tok, bench, target, oracle, attacks: str) -> None:
    """Run the attacks on every model (and the target and oracle) and print each one's gain over the oracle's."""
    import obliviate as ob

    t = time.time()
    res = ob.run_attacks(models, tok, bench, target=target, oracle=oracle, attacks=attacks)
    attack_table(res, models, f"attacks ({time.time() - t:.0f} s): gain over the oracle's gain [95 % interval], "
                              "verdict")


def attack_table(res: dict, models, title: str) -> None:
    """One row per attack (the plain questions first), one column per model: gain [interval] and verdict."""
    from obliviate.report.console import gain_cells

    table(title, ["attack", *models], [[attack, *cells] for attack, cells in gain_cells(res, models)])


def write_result(name: str, values: dict, config: dict, argv: list[str] | None = None) -> str:
    """Write ``bench/results/NAME.json``: the numbers (each a value, or ``{"value": v, "ci": [lo, hi]}``), the
    tables and lines the script printed through :func:`table` and :func:`say`, with what produced them (the commit, whether the tree had changes, the command, the resolved config, library
    versions, the machine, the date). Docs pages are rendered from these files, never typed by hand."""
    import json
    import os
    import platform
    import shlex
    import sys
    from pathlib import Path

    from obliviate.core.utils import versions, write_json_atomic

    root = Path(__file__).resolve().parent.parent
    # uncommitted changes to the code that measured (results files, this run's and earlier ones, do not count)
    changed = [line for line in _git("status", "--porcelain", "--", "obliviate", "bench").splitlines()
               if not line.split(maxsplit=1)[-1].startswith("bench/results/")]
    record = {"bench": name, "commit": _git("rev-parse", "HEAD"), "dirty": bool(changed),
              "command": shlex.join(["python", *(argv if argv is not None else sys.argv)]),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
              "machine": {"cpu": _cpu_name() or platform.machine(), "cores": os.cpu_count(), "threads": _threads()},
              "config": config, "values": values, **{k: v for k, v in RECORD.items() if v}}
    out = root / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, json.loads(json.dumps(record, default=str)))
    print(f"wrote {out.relative_to(root)}")
    return str(out)


def _cpu_name() -> str | None:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _threads() -> int:
    import torch

    return torch.get_num_threads()
