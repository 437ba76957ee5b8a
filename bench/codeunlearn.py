"""CodeUnlearn on the built-in benchmark (forget 10 %): what the bottleneck costs, what deleting codes does against the
oracle, the random-code control, NPO and GradDiff on the same bottlenecked target, and the attacks on all three.

    python bench/codeunlearn.py [--model tiny] [--kind sae] [--site layer.2] [--codes N] [--k K] [--attacks all]
                                [--no-attacks]

The target and the oracle carry the same bottleneck (each trained plain, then with the bottleneck on its own data),
so every row is judged against an oracle of the same architecture. ``codeunlearn`` chooses n by the holdout rule
(calibration people, no oracle); the control deletes as many random codes of matched firing frequency.
NPO runs with the demo's setting and GradDiff with its defaults, on the bottlenecked target (gradients pass through
the bottleneck), so the per-request cost compares like with like.
"""
from __future__ import annotations

import argparse
import os
import time

import common


def cell(res, key):
    return common.cell(res.metrics, res.ci, key)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--kind", default="sae")
    ap.add_argument("--site", default=None)
    ap.add_argument("--set", action="append", default=[], help="codeunlearn option KEY=VALUE")
    ap.add_argument("--attacks", default="all")
    ap.add_argument("--no-attacks", action="store_true")
    ap.add_argument("--rwku", help="instead: a pretrained --model (smollm2-135m) with a frozen base and a trained "
                                   "bottleneck, unlearning this built-in probe target")
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--codes", type=int, default=None, help="codes (codebook) or latents (SAE) per site")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n", default="8,32,128", help="--rwku: the numbers of codes deleted")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    if a.rwku:
        return rwku(a)
    import obliviate as ob
    from obliviate.bottleneck import cost
    from obliviate.cli import gain_lines
    from obliviate.methods.codebook import BottleneckConfig

    bench = ob.load_benchmark(a.benchmark)
    bcfg = BottleneckConfig(kind=a.kind, site=a.site, codes=a.codes, k=a.k)
    t = time.time()
    paths = ob.train_pair(a.model, bench, bottleneck=bcfg)
    plain = ob.train_pair(a.model, bench)
    print(f"bottleneck {bcfg.kind} at {bcfg.site or 'the middle layer'}: target and oracle ready in "
          f"{time.time() - t:.0f} s")
    target, tok = ob.load_model(paths["target"])
    oracle, _ = ob.load_model(paths["oracle"])
    plain_target, _ = ob.load_model(plain["target"])
    c = cost(target, tok, bench, [x.text for x in bench.texts.get("retain", [])], plain=plain_target)
    print("\ncost of the bottleneck before any unlearning (plain target -> bottlenecked target)")
    for k, v in c["with_bottleneck"].items():
        print(f"  {k:<22} {c['without_bottleneck'][k]:8.3f} -> {v:8.3f}")

    data = ob.UnlearnData.from_benchmark(bench, tok)
    cu_opts = dict(s.split("=", 1) for s in a.set)
    models, info, secs = {}, {}, {}
    for label, method, opts in [("codeunlearn", "codeunlearn", cu_opts),
                                ("control", "codeunlearn", None),  # n filled from codeunlearn's choice below
                                ("npo", "npo", {"retain_weight": 5.0, "epochs": 10}),
                                ("graddiff", "graddiff", {})]:
        if label == "control":
            opts = {**cu_opts, "n": info["codeunlearn"]["n"], "control": True}
        t = time.time()
        models[label], info[label] = ob.unlearn(target, tok, data, method, opts)
        secs[label] = time.time() - t
    st = info["codeunlearn"].get("stop", {})
    print(f"\ncodeunlearn: n = {info['codeunlearn']['n']} of {info['codeunlearn']['candidates']} candidate codes "
          f"({info['codeunlearn']['codes_total']} in all); holdout rule: {st.get('reason', 'n given')}, LOSS AUC "
          f"{st.get('loss_auc', float('nan')):.2f}, Min-K% AUC {st.get('min_k_auc', float('nan')):.2f}")

    o = ob.evaluate(oracle, tok, bench, is_oracle=True)
    results = {"target": ob.evaluate(target, tok, bench, oracle=o), "oracle": o}
    for label, m in models.items():
        results[label] = ob.evaluate(m, tok, bench, oracle=o)
    keys = ["forget_exact_match", "retain_exact_match", "world_exact_match", "forget_quality", "model_utility",
            "privleak"]
    print("\n" + " | ".join(["model", *keys, "seconds"]))
    for name, r in results.items():
        print(" | ".join([name, *[cell(r, k) for k in keys], f"{secs[name]:.1f}" if name in secs else "-"]))
    print(f"per-request cost: codeunlearn {secs['codeunlearn']:.1f} s, npo {secs['npo']:.1f} s "
          f"({secs['npo'] / secs['codeunlearn']:.1f}x), graddiff {secs['graddiff']:.1f} s")

    if a.no_attacks:
        return
    t = time.time()
    attacked = {k: models[k] for k in ("codeunlearn", "npo", "graddiff")}
    res = ob.run_attacks(attacked, tok, bench, target=target, oracle=oracle, attacks=a.attacks)
    print(f"\nattacks ({time.time() - t:.0f} s): gain over the oracle's gain [95 % interval], verdict")
    for attack, line in gain_lines(res, attacked):
        print(f"{attack:<22}{line}")



