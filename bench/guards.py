"""Inference-time guards (ECO, GUARD, in-context unlearning) beside NPO: what they hide, what their classifier
misses and wrongly blocks, what they cost per token, and every attack's verdict.

    python bench/guards.py [--model tiny] [--attacks all] [--no-attacks]
    python bench/guards.py --rwku "Albert Einstein" --model smollm2-135m

On the built-in benchmark (``tiny``): eco and guard (a from-scratch model cannot follow an instruction or learn
in context, so icul is measured on SmolLM2 only). On the built-in benchmark, eco runs at its default (the official code's
corruption of the first embedding dimension) and with ``dims=0`` (every dimension). On a pretrained model and one
built-in probe target: eco (σ and dims given, ``--eco-sigma``, ``--eco-dims``: a real target has no never-seen facts
of its kind to search σ against), guard, icul (in-context unlearning, its default; it needs forget questions, so
on passages alone it says so and is left out), RWKU's guardrail and system baselines, and NPO at the README's
RWKU setting.
"""
from __future__ import annotations

import argparse
import os
import time

from common import cell, evaluate_all, pair, print_attacks, print_table, run_rows, say, table, write_result

KEYS = ["forget_exact_match", "retain_exact_match", "world_exact_match", "forget_quality", "model_utility",
        "privleak"]


def rate(r):
    ci = f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]" if r["ci"] else ""
    return f"{r['rate']:.2f}{ci} n={r['n']}"


