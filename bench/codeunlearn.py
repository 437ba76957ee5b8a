"""CodeUnlearn on the built-in benchmark (forget 10 %): what the bottleneck costs, what deleting codes does against the
oracle, the random-code control, NPO and GradDiff on the same bottlenecked target, the forget facts each model still
states per person, and the attacks on all three.

    python bench/codeunlearn.py [--model tiny] [--kind sae] [--site layer.2] [--codes N] [--k K] [--attacks all]
                                [--no-attacks] [--set KEY=VALUE] [--bottleneck KEY=VALUE] [--rounds R] [--tag T]

The target and the oracle carry the same bottleneck (each trained plain, then with the bottleneck on its own data;
with ``--bottleneck from_start=true``, with the bottleneck from the first step), so every row is judged against an
oracle of the same architecture. ``codeunlearn`` chooses n by the holdout rule (calibration people, no oracle); the
control deletes as many random codes of matched firing frequency. ``--rounds R`` repeats the request R − 1 more times
on its own output (the same forget set; each round scores the codes with the earlier deletions in place, so the
latents that filled the deleted slots can be found next). NPO runs with the demo's setting and GradDiff with its
defaults, on the bottlenecked target (gradients pass through the bottleneck), so the per-request cost compares like
with like.
"""
from __future__ import annotations

import argparse
import os
import time

import common
from common import print_attacks, say, table, write_result


def bottleneck_config(a, **more):
    from obliviate.methods.bottleneck.config import BottleneckConfig
    from obliviate.core.options import from_dict

    given = {"kind": a.kind, "site": a.site, "codes": a.codes, "k": a.k, **more}
    sets = dict(s.split("=", 1) for s in a.bottleneck)
    return from_dict(BottleneckConfig, {**{k: v for k, v in given.items() if v is not None}, **sets}, "bottleneck")


