"""How cheap is the evaluator? Three numbers, measured in one run on one model:

1. engine / bare: the full suite's wall time divided by the wall time of the bare model calls it cannot avoid
   (one forward pass over each unique scored sequence, one greedy ``generate`` per unique prompt, same
   batches); target <= 1.3;
2. naive / engine: the same metrics computed the way peers do, each metric family running its own forward
   passes and generations (no sharing), divided by the engine's time;
3. peak resident memory added by the engine's first run at the default batch size, the model already loaded
   (Linux VmHWM, reset before the run).

    python bench/eval_speed.py [--model tiny] [--benchmark people] [--repeat 3]

The model is the built-in target (trained and cached as `obliviate train` would) for scratch models, or the
named model itself otherwise (e.g. ``--model smollm2-135m --benchmark micro``).
"""
from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path


def _reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _rss_kib("VmRSS")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-naive", action="store_true", help="leave out the naive timing (slow on big models)")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import torch

    import obliviate as ob
    from obliviate.data import format_prompt, qa_example
    from obliviate.data.format import collate, encode, pad_id
    from obliviate.evals import EvalConfig, Scorer
    from obliviate.models import SCRATCH_MODELS

    torch.set_num_threads(max(1, torch.get_num_threads()))
    bench = ob.load_benchmark(a.benchmark)
    if a.model in SCRATCH_MODELS:
        model, tok = ob.load_model(ob.train_pair(a.model, bench, roles=("target",))["target"])
    else:
        model, tok = ob.load_model(a.model)
    model.eval()
    cfg = EvalConfig()
    base = _reset_peak()  # the first run measures memory and warms up allocator, kernels and tokenizer caches
    res = ob.evaluate(model, tok, bench, cfg)
    peak = _rss_kib("VmHWM") - base

    # the sequences and prompts the suite uses, exactly as it selects them
    retain = bench.retain
    if cfg.retain_eval_size and len(retain) > cfg.retain_eval_size:
        retain = random.Random(cfg.seed).sample(retain, cfg.retain_eval_size)
    splits = [bench.forget, retain, bench.holdout, bench.neighbours, bench.world]
    recs = [r for s in splits for r in s]
    seqs = {qa_example(tok, r.question, x) for r in recs
            for x in (r.answer, r.paraphrased_answer or r.answer, *r.perturbed_answers)}
    prompts = {format_prompt(tok, r.question) for r in recs}

    def engine():
        return ob.evaluate(model, tok, bench, cfg)

    @torch.no_grad()
    def bare():
        scorer = Scorer(model, tok, batch_size=cfg.batch_size)  # same batching order as the engine
        todo = sorted(seqs, key=lambda ex: (len(ex.prompt) + len(ex.target), ex.prompt, ex.target))
        for s in range(0, len(todo), cfg.batch_size):
            b = collate([encode(tok, ex) for ex in todo[s:s + cfg.batch_size]], pad_id(tok))
            model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        scorer.generate(sorted(prompts), cfg.max_new_tokens)

    def naive():
        """Each metric family on its own: prob, truth ratio, ROUGE, exact match, four MIAs, extraction."""
        for split in splits:
            ans = [qa_example(tok, r.question, r.answer) for r in split]
            para = [qa_example(tok, r.question, r.paraphrased_answer or r.answer) for r in split]
            pert = [qa_example(tok, r.question, p) for r in split for p in r.perturbed_answers]
            ps = [format_prompt(tok, r.question) for r in split]
            Scorer(model, tok, cfg.batch_size).score(ans + pert)  # prob (option-normalised needs perturbed)
            Scorer(model, tok, cfg.batch_size).score(para + pert)  # truth ratio
            Scorer(model, tok, cfg.batch_size).generate(ps, cfg.max_new_tokens)  # ROUGE-L
            Scorer(model, tok, cfg.batch_size).generate(ps, cfg.max_new_tokens)  # exact match
            for _ in range(5):  # LOSS, zlib, Min-K%, Min-K%++, extraction strength / exact memorisation
                Scorer(model, tok, cfg.batch_size).score(ans)

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    t_engine, t_bare = timed(engine), timed(bare)
    t_naive = float("nan") if a.skip_naive else timed(naive)
    print(f"model {a.model}, benchmark {a.benchmark}: {len(recs)} facts, {len(seqs)} unique scored sequences, "
          f"{len(prompts)} prompts; batch size {cfg.batch_size}; best of {a.repeat}")
    print(f"sequences scored by the engine: {res.cost['sequences_scored']} (unique: {len(seqs)})")
    print(f"{'engine (full suite) s':<34}{t_engine:8.2f}")
    print(f"{'bare forward + generate s':<34}{t_bare:8.2f}")
    print(f"{'naive (per-metric passes) s':<34}{t_naive:8.2f}")
    print(f"{'engine / bare':<34}{t_engine / t_bare:8.2f}   target <= 1.3")
    print(f"{'naive / engine':<34}{t_naive / t_engine:8.2f}")
    print(f"{'peak RSS added by the engine MiB':<34}{peak / 1024:8.1f}")


if __name__ == "__main__":
    main()