def latency(model, tok, prompts, max_new_tokens: int = 16) -> float:
    """Seconds per generated token, greedy, one prompt at a time (what a user waits)."""
    from obliviate.evals.scoring import Scorer

    t, n = time.time(), 0
    for p in prompts:
        out = Scorer(model, tok, batch_size=1).generate([p], max_new_tokens)
        n += max(1, len(tok(out[0], add_special_tokens=False)["input_ids"]))
    return (time.time() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--attacks", default="all")
    ap.add_argument("--no-attacks", action="store_true")
    ap.add_argument("--rwku", help="instead: a pretrained --model and one built-in probe target")
    ap.add_argument("--eco-sigma", type=float, default=1.0)
    ap.add_argument("--eco-dims", type=int, default=0, help="eco's dims on a real target (0: every dimension, as the "
                                                             "README's row; the method's default is 1)")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    if a.rwku:
        return rwku(a)
    from obliviate.data.format import format_prompt
    from obliviate.methods.guards.rates import classifier_rates

    bench, target, oracle, tok, data, paths = pair(a.model, a.benchmark)
    models, infos, secs = run_rows([("eco", "eco", {}), ("eco dims=0", "eco", {"dims": 0}), ("guard", "guard", {}),
                                    ("npo", "npo", {"retain_weight": 5.0, "epochs": 10})], target, tok, data)
    results = evaluate_all(models, target, oracle, tok, bench, paths)
    print_table(results, KEYS, secs, "build s", title=f"{a.model} on {bench.name}: value [95 % interval over people]")
    for label in ("eco", "eco dims=0"):
        search = infos[label].get("sigma_search", [{}])
        say(f"{label}: sigma {infos[label]['sigma']:.3g} (search: {len(search)} evaluations, goal NLL "
              f"{search[-1].get('goal', float('nan')):.2f}, corrupted forget NLL at the last evaluation "
              f"{search[-1].get('forget_nll', float('nan')):.2f}, the highest reached "
              f"{max((x.get('forget_nll', float('nan')) for x in search), default=float('nan')):.2f})")
    say(f"guard keeps {len(infos['guard']['retained_forget_text'])} forget texts and "
          f"{infos['guard']['forbidden_words']} forbidden words at inference")

    forget_prompts = [format_prompt(tok, r.question) for r in bench.forget[:12]]
    retain_prompts = [format_prompt(tok, r.question) for r in bench.retain[:12]]
    base = {"forget": latency(target, tok, forget_prompts), "retain": latency(target, tok, retain_prompts)}
    lat = []
    for label in ("eco", "eco dims=0", "guard"):
        f, r = latency(models[label], tok, forget_prompts), latency(models[label], tok, retain_prompts)
        lat.append([label, f"{f:.4f} ({f / base['forget']:.1f}x)", f"{r:.4f} ({r / base['retain']:.1f}x)"])
    table(f"latency, seconds per generated token (greedy, batch 1; unguarded: forget {base['forget']:.4f}, retain "
          f"{base['retain']:.4f})", ["guard", "forget prompts", "retain prompts"], lat)

    for label in ("eco", "guard"):
        rates = classifier_rates(models[label], tok, bench)
        table(f"{label} classifier: false-negative rate per form [95 % interval over people]", ["form", "rate"],
              [[form, rate(r)] for form, r in rates["false_negative"].items()])
        table(f"{label} classifier: false-positive rate [95 % interval over people]", ["split", "rate"],
              [[split, rate(r)] for split, r in rates["false_positive"].items()])

    if not a.no_attacks:
        print_attacks(models, tok, bench, target, oracle, a.attacks)
    write_result(f"guards_{a.model}", {}, {"model": a.model, "benchmark": a.benchmark,
                                          "attacks": None if a.no_attacks else a.attacks})


def rwku(a) -> None:
    import obliviate as ob
    from obliviate.data.format import format_prompt
    from obliviate.data.rwku import get_target, load_probes
    from obliviate.methods.guards.rates import flags
    from obliviate.evals.rwku import evaluate_rwku
    from obliviate.methods import UnlearnData

    model_name = a.model if a.model != "tiny" else "smollm2-135m"
    model, tok = ob.load_model(model_name)
    probes = load_probes(model_name if model_name == "gemma3-270m" else None)
    data = UnlearnData.from_probes(a.rwku, tok, probes)
    rows = {"base": (model, None, {})}
    for label, method, opts in [("eco", "eco", {"sigma": a.eco_sigma, "dims": a.eco_dims}), ("guard", "guard", {}),
                                ("icul", "icul", {}), ("icul guardrail", "icul", {"mode": "guardrail"}),
                                ("icul system", "icul", {"mode": "system"}),
                                ("npo", "npo", {"max_steps": 20, "lr": 1e-4, "batch_size": 4})]:
        t = time.time()
        try:
            m, info = ob.unlearn(model, tok, data, method, opts)
        except ob.ObliviateError as e:  # e.g. ICUL needs forget questions, and a real target has passages only
            say(f"{label}: not run: {e}")
            continue
        rows[label] = (m, time.time() - t, info)
    t = get_target(a.rwku, probes)
    sides = {"forget": [t], "neighbour": [get_target(n, probes) for n in t.neighbours]}
    prompts = {s: [p if kind == "fill" else format_prompt(tok, p) for x in ts for kind in ("fill", "qa")
                   for p, _ in getattr(x, kind)] for s, ts in sides.items()}
    base_lat = latency(model, tok, prompts["forget"])
    keys, out = None, []
    for name, (m, sec, info) in rows.items():
        r = evaluate_rwku(m, tok, a.rwku, probes)
        keys = keys or sorted(k for k in r["metrics"] if k.startswith("rwku_"))
        guarded = name in ("eco", "guard")  # the classifiers' flags (icul has none: it rewrites every prompt)
        fl = {s: (f"{sum(flags(m, tok, p))}/{len(p)}" if guarded else "-") for s, p in prompts.items()}
        lat = latency(m, tok, prompts["forget"]) if name != "base" else base_lat
        out.append([name, *[cell(r["metrics"], r["ci"], k) for k in keys], fl["forget"], fl["neighbour"],
                    f"{lat:.4f} ({lat / base_lat:.1f}x)", f"{sec:.1f}" if sec else "-"])
        if name != "base":
            say(f"{name}: " + "; ".join(f"{x['prompt'][-36:]!r} -> {x['generation'][:36]!r}" for x in r["rows"]
                                        if x["split"].startswith("rwku_forget")))
    table(f"{model_name}, target {a.rwku}: value [95 % interval over probes]",
          ["model", *keys, "flagged forget probes", "flagged neighbour probes", "s/token on forget probes", "build s"],
          out)
    write_result(f"guards_{model_name}_rwku", {}, {"model": model_name, "target": a.rwku, "eco_sigma": a.eco_sigma,
                                                  "eco_dims": a.eco_dims})


if __name__ == "__main__":
    main()
