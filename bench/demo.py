"""Demo wall time (cold: nothing cached; warm: target and oracle cached) and the spine's numeric checks.

    python bench/demo.py --out bench_out/demo
    python bench/demo.py --model smollm2-135m --cache ~/.cache/obliviate --out bench_out/demo_smollm2

Runs `obliviate demo` twice through the CLI with a fresh cache, then trains a second oracle with another
seed and prints one table: measured value, the target it is checked against, and whether it holds. With
``--cache`` (a pretrained pair takes an hour or more to train on a CPU), the demo runs once, warm, on the pair that
cache holds, and the cold time is that run plus the pair's training times read from their manifests (measured when
they were trained; their thread counts are recorded beside them). The time limits hold for `tiny` only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_cli(args: list[str], env: dict) -> float:
    t = time.time()
    subprocess.run([sys.executable, "-m", "obliviate.cli", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out/demo")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--cache", help="an obliviate cache that holds the pair: one warm run (see above)")
    a = ap.parse_args()
    out = Path(a.out)
    cache = a.cache or tempfile.mkdtemp(prefix="obliviate-bench-cache-")
    env = {**os.environ, "OBLIVIATE_CACHE": cache, "OBLIVIATE_QUIET": "1"}
    args = ["--benchmark", a.benchmark, "--model", a.model, "--overwrite"]
    if not a.cache:
        cold = run_cli(["demo", "--out", str(out / "cold"), *args], env)
    warm = run_cli(["demo", "--out", str(out / "warm"), *args], env)
    res = json.loads((out / "warm" / "results.json").read_text())
    # the pair's training, as its manifests recorded it
    manifests = {r: json.loads((Path(res["models"][r]["path"]) / "obliviate.json").read_text())
                 for r in ("target", "oracle")}
    pair_s = {r: m["train_seconds"] for r, m in manifests.items()}
    threads = {r: m.get("threads") for r, m in manifests.items()}
    if a.cache:
        cold, same = warm + sum(pair_s.values()), None
    else:
        cold_res = json.loads((out / "cold" / "results.json").read_text())
        same = all(cold_res["models"][n]["metrics"] == res["models"][n]["metrics"] for n in res["models"])

    # A second oracle, another seed: forget quality of oracle vs oracle should be large.
    os.environ.update(OBLIVIATE_CACHE=cache, OBLIVIATE_QUIET="1")
    from obliviate import EvalConfig, TrainConfig, evaluate, load_benchmark, load_model, train_pair
    from obliviate.evals.privacy import forget_quality

    bench = load_benchmark(a.benchmark)
    recipe = manifests["oracle"]["recipe"]
    t = time.time()  # the oracle's recipe with another seed (cached: bench/methods.py trains the same one)
    p1 = train_pair(a.model, bench, TrainConfig(**{**recipe, "seed": 1}), roles=("oracle",))["oracle"]
    second_oracle_s = time.time() - t
    m1, tok = load_model(p1)
    r1 = evaluate(m1, tok, bench, EvalConfig())
    fq_oracles = forget_quality(r1.arrays["forget"]["truth_ratio"], res["models"]["oracle"]["forget_truth_ratios"])

    tiny = a.model == "tiny"
    M = {n: m["metrics"] for n, m in res["models"].items()}
    CI = {n: m["metrics_ci"] for n, m in res["models"].items()}
    method = [n for n in M if n not in ("target", "oracle")][0]
    computed = [k for n in M for k, v in M[n].items() if v is not None]
    without_ci = [k for n in M for k, v in M[n].items() if v is not None and not CI[n].get(k)]
    o_pl, o_mc = CI["oracle"]["privleak"], CI["oracle"]["forget_mc_accuracy"]
    from obliviate import load_benchmark as lb

    b2 = lb(a.benchmark)
    training = "\n".join([r.answer for r in b2.training_qa(True)] + [t.text for t in b2.training_texts(True)])
    leaked = sum(r.paraphrased_answer in training for r in b2.forget + b2.retain + b2.holdout if r.paraphrased_answer)
    rows = [
        ("demo cold wall time (s)" + (": the pair's training + the warm run" if a.cache else ""), cold,
         "<= 600" if tiny else "report", cold <= 600 or not tiny),
        ("demo warm wall time (s)", warm, "<= 180" if tiny else "report", warm <= 180 or not tiny),
        *([] if a.cache else [("cold and warm runs give identical metrics", float(same), "== 1", same)]),
        ("target forget exact match", M["target"]["forget_exact_match"], ">= 0.90", M["target"]["forget_exact_match"] >= 0.9),
        ("oracle forget EM - oracle holdout EM", M["oracle"]["forget_exact_match"] - M["oracle"]["holdout_exact_match"],
         "<= 0.05", M["oracle"]["forget_exact_match"] - M["oracle"]["holdout_exact_match"] <= 0.05),
        ("target forget quality vs oracle", M["target"]["forget_quality"], "< 0.01", M["target"]["forget_quality"] < 0.01),
        ("target PrivLeak (Min-K%, MUSE's sign)", M["target"]["privleak"], "<= -50", M["target"]["privleak"] <= -50),
        ("oracle PrivLeak vs ideal AUC: interval low", o_pl[0], "<= 0", o_pl[0] <= 0),
        ("oracle PrivLeak vs ideal AUC: interval high", o_pl[1], ">= 0", o_pl[1] >= 0),
        ("oracle forget multiple choice: interval low", o_mc[0], "<= 0.25", o_mc[0] <= 0.25),
        ("oracle forget multiple choice: interval high", o_mc[1], ">= 0.25", o_mc[1] >= 0.25),
        ("metrics without a 95 % interval", float(len(without_ci)), f"== 0 (of {len(computed)})", not without_ci),
        ("paraphrased answers verbatim in training text", float(leaked), "== 0", leaked == 0),
        ("oracle(seed 1) forget quality vs oracle(seed 0)", fq_oracles, "large (> 0.1)", fq_oracles > 0.1),
        (f"{method} forget EM - oracle forget EM", M[method]["forget_exact_match"] - M["oracle"]["forget_exact_match"],
         "<= 0.10", M[method]["forget_exact_match"] - M["oracle"]["forget_exact_match"] <= 0.10),
        (f"target retain EM - {method} retain EM", M["target"]["retain_exact_match"] - M[method]["retain_exact_match"],
         "<= 0.05", M["target"]["retain_exact_match"] - M[method]["retain_exact_match"] <= 0.05),
        (f"{method} forget quality", M[method]["forget_quality"], "report", True),
        (f"{method} model utility / target's", M[method]["model_utility"] / M["target"]["model_utility"], "report", True),
        (f"{method} PrivLeak (Min-K%; 0 ideal, > 0 over-unlearned)", M[method]["privleak"], "report", True),
        ("second oracle training (s)", second_oracle_s, "report", True),
    ]
    from common import say, table, write_result

    table("the demo's checks", ["check", "measured", "target", "ok"],
          [[name, f"{v:.4g}", target, "yes" if ok else "NO"] for name, v, target, ok in rows])
    say("timings of the warm run (s): " + ", ".join(f"{k} {v:.1f}" for k, v in res["timings"].items()))
    values = {"cold_seconds": round(cold, 1), "warm_seconds": round(warm, 1), "cold_measured": not a.cache,
              "pair_train_seconds": pair_s, "pair_train_threads": threads}
    for n in ("target", "oracle", method):
        for k in ("forget_exact_match", "retain_exact_match", "forget_quality", "model_utility", "privleak"):
            if M[n].get(k) is not None:
                values[f"{n} {k}"] = {"value": M[n][k], "ci": CI[n].get(k)}
    write_result("demo" if tiny else f"demo_{a.model}", values, vars(a))


if __name__ == "__main__":
    main()
