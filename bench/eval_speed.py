"""How cheap is the evaluator? Measured in one run on one model:

1. engine / bare: the full suite's wall time divided by the wall time of the bare model calls it cannot avoid
   (one forward pass over each unique scored sequence, one greedy ``generate`` per unique prompt, same
   batches); target <= 1.3 (below 1 where a question's answers share one pass over its prompt);
   and the suite with every sequence run whole (``share_prompts=False``) divided by the suite's time;
2. peer / engine: the same reported metrics computed with the passes OpenUnlearning's evaluator runs
   (``src/evals``: a metric's pre-computed probabilities are cached and reused, so probability and truth ratio
   share the answer pass; the truth ratio adds one pass over paraphrased and one over perturbed answers; one
   generation per prompt; extraction strength and exact memorisation each run their own pass; every MIA runs
   its own passes on forget and holdout only, Min-K%++ two of them), divided by the engine's time;
3. peak resident memory added by the engine's first run at the default batch size, the model already loaded
   (Linux VmHWM, reset before the run);
4. repeated use: K models (``--repeated``, default 3) evaluated against one oracle, each evaluation scoring the
   oracle again (as before the oracle cache) against the oracle scored once and read from the cache
   (:mod:`obliviate.evals.cache`) for the others; the ratio of the two totals;
5. with ``--muse N``: MUSE's criteria on N rows per file of a MUSE-layout folder built from the benchmark with
   long texts (the privleak texts are biographies joined to about ``--muse-tokens`` tokens), engine against the
   bare passes, and the peak memory above the model's own weights.

    python bench/eval_speed.py [--model tiny] [--benchmark people] [--repeat 3]
    python bench/eval_speed.py --model smollm2-135m --benchmark micro --repeat 1 --skip-peer --muse 10

The model is the built-in target (trained and cached as `obliviate train` would) for scratch models, or the
named model itself otherwise.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import random
import tempfile
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
    ap.add_argument("--skip-peer", action="store_true", help="leave out the peer-style timing (slow on big models)")
    ap.add_argument("--muse", type=int, default=0, metavar="N", help="also MUSE's criteria on N rows per file")
    ap.add_argument("--muse-tokens", type=int, default=1024, help="approximate length of each MUSE privleak text")
    ap.add_argument("--repeated", type=int, default=3, metavar="K", help="models evaluated against one oracle")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import torch

    import obliviate as ob
    from obliviate.data import format_prompt, qa_example
    from obliviate.data.format import collate, encode, pad_id
    from obliviate.evals import EvalConfig, Scorer
    from obliviate.models import SCRATCH_MODELS

    bench = ob.load_benchmark(a.benchmark)
    if a.model in SCRATCH_MODELS:
        folder = ob.train_pair(a.model, bench, roles=("target",))["target"]
        model, tok = ob.load_model(folder)
    else:
        model, tok = ob.load_model(a.model)
        folder = ob.save_model(model, tok, Path(tempfile.mkdtemp()) / "model")
    model.eval()
    weights_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    cfg = EvalConfig(bootstrap=0)  # the intervals are arithmetic on per-fact values, timed apart below
    base = _reset_peak()  # the first run measures memory and warms up allocator, kernels and tokenizer caches
    res = ob.evaluate(model, tok, bench, cfg)
    peak = _rss_kib("VmHWM") - base

    # the sequences and prompts the suite uses, exactly as it selects them
    retain = bench.retain
    if cfg.retain_eval_size and len(retain) > cfg.retain_eval_size:
        retain = random.Random(cfg.seed).sample(retain, cfg.retain_eval_size)
    named = {"forget": bench.forget, "retain": retain, "holdout": bench.holdout, "neighbours": bench.neighbours,
             "world": bench.world}
    recs = [r for s in named.values() for r in s]
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

    def peer():
        """The same reported metrics with OpenUnlearning's passes (see the module docstring): each metric family
        with its own Scorer, i.e. its own forward passes, except where OpenUnlearning reuses a pre-computed
        result."""
        def S():
            return Scorer(model, tok, cfg.batch_size)

        for split, recs_ in named.items():
            if not recs_:
                continue
            ans = [qa_example(tok, r.question, r.answer) for r in recs_]
            para = [qa_example(tok, r.question, r.paraphrased_answer) for r in recs_ if r.paraphrased_answer]
            pert = [qa_example(tok, r.question, p) for r in recs_ for p in r.perturbed_answers]
            S().score(ans)  # Q_A_Prob, reused by the truth ratio (ra/wf) and probability_w_options
            if para:
                S().score(para)  # Q_A_PARA_Prob (truth ratio on people facts)
            if pert:
                S().score(pert)  # Q_A_PERT_Prob
            S().generate([format_prompt(tok, r.question) for r in recs_], cfg.max_new_tokens)  # ROUGE (+ exact match)
            S().score(ans)  # extraction_strength
            S().score(ans)  # exact_memorization
            if split in ("forget", "holdout"):
                for _ in range(5):  # LOSS, zlib, Min-K%, and Min-K%++'s two passes (vocabulary and token log-probs)
                    S().score(ans)

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    whole_cfg = dataclasses.replace(cfg, share_prompts=False)
    t_engine, t_bare = timed(engine), timed(bare)
    t_whole = timed(lambda: ob.evaluate(model, tok, bench, whole_cfg))
    t_peer = float("nan") if a.skip_peer else timed(peer)
    from obliviate.evals.suite import intervals

    t = time.perf_counter()
    intervals(res, None, 1000, 0)
    t_boot = time.perf_counter() - t
    print(f"model {a.model}, benchmark {a.benchmark}: {len(recs)} facts, {len(seqs)} unique scored sequences, "
          f"{len(prompts)} prompts; batch size {cfg.batch_size}; answers up to {cfg.max_new_tokens} tokens; "
          f"best of {a.repeat}")
    print(f"sequences scored by the engine: {res.cost['sequences_scored']} (unique: {len(seqs)})")
    print(f"{'engine (full suite) s':<40}{t_engine:8.2f}")
    print(f"{'bare forward + generate s':<40}{t_bare:8.2f}")
    print(f"{'peer-style passes s':<40}{t_peer:8.2f}")
    print(f"{'engine, every sequence whole s':<40}{t_whole:8.2f}")
    print(f"{'engine / bare':<40}{t_engine / t_bare:8.2f}   target <= 1.3")
    print(f"{'whole sequences / shared prompts':<40}{t_whole / t_engine:8.2f}")
    print(f"{'peer-style / engine (like for like)':<40}{t_peer / t_engine:8.2f}")
    print(f"{'bootstrap intervals (1000 resamples) s':<40}{t_boot:8.2f}")
    print(f"{'peak RSS added by the engine MiB':<40}{peak / 1024:8.1f}   (model weights {weights_mib:.0f} MiB)")
    rep = repeated_use(model, tok, bench, folder, t_engine, a.repeated, timed)
    from common import write_result

    write_result("eval_speed" if a.model == "tiny" else f"eval_speed_{a.model}", {
        "engine_s": t_engine, "bare_s": t_bare, "peer_s": None if a.skip_peer else t_peer,
        "engine_over_bare": t_engine / t_bare, "whole_s": t_whole, "whole_over_shared": t_whole / t_engine,
        "peer_over_engine": None if a.skip_peer else t_peer / t_engine,
        "bootstrap_s": t_boot, "peak_rss_added_mib": peak / 1024, "weights_mib": weights_mib, **rep},
        {"model": a.model, "benchmark": a.benchmark, "repeat": a.repeat, "batch_size": cfg.batch_size,
         "max_new_tokens": cfg.max_new_tokens, "facts": len(recs), "unique_sequences": len(seqs),
         "prompts": len(prompts), "repeated": a.repeated})
    if a.muse:
        muse_cost(model, tok, bench, a, weights_mib, timed)


def repeated_use(model, tok, bench, folder, t_model: float, k: int, timed) -> dict:
    """K models against one oracle (the model stands in for the oracle: the same size, the same work): each
    evaluation scoring the oracle again, K (T_oracle + T_model), against the oracle scored once, T_oracle + K T_model
    + (K - 1) T_read, with T_read the cache read. Times are best-of-repeat."""
    from obliviate.evals import EvalConfig
    from obliviate.evals.cache import evaluate_oracle

    cfg = EvalConfig(bootstrap=0)
    old = os.environ.get("OBLIVIATE_CACHE")
    os.environ["OBLIVIATE_CACHE"] = tempfile.mkdtemp()
    try:
        scored = timed(lambda: evaluate_oracle(model, tok, bench, cfg, None))  # no folder: always scored
        evaluate_oracle(model, tok, bench, cfg, folder)  # fills the cache
        read = timed(lambda: evaluate_oracle(model, tok, bench, cfg, folder))
    finally:
        if old is None:
            del os.environ["OBLIVIATE_CACHE"]
        else:
            os.environ["OBLIVIATE_CACHE"] = old
    every = k * (scored + t_model)
    once = scored + k * t_model + (k - 1) * read
    print(f"{f'{k} models vs one oracle, oracle scored each time s':<40}{every:8.2f}")
    print(f"{f'{k} models vs one oracle, oracle cached s':<40}{once:8.2f}   (cache read {read:.3f} s)")
    print(f"{'repeated use: scored each time / cached':<40}{every / once:8.2f}")
    return {"repeated_scored_each_time_s": every, "repeated_cached_s": once, "cache_read_s": read,
            "repeated_use_ratio": every / once}


def muse_cost(model, tok, bench, a, weights_mib, timed) -> None:
    """MUSE's criteria on ``a.muse`` rows per file: engine vs bare passes, and peak memory."""
    import torch

    from obliviate.data.format import Example, collate, encode, pad_id
    from obliviate.evals.muse import KNOWMEM_TOKENS, TEXT_TOKENS, VERBMEM_TOKENS, MuseData, evaluate_muse, \
        knowmem_prompt, load_muse
    from obliviate.evals.scoring import Scorer

    bios = [t.text for split in ("forget", "retain", "holdout") for t in bench.texts.get(split, [])]
    per = max(1, a.muse_tokens // max(1, len(tok(bios[0])["input_ids"])))  # biographies per long text

    def long_texts(start: int) -> list[str]:
        return [" ".join(bios[(start + i * per + j) % len(bios)] for j in range(per)) for i in range(a.muse)]

    data = MuseData.from_benchmark(bench)
    data.privleak = {"forget": long_texts(0), "holdout": long_texts(len(bios) // 2)}
    folder = Path(tempfile.mkdtemp()) / "muse"
    data.write(folder)
    data = load_muse(folder, limit=a.muse)
    n_tokens = [len(tok(t)["input_ids"]) for t in data.privleak["forget"]]

    def engine():
        return evaluate_muse(model, tok, data)

    @torch.no_grad()
    def bare():
        scorer = Scorer(model, tok, batch_size=16, max_length=TEXT_TOKENS)
        scorer.generate([p for p, _ in data.verbmem], VERBMEM_TOKENS, raw=True)
        for qa, shots in ((data.knowmem_forget, data.icl_forget), (data.knowmem_retain, data.icl_retain)):
            scorer.generate([knowmem_prompt(q, shots) for q, _ in qa], KNOWMEM_TOKENS, raw=True)
        for texts in data.privleak.values():  # one text at a time: the bare forward a 2,048-token text needs
            for t in texts:
                b = collate([encode(tok, Example("", t), scorer.max_length)], pad_id(tok))
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

    base = _reset_peak()
    engine()
    peak = (_rss_kib("VmHWM") - base) / 1024
    t_engine, t_bare = timed(engine), timed(bare)
    print(f"\nMUSE criteria, {a.muse} rows per file, privleak texts of {min(n_tokens)}-{max(n_tokens)} tokens")
    print(f"{'MUSE engine s':<40}{t_engine:8.2f}")
    print(f"{'MUSE bare generate + forward s':<40}{t_bare:8.2f}")
    print(f"{'MUSE engine / bare':<40}{t_engine / t_bare:8.2f}")
    print(f"{'MUSE peak RSS added MiB':<40}{peak:8.1f}   (model weights {weights_mib:.0f} MiB; target <= ~2048 above)")


if __name__ == "__main__":
    main()
