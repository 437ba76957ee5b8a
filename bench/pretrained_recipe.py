"""The TOFU protocol on a pretrained chat model: choose the fine-tuning recipe by measurement, train the target and
the oracle with it, and check that the pair is what the protocol needs.

    python bench/pretrained_recipe.py --model smollm2-135m [--speed-steps 6] [--epochs 5 --lr 1e-4] [--no-bf16]
                                      [--second-oracle] [--benchmark people]

0. **Learning rate and epochs** (``--probe 3e-4x5,1e-3x5xl32``: lr x epochs [x LoRA rank]): the target trained on a small
   people benchmark (``--probe-people``, every one trained on) with each setting; its forget, retain and world
   exact match beside the base model's (the world facts are never trained into a pretrained model). The cheapest
   setting that reaches 0.9 on the people while keeping the world facts is the recipe.
1. **Speed** (``--speed-steps N``, 0 skips it): N optimiser steps of the fine-tuning loop on the benchmark's
   training examples, in float32 and under bfloat16 autocast, from the same weights and batches: trained tokens
   per second, the loss after N steps (autocast must not change where training goes) and the peak memory.
2. **The pair**: ``train_pair`` with the recipe (cached by content hash, like ``obliviate train``), each role's
   wall time and the process's peak memory.
3. **The checks** (each a value with its 95 % interval over people): the target answers its forget and retain
   facts (exact match >= 0.9); the oracle's forget exact match lies within the interval of its holdout's (it never
   saw either); the world facts stay within the interval of the base model's (fine-tuning kept the model's own
   knowledge). ``--second-oracle`` trains the oracle again with seed 1 and measures forget quality between the
   two oracles: the noise floor of retraining, which no unlearning method can be asked to beat.

Writes ``bench/results/pretrained_recipe_MODEL.json``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import time
from dataclasses import asdict

from common import RECORD, cell, say, table, write_result

CHECKS = ["forget_exact_match", "retain_exact_match", "holdout_exact_match", "world_exact_match",
          "neighbours_exact_match", "forget_quality", "model_utility"]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(model, tok, bench, steps: int, batch_size: int) -> dict:
    """Tokens per second of ``steps`` training steps in float32 and under bfloat16 autocast (same start, same
    batches, same seed)."""
    import obliviate as ob
    from obliviate.data import examples_from
    from obliviate.data.format import encode
    from obliviate.engine.training import finetune

    examples = examples_from(tok, bench.training_qa(True, pretrained=True), bench.training_texts(True))
    n_tokens = sum(len(encode(tok, ex)["input_ids"]) for ex in examples) / len(examples)
    out = {}
    for name, bf16 in (("float32", False), ("bf16_autocast", True)):
        m = copy.deepcopy(model)
        n_ex = steps * batch_size
        cfg = ob.TrainConfig(epochs=1, lr=1e-4, batch_size=batch_size, bf16=bf16, warmup_ratio=0.0)
        t = time.time()
        curve = finetune(m, tok, examples[:n_ex], cfg, desc=f"speed {name}")
        s = time.time() - t
        out[name] = {"seconds": s, "steps": len(curve), "tokens_per_s": n_tokens * n_ex / s,
                     "last_loss": curve[-1], "peak_rss_mib": peak_mib()}
        del m
    out["bf16_speedup"] = out["bf16_autocast"]["tokens_per_s"] / out["float32"]["tokens_per_s"]
    out["mean_tokens_per_example"] = n_tokens
    return out


def real_knowledge(model, tok, name: str) -> tuple[float, list[float] | None]:
    """The share of the built-in real-knowledge probes of ``name`` (obliviate.data.rwku: the ones the base model
    answers, so the base reads 1.0) the model still answers, with a 95 % bootstrap interval over the targets: the
    model's own knowledge, beside the 30 world capitals."""
    import numpy as np

    from obliviate.data.rwku import PROBE_SETS
    from obliviate.evals.rwku import evaluate_rwku
    from obliviate.evals.uncertainty import bootstrap

    probes = PROBE_SETS[name]
    per = []
    for target in probes:
        rows = [x for x in evaluate_rwku(model, tok, target, probes)["rows"] if x["split"].startswith("rwku_forget")]
        per.append([float(x["correct"]) for x in rows])
    flat = lambda ix: float(np.mean([c for i in ix for c in per[i]]))  # noqa: E731
    return flat(range(len(per))), bootstrap({"m": lambda d: flat(d["t"])}, {"t": list(range(len(per)))})["m"]


