"""Retrain-free editing (SSD, ROCR, Needle) beside NPO and GradDiff: behaviour against the oracle, cost, the
attacks that change the form of a question, and the intrinsic concept-vector measurements.

    python bench/editing.py [--model tiny] [--attacks paraphrase,adversarial_prompts,multi_hop,in_context]
    python bench/editing.py --rwku "William Shakespeare" --model smollm2-135m      # one built-in probe target

Every method runs with its defaults (NPO with the demo's setting); ``--row NAME:JSON`` adds a row with options.
ROCR's redirect rate is the share of forget facts whose greedy answer states the replacement subject's value for
the same attribute; the target's and the oracle's rates under the same mapping are its baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from common import cell, evaluate_all, pair, print_attacks, print_table, run_rows, say, table, write_result

ATTACKS = "paraphrase,adversarial_prompts,multi_hop,in_context"
KEYS = ["forget_exact_match", "retain_exact_match", "world_exact_match", "forget_quality", "model_utility"]
INTRINSIC = ["concept_cosine", "concept_relative_delta", "concept_jaccard"]


def rows_of(a, pretrained: bool = False) -> list[tuple[str, str, dict]]:
    """Each method at its defaults; NPO at the demo's setting (on a pretrained model: the README's RWKU setting,
    and GradDiff at the same steps and lr)."""
    grad = {"max_steps": 20, "lr": 1e-4, "batch_size": 4} if pretrained else {}
    rows = [("ssd", "ssd", {}), ("rocr", "rocr", {}), ("rocr all", "rocr", {"positions": "all"}),
            ("needle", "needle", {}),
            ("npo", "npo", grad or {"retain_weight": 5.0, "epochs": 10}), ("graddiff", "graddiff", grad)]
    for r in a.row:
        label, spec = r.split(":", 1)
        opts = json.loads(spec)
        rows.append((label, opts.pop("method", label.split()[0]), opts))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--attacks", default=ATTACKS)
    ap.add_argument("--no-attacks", action="store_true")
    ap.add_argument("--row", action="append", default=[], help='extra row LABEL:JSON, e.g. \'ssd a=2:{"method": '
                                                               '"ssd", "alpha": 2}\'')
    ap.add_argument("--rwku", help="instead: a pretrained --model and one built-in probe target")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    if a.rwku:
        return rwku(a)
    from obliviate.methods.editing.intrinsic import concept_vectors, intrinsic
    from obliviate.methods.editing.rocr import redirect_rate

    bench, target, oracle, tok, data, paths = pair(a.model, a.benchmark)
    models, info, secs = run_rows(rows_of(a), target, tok, data)
    results = evaluate_all(models, target, oracle, tok, bench, paths)

    print_table(results, KEYS, secs, title=f"{a.model} on {bench.name} (forget {len(bench.forget)} facts of "
                f"{len({r.subject for r in bench.forget})} people): value [95 % interval over people]")

    for label in models:
        i = info[label]
        if "dampened_share" in i:
            top = list(i["dampened_share_by_module"].items())[:3]
            say(f"{label}: dampened {i['dampened_share']:.2e} of the parameters (mean beta "
                  f"{i['mean_beta'] or 0:.2f}); most dampened modules {top}")
        if "replacements" in i:
            mapping = i["replacements"]
            rates = {n: redirect_rate({x["id"]: x["generation"] for x in results[n].rows if x["split"] == "forget"},
                                      bench, mapping)
                     for n in ("target", "oracle", label)}
            trace = ", ".join(f"{x:.3f}" for x in i["causal_trace"] or [])
            say(f"{label}: layer {i['layer']} (causal trace per layer: {trace}); {len(i['constraints'])} rank-one "
                  f"constraints, relative update norm {i['relative_update_norm']:.3f}; redirect rate "
                  + ", ".join(f"{n} {r['redirect_rate']:.3f}" for n, r in rates.items())
                  + f" (over {rates[label]['facts']} facts)")
        if "located" in i and label.startswith("needle"):
            say(f"{label}: {len(i['located'])} concept vectors, layers "
                  f"{sorted({r['layer'] for r in i['located']})}, mean concept share "
                  f"{sum(r['concept_share'] for r in i['located']) / len(i['located']):.2f}, lr {i['lr']}")

    t = time.time()
    vectors = concept_vectors(target, tok, data)
    ref = intrinsic(oracle, target, tok, vectors)["model"]
    parts = {name: ref if m is None else intrinsic(m, target, tok, vectors)["model"]
             for name, m in [("oracle", None), *models.items()]}
    table(f"intrinsic: {len(vectors)} concept vectors located on the target ({time.time() - t:.1f} s); value "
          "[95 % interval over people]", ["model", *INTRINSIC],
          [[name, *[cell(part["metrics"], part["ci"], k) for k in INTRINSIC]] for name, part in parts.items()])
    if not a.no_attacks:
        print_attacks(models, tok, bench, target, oracle, a.attacks)
    write_result(f"editing_{a.model}", {}, {"model": a.model, "benchmark": a.benchmark, "rows": rows_of(a),
                                           "attacks": None if a.no_attacks else a.attacks})


def rwku(a) -> None:
    """One built-in probe target on a pretrained model: forget = its passages, retain = its neighbours' passages;
    the probes (never trained on) are the measure, with the wall time of each method."""
    import obliviate as ob
    from obliviate.data.rwku import load_probes
    from obliviate.methods.editing.intrinsic import concept_vectors, intrinsic
    from obliviate.evals.rwku import evaluate_rwku
    from obliviate.methods import UnlearnData

    model_name = a.model if a.model != "tiny" else "smollm2-135m"
    t = time.time()
    model, tok = ob.load_model(model_name)
    print(f"{model_name} loaded in {time.time() - t:.0f} s")
    probes = load_probes(model_name if model_name == "gemma3-270m" else None)
    data = UnlearnData.from_probes(a.rwku, tok, probes)
    rows = {"base": (model, None)}
    for label, method, opts in rows_of(a, pretrained=True):
        t = time.time()
        new, info = ob.unlearn(model, tok, data, method, opts)
        rows[label] = (new, time.time() - t)
        if method == "rocr":
            other = info["replacements"][a.rwku]
            r = evaluate_rwku(new, tok, a.rwku, probes)["rows"]
            forget = [x for x in r if x["split"].startswith("rwku_forget")]
            words = [w.lower() for w in other.split() if len(w) >= 4]
            named = [x for x in forget if any(w in x["generation"].lower() for w in words)]
            say(f"{label}: layer {info['layer']} (causal trace {[round(x, 3) for x in info['causal_trace'] or []]}), "
                  f"redirected to {other!r}: {len(named)} of {len(forget)} forget probes now name it; answers: "
                  + "; ".join(f"{x['prompt'][-40:]!r} -> {x['generation'][:40]!r}" for x in forget))
        if method == "ssd":
            say(f"{label}: dampened {info['dampened_share']:.2e} of the parameters, mean beta "
                  f"{info['mean_beta'] or 0:.2f}, most dampened {list(info['dampened_share_by_module'].items())[:3]}")
    t = time.time()
    vectors = concept_vectors(model, tok, data)
    say(f"{len(vectors)} concept vector(s) located ({time.time() - t:.1f} s): "
          f"{[(v['layer'], v['column'], round(v['concept_share'], 2)) for v in vectors]}")
    keys, out = None, []
    for name, (m, sec) in rows.items():
        r = evaluate_rwku(m, tok, a.rwku, probes)
        intr = intrinsic(m, model, tok, vectors)["model"]["metrics"]
        keys = keys or sorted(k for k in r["metrics"] if k.startswith("rwku_"))
        out.append([name, *[cell(r["metrics"], r["ci"], k) for k in keys], *[f"{intr[k]:.3f}" for k in INTRINSIC],
                    f"{sec:.1f}" if sec else "-"])
    table(f"{model_name}, target {a.rwku}: value [95 % interval over probes]", ["model", *keys, *INTRINSIC, "seconds"],
          out)
    write_result(f"editing_{model_name}_rwku", {}, {"model": model_name, "target": a.rwku,
                                                   "rows": rows_of(a, pretrained=True)})


if __name__ == "__main__":
    main()