def cell(res, key):
    return common.cell(res.metrics, res.ci, key)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--kind", default="sae")
    ap.add_argument("--site", default=None)
    ap.add_argument("--set", action="append", default=[], help="codeunlearn option KEY=VALUE")
    ap.add_argument("--bottleneck", action="append", default=[], metavar="KEY=VALUE",
                    help="bottleneck option (e.g. error_term=true, steps=2000)")
    ap.add_argument("--attacks", default="all")
    ap.add_argument("--no-attacks", action="store_true")
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--codes", type=int, default=None, help="codes (codebook) or latents (SAE) per site")
    ap.add_argument("--tag", default="", help="suffix of the results file (codeunlearn_MODEL_TAG.json), so that a "
                                             "variant does not replace the default run's file")
    ap.add_argument("--rounds", type=int, default=1, help="sequential codeunlearn requests on the same forget set, "
                                                           "each on the previous one's output")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds: a whole number from 1")
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.methods.bottleneck.build import cost, damage_line

    bench = ob.load_benchmark(a.benchmark)
    bcfg = bottleneck_config(a)
    t = time.time()
    paths = ob.train_pair(a.model, bench, bottleneck=bcfg)
    plain = ob.train_pair(a.model, bench)
    how = "trained with it from the first step" if bcfg.from_start else "inserted into the trained plain models"
    say(f"bottleneck {bcfg.kind} at {bcfg.site or 'the middle layer'} ({how}): target and oracle ready in "
          f"{time.time() - t:.0f} s")
    target, tok = ob.load_model(paths["target"])
    oracle, _ = ob.load_model(paths["oracle"])
    plain_target, _ = ob.load_model(plain["target"])
    c = cost(target, tok, bench, [x.text for x in bench.texts.get("retain", [])], plain=plain_target)
    table("cost of the bottleneck before any unlearning (plain target -> bottlenecked target)",
          ["measure", "plain target", "bottlenecked target"],
          [[k, f"{c['without_bottleneck'][k]:.3f}", f"{v:.3f}"] for k, v in c["with_bottleneck"].items()])
    if c["warnings"]:
        say(f"warning: {damage_line(c)}")

    data = ob.UnlearnData.from_benchmark(bench, tok)
    cu_opts = dict(s.split("=", 1) for s in a.set)
    models, info, secs = {}, {}, {}
    for label, method, opts in [("codeunlearn", "codeunlearn", cu_opts),
                                ("control", "codeunlearn", None),  # n filled from codeunlearn's choice below
                                ("npo", "npo", {"retain_weight": 5.0, "epochs": 10}),
                                ("graddiff", "graddiff", {})]:
        if label == "control":
            if not info["codeunlearn"]["n"]:  # nothing to match: the control would be the target itself
                continue
            opts = {**cu_opts, "n": info["codeunlearn"]["n"], "control": True}
        t = time.time()
        models[label], info[label] = ob.unlearn(target, tok, data, method, opts)
        secs[label] = time.time() - t
    st = info["codeunlearn"].get("stop", {})
    say(f"codeunlearn: n = {info['codeunlearn']['n']} of {info['codeunlearn']['candidates']} candidate codes "
          f"({info['codeunlearn']['codes_total']} in all); holdout rule: {st.get('reason', 'n given')}, LOSS AUC "
          f"{st.get('loss_auc', float('nan')):.2f}, Min-K% AUC {st.get('min_k_auc', float('nan')):.2f}")
    if "control" not in models:
        say("control: not run (codeunlearn deleted no code: no random codes to match)")

    o = ob.evaluate(oracle, tok, bench, is_oracle=True)
    results = {"target": ob.evaluate(target, tok, bench, oracle=o), "oracle": o}
    for label, m in models.items():
        results[label] = ob.evaluate(m, tok, bench, oracle=o)
    keys = ["forget_exact_match", "retain_exact_match", "world_exact_match", "forget_quality", "model_utility",
            "privleak"]
    table(f"{a.model} on {bench.name}: value [95 % interval over people]", ["model", *keys, "seconds"],
          [[name, *[cell(r, k) for k in keys], f"{secs[name]:.1f}" if name in secs else "-"]
           for name, r in results.items()])
    per = {name: {x["subject"]: x for x in r.info["forget_by_subject"]} for name, r in results.items()}
    table("forget facts still stated, per person (stated / facts)", ["person", *per],
          [[subj, *[f"{v[subj]['stated']} / {v[subj]['facts']}" for v in per.values()]] for subj in per["target"]])
    say(f"per-request cost: codeunlearn {secs['codeunlearn']:.1f} s, npo {secs['npo']:.1f} s "
          f"({secs['npo'] / secs['codeunlearn']:.1f}x), graddiff {secs['graddiff']:.1f} s")

    if a.rounds > 1:
        lines = []
        m, out, r, sec = models["codeunlearn"], info["codeunlearn"], results["codeunlearn"], secs["codeunlearn"]
        total = 0
        for rnd in range(1, a.rounds + 1):
            if rnd > 1:
                t = time.time()
                m, out = ob.unlearn(m, tok, data, "codeunlearn", cu_opts)
                sec = time.time() - t
                r = ob.evaluate(m, tok, bench, oracle=o)
            total += out["n"]
            lines.append([str(rnd), str(out["n"]), str(total), *[cell(r, k) for k in keys[:3]], f"{sec:.1f}"])
        table("sequential requests on the same forget set (each scores codes with the earlier deletions in place)",
              ["round", "codes deleted", "total", "forget EM", "retain EM", "world EM", "seconds"], lines)

    if not a.no_attacks:
        attacked = {k: models[k] for k in ("codeunlearn", "npo", "graddiff")}
        print_attacks(attacked, tok, bench, target, oracle, a.attacks)
    write_result(f"codeunlearn_{a.model}" + (f"_{a.tag}" if a.tag else ""), {}, vars(a))



if __name__ == "__main__":
    main()