def probe(model: str, settings: list[tuple[float, int]], n_people: int, cfg, base, tok) -> dict:
    """Exact match of the target trained on ``n_people`` people with each (lr, epochs) (and of the base model)."""
    import obliviate as ob
    from obliviate.data.people import PeopleConfig, generate_people

    from obliviate.core.utils import cache_dir, stable_hash, write_json_atomic

    small = generate_people(PeopleConfig(n_people=n_people, n_holdout=2, n_calibration=2))
    ecfg = ob.EvalConfig(bootstrap=200)
    keys = ["forget_exact_match", "retain_exact_match", "world_exact_match", "neighbours_exact_match",
            "real_knowledge"]

    def measured(label: str, key: str, run) -> dict:
        """``run()``'s metrics, kept in the cache under ``key`` (a model folder's name is its content hash), so that
        a later probe with more settings re-measures only the new ones."""
        f = cache_dir() / "probes" / f"{stable_hash([key, asdict(ecfg)])[:16]}.json"
        if f.is_file():
            return json.loads(f.read_text())
        t = time.time()
        out = {**run(), "seconds": time.time() - t}
        write_json_atomic(f, out)
        return out

    def both(key: str, load, desc: str) -> dict:  # the suite's metrics and the real-knowledge share, each cached
        return {**measured(desc, key, lambda: ob.evaluate(load(), tok, small, ecfg, desc=desc).metrics),
                **measured(desc, f"{key} knowledge", lambda: {"real_knowledge": real_knowledge(load(), tok, model)[0]})}

    out = {"base": both(f"{model} base {stable_hash(small.fingerprint())}", lambda: base, "probe base")}
    for lr, epochs, rank in settings:
        c = ob.TrainConfig(**{**asdict(cfg), "lr": lr, "epochs": epochs, "lora_rank": rank})
        path = ob.train_pair(model, small, c, roles=("target",))["target"]
        label = f"lr {lr:g}, {epochs} epochs, " + (f"LoRA rank {rank} (merged)" if rank else "full fine-tuning")
        out[label] = both(path.name, lambda path=path: ob.load_model(path)[0], f"probe {label}")
        out[label]["train_seconds"] = json.loads((path / "obliviate.json").read_text())["train_seconds"]
    n_facts = len(small.training_qa(True, pretrained=True))
    table(f"learning rate and epochs: the target on {n_people} people ({n_facts} facts), batch {cfg.batch_size}, "
          f"{'bf16 autocast' if cfg.bf16 else 'float32'}", ["model", *keys],
          [[k, *[f"{v.get(m, float('nan')):.3f}" for m in keys]] for k, v in out.items()])
    return {k: {m: v.get(m) for m in [*keys, "seconds", "train_seconds"]} for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--speed-steps", type=int, default=6)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lora-rank", type=int)
    ap.add_argument("--no-bf16", dest="bf16", action="store_false", default=None,
                    help="float32 training instead of the pretrained default, bf16 autocast")
    ap.add_argument("--second-oracle", action="store_true")
    ap.add_argument("--probe", default="", help="settings to probe, comma-separated: LRxEPOCHS, or LRxEPOCHSxlRANK for "
                                                "LoRA of that rank (phase 0)")
    ap.add_argument("--probe-people", type=int, default=20)
    ap.add_argument("--no-pair", action="store_true", help="the speed phase only")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob

    bench = ob.load_benchmark(a.benchmark)
    cfg = ob.TrainConfig(epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, bf16=a.bf16,
                         lora_rank=a.lora_rank).resolved(from_scratch=False, model=a.model)
    values: dict = {}
    base, tok = ob.load_model(a.model)
    if a.probe:
        settings = [(float(s[0]), int(s[1]), int(s[2][1:]) if len(s) > 2 else 0)
                    for s in (x.split("x") for x in a.probe.split(","))]
        values["probe"] = probe(a.model, settings, a.probe_people, cfg, base, tok)
    if a.speed_steps:
        sp = speed(base, tok, bench, a.speed_steps, cfg.batch_size)
        values["speed"] = sp
        table(f"fine-tuning speed on this machine ({a.speed_steps} steps of batch {cfg.batch_size}, same start and "
              "batches)", ["precision", "tokens/s", "loss after the steps", "peak memory MiB"],
              [[k, f"{sp[k]['tokens_per_s']:.0f}", f"{sp[k]['last_loss']:.4f}", f"{sp[k]['peak_rss_mib']:.0f}"]
               for k in ("float32", "bf16_autocast")])
        say(f"bf16 autocast runs {sp['bf16_speedup']:.2f}x the float32 speed")
    if a.no_pair:
        write_result(f"pretrained_probe_{a.model}", values, {"model": a.model, "speed_steps": a.speed_steps,
                                                              "probe": a.probe, "probe_people": a.probe_people,
                                                              "recipe": asdict(cfg)})
        return
    times = {}
    for role in ("target", "oracle"):
        t = time.time()
        path = ob.train_pair(a.model, bench, cfg, roles=(role,))[role]
        times[role] = time.time() - t
        meta = json.loads((path / "obliviate.json").read_text())
        times[role + "_trained_s"] = meta["train_seconds"]  # the training itself, whether or not this run did it
    values["train_seconds"] = times
    values["peak_rss_mib"] = peak_mib()
    paths = ob.train_pair(a.model, bench, cfg)
    target, _ = ob.load_model(paths["target"])
    oracle, _ = ob.load_model(paths["oracle"])
    o = ob.evaluate(oracle, tok, bench, is_oracle=True, desc="evaluate oracle")
    # the base model rambles to the 200-token limit on every invented person; 32 tokens hold its world answers
    short = ob.EvalConfig(max_new_tokens=32)
    res = {"base (answers cut at 32 tokens)": ob.evaluate(base, tok, bench, short, oracle=o, desc="evaluate base"),
           "target": ob.evaluate(target, tok, bench, oracle=o, desc="evaluate target"), "oracle": o}
    know = {k: real_knowledge(m, tok, a.model) for k, m in (("base", base), ("target", target), ("oracle", oracle))}
    values["real_knowledge"] = {k: {"value": v, "ci": ci} for k, (v, ci) in know.items()}
    config = {"model": a.model, "benchmark": a.benchmark, "recipe": asdict(cfg), "speed_steps": a.speed_steps,
              "second_oracle": a.second_oracle}
    report(a.model, res, know, values, times, cfg, config)  # written now, and again with the second oracle
    if a.second_oracle:
        p2 = ob.train_pair(a.model, bench, ob.TrainConfig(**{**asdict(cfg), "seed": 1}), roles=("oracle",))
        o2, _ = ob.load_model(p2["oracle"])
        res["oracle seed 1"] = ob.evaluate(o2, tok, bench, oracle=o, desc="evaluate oracle seed 1")
        report(a.model, res, know, values, times, cfg, config)