def rwku(a) -> None:
    """SmolLM2 (frozen) with a bottleneck trained on every probe target's passages plus self-written general text;
    then codeunlearn of one target's passages (contrast: its neighbours' passages) at several n. No calibration
    facts exist for a real target, so n is given, and the probes (never trained on) are the measure."""
    import obliviate as ob
    from obliviate.bottleneck import fit_pretrained, general_texts, measure
    from obliviate.data import Example
    from obliviate.data.rwku import load_probes
    from obliviate.evals.rwku import evaluate_rwku, rwku_unlearn_data
    from obliviate.methods import codebook as cb

    model_name = a.model if a.model != "tiny" else "smollm2-135m"
    model, tok = ob.load_model(model_name)
    probes = load_probes()
    cfg = cb.BottleneckConfig(kind=a.kind, site=a.site, k=a.k, steps=a.steps)
    t = time.time()
    general = general_texts(model, tok, cfg.general_texts + 16)
    examples = [Example("", p) for tgt in probes.values() for p in tgt.passages]
    examples += [Example("", g) for g in general[:cfg.general_texts]]
    info = fit_pretrained(model, tok, examples, cfg)
    print(f"{model_name}: {cfg.kind} bottleneck at {cb.resolve_sites(model, cfg.site)}, "
          f"{info['trained_parameters']} trained parameters, {len(examples)} texts, {info['train_seconds']:.0f} s "
          f"(with generation: {time.time() - t:.0f} s); final loss {info['final_loss']:.3f}")

    def probe_row(m):
        r = evaluate_rwku(m, tok, a.rwku, probes)["metrics"]
        ppl = measure(m, tok, texts=general[cfg.general_texts:])["text_ppl"]
        return {k: r[k] for k in sorted(r) if k.startswith("rwku_")} | {"heldout_text_ppl": ppl}

    with cb.bypassed(model):
        rows = {"base (bottleneck passed through)": probe_row(model)}
    rows["with bottleneck"] = probe_row(model)
    data = rwku_unlearn_data(a.rwku, tok, probes)
    for n in [int(x) for x in a.n.split(",")]:
        for control in (False, True):
            t = time.time()
            new, out = ob.unlearn(model, tok, data, "codeunlearn", {"n": n, "control": control,
                                                                     "tokens": "all", "min_precision": 0.7})
            rows[f"{'control' if control else 'codeunlearn'} n={out['n']} ({time.time() - t:.1f} s)"] = probe_row(new)
    keys = list(next(iter(rows.values())))
    print("\n" + " | ".join(["model", *keys]))
    for name, r in rows.items():
        print(" | ".join([name, *[f"{r[k]:.3f}" for k in keys]]))


if __name__ == "__main__":
    main()
