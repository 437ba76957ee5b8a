"""MUSE's curves of a method (Shi et al., 2024, arXiv:2407.06460, C5 and C6): scalability (growing forget sets)
and sustainability (sequential requests), on a built-in model and benchmark.

    obliviate curve scalability --method npo --out C
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from obliviate.core.outputs import atomic_dir, check_output
from obliviate.core.utils import cache_dir, seed_everything
from obliviate.data import load_benchmark
from obliviate.engine.training import TrainConfig, train_pair
from obliviate.evals.suite import EvalConfig, evaluate
from obliviate.methods import DEFAULT_METHOD, UnlearnData, method_config, unlearn
from obliviate.report import results as build_results
from obliviate.report import write_results
from obliviate.runs.common import RunResult
from obliviate.runs.demo import DEMO_METHOD_CONFIG

# The metrics a curve reports per point. forget_ks_d, not forget_quality: the KS p-value shrinks with the number of
# facts, so on growing forget sets the curve would show n, not forgetting; D does not.
CURVE_METRICS = ("forget_exact_match", "forget_rougeL_recall", "forget_ks_d", "retain_exact_match",
                 "model_utility", "mia_min_k_auc")


def forget_subsets(bench, kind: str, points) -> list[tuple[int, object]]:
    """Sub-benchmarks whose forget split is part of ``bench.forget``, cut by subject (whole people, never half a
    person). ``kind="scalability"``: ``points`` are fractions of the forget subjects, nested prefixes (TOFU's
    forget01 ⊂ forget05 ⊂ forget10). ``kind="sustainability"``: ``points`` is the number of requests; request k
    is the k-th disjoint chunk, and its sub-benchmark holds everything requested so far."""
    import dataclasses

    from obliviate.core.utils import ObliviateError

    subjects = list(dict.fromkeys(r.subject or r.id for r in bench.forget))
    if kind == "scalability":
        try:
            fracs = [float(p) for p in points]
        except ValueError:
            fracs = []
        if not fracs or any(not 0 < f <= 1 for f in fracs) or fracs != sorted(fracs):
            raise ObliviateError(f"--points for scalability: increasing fractions in (0, 1], got {list(points)}")
        cuts = [max(1, round(f * len(subjects))) for f in fracs]
    elif kind == "sustainability":
        k = int(points)
        if not 2 <= k <= len(subjects):
            raise ObliviateError(f"--requests: between 2 and {len(subjects)} (the forget set's subjects), got {k}")
        cuts = [round(len(subjects) * (i + 1) / k) for i in range(k)]
    else:
        raise ObliviateError(f"unknown curve {kind!r}; expected scalability or sustainability")
    out = []
    for i, c in enumerate(cuts):
        keep = set(subjects[:c])
        out.append((i, dataclasses.replace(
            bench, forget=[r for r in bench.forget if (r.subject or r.id) in keep],
            texts={**bench.texts, "forget": [t for t in bench.texts.get("forget", []) if (t.subject or t.id) in keep]})))
    return out


def run_curve(out: str | Path, kind: str, points, model: str = "tiny", benchmark: str = "people",
              method: str = DEFAULT_METHOD, method_cfg: dict | None = None, seed: int = 0,
              cache: str | Path | None = None, overwrite: bool = False, benchmark_seed: int = 0) -> RunResult:
    """MUSE's C5 scalability and C6 sustainability (Shi et al., 2024, Sec. 3) on a built-in model and benchmark.

    - ``scalability``: the target is unlearned, each time from scratch, with growing forget sets;
    - ``sustainability``: the forget set arrives as ``points`` sequential requests, each unlearned from the
      previous result; after each, the model is evaluated on everything requested so far.

    The oracle is the one trained without the whole forget set. For a part of the forget set that is an
    approximation (a true oracle would have seen the other forget people), and it is stated in the notes.
    """
    from obliviate.evals.muse import scalability, sustainability

    cfg_dict = {**DEMO_METHOD_CONFIG.get(method, {}), **(method_cfg or {})}
    cfg_dict.setdefault("seed", seed)
    mcfg = method_config(method, cfg_dict)
    seed_everything(seed)
    guard = [("cache", Path(cache or cache_dir()))]
    check_output(out, overwrite=overwrite, inputs=guard)
    bench = load_benchmark(benchmark, seed=benchmark_seed)
    subsets = forget_subsets(bench, kind, points)
    from obliviate.models import load_model  # looked up at call time, where a caller may have replaced it

    with atomic_dir(out, overwrite=overwrite, inputs=guard) as tmp:
        paths = train_pair(model, bench, TrainConfig(seed=seed), cache=cache)
        target, tok = load_model(paths["target"])
        oracle, _ = load_model(paths["oracle"])
        ecfg = EvalConfig(seed=seed)
        oracle_res = {i: evaluate(oracle, tok, b, ecfg, desc=f"evaluate oracle ({len(b.forget)} forget facts)")
                      for i, b in subsets}
        parts = [_Part(i, b, subsets[i - 1][1] if kind == "sustainability" and i else None, tok) for i, b in subsets]
        t0 = time.time()

        def unlearn_fn(m, part):
            return unlearn(m, tok, part.data, method, mcfg)[0]

        def eval_fn(m, part):  # on everything requested so far
            r = evaluate(m, tok, part.bench, ecfg, oracle=oracle_res[part.index],
                         desc=f"evaluate ({len(part.bench.forget)} forget facts)")
            return {"forget_total": len(part.bench.forget), **{k: r.metrics.get(k) for k in CURVE_METRICS}}

        curve = scalability if kind == "scalability" else sustainability
        rows = curve(target, tok, unlearn_fn, parts, eval_fn)
        results = build_results(
            kind, seed=seed, config={"model": model, "benchmark": benchmark, "method": method,
                                     "method_config": asdict(mcfg), "points": points},
            benchmark=bench.summary(),
            curves=[{"title": f"MUSE {'C5 scalability' if kind == 'scalability' else 'C6 sustainability'}"
                              f": {method} on {model}", "x": "forget_size" if kind == "scalability" else "request",
                     "rows": rows, "keys": list(CURVE_METRICS)}],
            notes=["forget_ks_d per point is measured against the oracle trained without the whole forget set (an "
                   "approximation for a part of it)"],
            timings={"total": time.time() - t0})
        write_results(tmp, results)
    return RunResult(results, out)


class _Part(list):
    """One point of a curve: the forget facts of this request (a list, so ``len`` is its size), the
    sub-benchmark to evaluate on (everything requested so far) and the :class:`UnlearnData` to unlearn with."""

    def __init__(self, index: int, bench, previous, tok):
        from obliviate.data.format import examples_from

        seen = set()
        if previous is not None:  # sustainability: only what this request adds
            seen = {r.id for r in previous.forget} | {t.id for t in previous.texts.get("forget", [])}
        facts = [r for r in bench.forget if r.id not in seen]
        super().__init__(facts)
        self.index, self.bench = index, bench
        self.data = UnlearnData.from_benchmark(bench, tok)
        self.data.forget = examples_from(tok, facts, [t for t in bench.texts.get("forget", []) if t.id not in seen])