def report(model: str, res: dict, know: dict, values: dict, times: dict, cfg, config: dict) -> None:
    """Print the pair's checks and write the results file (again, when the second oracle has been added)."""
    RECORD["tables"].clear()
    RECORD["lines"].clear()
    values["evaluations"] = {k: {"metrics": r.metrics, "ci": r.ci} for k, r in res.items()}
    table("the pair's checks: value [95 % interval over people]", ["model", *CHECKS],
          [[k, *[cell(r.metrics, r.ci, m) for m in CHECKS]] for k, r in res.items()])
    table("the model's own knowledge: share of the built-in real-knowledge probes answered [95 % interval over "
          "targets]", ["model", "real-knowledge probes"],
          [[k, f"{v:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"] for k, (v, ci) in know.items()])
    t, oc, b = res["target"], res["oracle"], res["base (answers cut at 32 tokens)"]
    lo = lambda r, key: (r.ci.get(key) or [r.metrics[key]])[0]  # noqa: E731
    hold = oc.ci.get("holdout_exact_match") or [oc.metrics["holdout_exact_match"]] * 2
    checks = {"target_forget_em_ge_0.9": t.metrics["forget_exact_match"] >= 0.9,
              "target_retain_em_ge_0.9": t.metrics["retain_exact_match"] >= 0.9,
              "oracle_forget_em_within_holdout_interval": hold[0] <= oc.metrics["forget_exact_match"] <= hold[1],
              "target_world_em_not_below_base_interval": t.metrics["world_exact_match"] >= lo(b, "world_exact_match"),
              "target_real_knowledge_not_below_base_interval": know["target"][0] >= know["base"][1][0]}
    values["checks"] = checks
    for k, ok in checks.items():
        say(f"{k}: {'met' if ok else 'NOT met'}")
    if "oracle seed 1" in res:
        r2 = res["oracle seed 1"]
        say(f"noise floor: the oracle trained again with seed 1 reads forget quality {r2.metrics['forget_quality']:.3g} "
            f"{r2.ci.get('forget_quality')} against the first (a method cannot be asked to beat it)")
    say(f"training: target {times['target_trained_s'] / 60:.1f} min, oracle {times['oracle_trained_s'] / 60:.1f} min "
        f"({'bf16 autocast' if cfg.bf16 else 'float32'}, {cfg.epochs} epochs at lr {cfg.lr:g}, batch {cfg.batch_size}"
        f"{f', LoRA rank {cfg.lora_rank}' if cfg.lora_rank else ''}); peak memory {values['peak_rss_mib']:.0f} MiB")
    write_result(f"pretrained_recipe_{model}", values, config)


if __name__ == "__main__":
    main()
