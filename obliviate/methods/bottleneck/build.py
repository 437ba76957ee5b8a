r"""Build a discrete bottleneck into a model once (CodeUnlearn's amortised step), and measure what it costs.

    obliviate bottleneck --model tiny --benchmark people --site layer.2 --codes 1024 --k 8 --out cb
    obliviate bottleneck --model smollm2-135m --rwku "Albert Einstein" --benchmark people --site layer.15.mlp \
        --k 32 --set steps=1000 --set kl_steps=100 --out cb-smollm2

From scratch (``tiny``, ``micro``) the target and the oracle both carry the bottleneck, so that the oracle exists:
each is trained plain, then the bottleneck is inserted and trained jointly with it on the same role's data
(:func:`obliviate.engine.training.train_pair`; ``--set from_start=true`` trains each with it from the first step instead); the
plain pair is the cost report's reference. A pretrained model (a built-in, a folder, a GGUF) keeps its weights
frozen and only the bottleneck trains (:func:`fitted`, cached by content hash), on the probe targets' passages and
the benchmark's text (either or both) plus general text the model writes itself. An SAE learns to reconstruct the
site's activations first, then, hard, to match the base model's outputs (``kl_steps``), with the attention sink's
outlier tokens let through (``pass_outliers``); ``--set error_term=true`` keeps the SAE's reconstruction error
instead (the base model exactly until a latent is deleted; what the SAE does not reconstruct flows past any
deletion). The cost report (``cost.json``) gives exact match and perplexity with and without
the bottleneck, before any unlearning.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import replace

import torch

from obliviate.data import Example, collate, encode
from obliviate.data.format import bucketed_batches, pad_id
import obliviate.methods.bottleneck.sites as sites
from obliviate.methods.bottleneck.config import BottleneckConfig
from obliviate.models.anatomy import pop_aux_losses
from obliviate.methods.bottleneck.bottlenecked import activation_sample, prepare, reseed_dead, seed_codes
from obliviate.core.utils import ObliviateError, seed_everything

OPENINGS = ["The history of", "In the morning,", "Scientists have found that", "The city is known for",
            "Once upon a time",
            "A good recipe for", "The main reason", "When the war ended,", "Music in the", "The company announced",
            "According to the report,", "The river flows", "Children often", "The theory of", "During the summer",
            "The book describes", "In mathematics,", "The weather today", "Football is", "The president said",
            "Computers can", "The ocean", "My favourite", "The museum opened", "Trees grow", "The election",
            "Students learn", "The film tells", "In the year", "Doctors recommend", "The mountain", "Language is"]


@torch.no_grad()
def general_texts(model, tok, n: int, seed: int = 0, max_new_tokens: int = 64) -> list[str]:
    """``n`` samples of general text the model writes itself (nucleus sampling, p = 0.95, from varied openings):
    offline data for fitting a bottleneck to a pretrained model's own activations."""
    if n <= 0:
        return []
    torch.manual_seed(seed)
    dev = next(model.parameters()).device
    prompts = [OPENINGS[i % len(OPENINGS)] for i in range(n)]
    tok.padding_side, side = "left", tok.padding_side
    out = []
    try:
        for s in range(0, n, 16):
            enc = tok(prompts[s:s + 16], return_tensors="pt", padding=True).to(dev)
            gen = model.generate(**enc, do_sample=True, top_p=0.95, max_new_tokens=max_new_tokens,
                                 pad_token_id=pad_id(tok))
            for p, g in zip(prompts[s:s + 16], tok.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                                                  skip_special_tokens=True)):
                out.append(p + g)
    finally:
        tok.padding_side = side
    return out


def fit_pretrained(model, tok, examples: list[Example], cfg: BottleneckConfig, max_length: int = 256) -> dict:
    """Freeze ``model``, insert the bottleneck and train it alone. An SAE (hard, or with ``error_term``) first
    learns to reconstruct the site's activations, collected once (:func:`_fit_on_activations`); a hard SAE then
    takes ``cfg.kl_steps`` steps through the frozen model on the KL divergence from the base model's outputs
    (:func:`_fit_kl`). A codebook trains on the LM loss plus its reconstruction term for ``cfg.steps``."""
    from obliviate.engine.loop import OptimConfig, optimize
    from obliviate.methods.losses import mean_token_nll

    if not examples:
        raise ObliviateError("bottleneck: no training text")
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.kind == "sae":
        if cfg.pass_outliers is None:  # the default for a pretrained model (BottleneckConfig.pass_outliers)
            cfg = replace(cfg, pass_outliers=True)
        info = _fit_on_activations(model, tok, examples, cfg, max_length)
        if cfg.kl_steps:
            info.update(_fit_kl(model, tok, examples, cfg, max_length))
        return info
    callback = prepare(model, tok, examples, cfg, max_length)
    params = [p for layer in sites.bottlenecks(model).values() for p in layer.parameters()]
    for p in params:
        p.requires_grad_(True)

    def loss_fn(m, batch):
        out = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss, aux = mean_token_nll(out.logits, batch["labels"]), pop_aux_losses(model)
        return loss if aux is None else loss + aux

    seed_everything(cfg.seed)
    t0 = time.time()
    curve = optimize(model, _text_batches(tok, examples, cfg, max_length), cfg.steps, loss_fn,
                     OptimConfig(lr=cfg.lr, warmup_ratio=0.05), "train bottleneck", params=params, callback=callback)
    model.eval()
    for layer in sites.bottlenecks(model).values():
        layer.track_aux = False
    return {"loss_curve": curve[:: max(1, len(curve) // 200)], "final_loss": curve[-1],
            "train_seconds": round(time.time() - t0, 2), "trained_parameters": sum(p.numel() for p in params)}


def _text_batches(tok, examples: list[Example], cfg: BottleneckConfig, max_length: int):
    """Endless batches of ``cfg.batch_size`` training texts (similar lengths together; seeded order)."""
    enc = [encode(tok, e, max_length) for e in examples]
    lengths = [len(e["input_ids"]) for e in enc]
    rng = random.Random(cfg.seed)
    while True:
        for b in bucketed_batches(len(enc), cfg.batch_size, lengths, rng):
            yield collate([enc[i] for i in b], pad_id(tok))


def _fit_kl(model, tok, examples: list[Example], cfg: BottleneckConfig, max_length: int) -> dict:
    """``cfg.kl_steps`` steps of a hard bottleneck on KL(base ‖ bottlenecked) over every real token's next-token
    distribution, plus the reconstruction term (Braun et al. 2024, "Identifying Functionally Important Features
    with End-to-End Sparse Dictionary Learning", arXiv:2405.12241, Eq. 2, with the local MSE kept beside it). The
    base's distribution comes from the same weights with the bottleneck passed through; only the bottleneck
    learns. Reconstruction alone leaves what the layers above need from the residual stream to chance."""
    import torch.nn.functional as F

    from obliviate.engine.loop import OptimConfig, optimize

    layers = sites.bottlenecks(model)
    params = [p for layer in layers.values() for p in layer.parameters()]
    for p in params:
        p.requires_grad_(True)
    for layer in layers.values():
        layer.track_aux = True

    def loss_fn(m, batch):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        with torch.no_grad(), sites.bypassed(model):
            ref = F.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)[mask.bool()]
        out = F.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)[mask.bool()]
        kl = F.kl_div(out, ref, log_target=True, reduction="batchmean")
        aux = pop_aux_losses(model)
        return kl if aux is None else kl + aux

    seed_everything(cfg.seed + 1)
    t0 = time.time()
    try:
        curve = optimize(model, _text_batches(tok, examples, cfg, max_length), cfg.kl_steps, loss_fn,
                         OptimConfig(lr=cfg.lr, warmup_ratio=0.05), "train SAE (KL to the base)", params=params)
    finally:
        for layer in layers.values():
            layer.track_aux = False
    model.eval()
    return {"kl_curve": curve[:: max(1, len(curve) // 200)], "kl_final_loss": curve[-1],
            "kl_seconds": round(time.time() - t0, 2)}


def _fit_on_activations(model, tok, examples: list[Example], cfg: BottleneckConfig, max_length: int) -> dict:
    """An SAE trained as SAEs usually are, on the normalised reconstruction error of the site's activations,
    collected once (every training text; the layers above the last site do not run) and drawn ``cfg.batch_size`` ×
    128 tokens a step. The only training an SAE with an error term gets (it leaves the model's output unchanged
    while nothing is deleted, so the LM loss has no gradient for it); a hard SAE's first stage."""
    from obliviate.engine.loop import OptimConfig, optimize

    t0 = time.time()
    layers = sites.insert(model, cfg)
    acts = activation_sample(model, tok, examples, max_length, limit=len(examples), seed=cfg.seed)
    seed_codes(layers, acts, cfg)
    collect_s = time.time() - t0
    g = torch.Generator().manual_seed(cfg.seed)
    per_step = cfg.batch_size * 128
    rows = min(len(a) for a in acts.values())

    def batches():
        while True:
            pick = torch.randint(rows, (per_step,), generator=g)
            yield {site: a[pick] for site, a in acts.items()}

    def loss_fn(m, batch):
        for site, layer in layers.items():
            layer(batch[site].to(next(layer.parameters()).device))
        return pop_aux_losses(model)

    def sample(site):  # 4,096 random tokens of the site's activations, outliers left out
        a = acts[site][torch.randint(rows, (4096,), generator=g)]
        return a[a.norm(dim=-1) <= layers[site].max_norm] if layers[site].pass_outliers else a

    def replace_dead(step: int, _m) -> bool:
        if step % cfg.replace_dead_every == 0:
            reseed_dead(layers, sample, cfg.seed + step)
        return False

    holder = torch.nn.ModuleDict({site.replace(".", "_"): layer for site, layer in layers.items()})
    params = list(holder.parameters())
    for p in params:
        p.requires_grad_(True)
    for layer in layers.values():
        layer.track_aux = True
    seed_everything(cfg.seed)
    try:
        curve = optimize(holder, batches(), cfg.steps, loss_fn, OptimConfig(lr=cfg.lr, warmup_ratio=0.05),
                         "train SAE (reconstruction)", params=params,
                         callback=replace_dead if cfg.replace_dead_every else None)
    finally:
        for layer in layers.values():
            layer.track_aux = False
    model.eval()
    fired = {site: int((layer.usage > 0).sum()) for site, layer in layers.items()}
    return {"loss_curve": curve[:: max(1, len(curve) // 200)], "final_loss": curve[-1],
            "final_nmse": curve[-1] / cfg.mse_weight,
            "activation_tokens": rows, "collect_seconds": round(collect_s, 2),
            "train_seconds": round(time.time() - t0, 2), "trained_parameters": sum(p.numel() for p in params),
            "latents_fired": fired}  # since the last dead-latent check, or over the whole run


def _perplexity(scorer, examples) -> float:
    if not examples:
        return float("nan")
    ts = scorer.score(examples)
    total = sum(float(t.logp.sum()) for t in ts)
    return math.exp(-total / max(1, sum(t.logp.size for t in ts)))


def measure(model, tok, bench=None, texts: list[str] = (), max_new_tokens: int = 32) -> dict:
    """Exact match (greedy answers stating the fact) and answer perplexity on each QA split of ``bench``, and the
    perplexity of ``texts`` (passages, general text): the numbers a bottleneck's cost is read from."""
    from obliviate.data.format import format_prompt, qa_example
    from obliviate.evals.memorization import exact_match
    from obliviate.evals.scoring import Scorer

    scorer = Scorer(model, tok, max_length=256)
    out = {}
    if bench is not None:
        for split in ("forget", "retain", "world"):
            recs = getattr(bench, split, [])
            if not recs:
                continue
            gens = scorer.generate([format_prompt(tok, r.question) for r in recs], max_new_tokens)
            out[f"{split}_exact_match"] = sum(exact_match(g, r.answer, r.value) for g, r in zip(gens, recs)) / len(recs)
            out[f"{split}_answer_ppl"] = _perplexity(scorer, [qa_example(tok, r.question, r.answer) for r in recs])
    if texts:
        out["text_ppl"] = _perplexity(scorer, [Example("", t) for t in texts])
    return out


def cost(model, tok, bench=None, texts: list[str] = (), plain=None) -> dict:
    """``measure`` with the bottleneck and without it: on ``plain`` (the same recipe without a bottleneck, for
    models trained with it from scratch) or, for a frozen pretrained base, on the same model with every site
    passed through. ``warnings`` names the measures the bottleneck damaged (see :func:`damage`)."""
    with_b = measure(model, tok, bench, texts)
    if plain is not None:
        without = measure(plain, tok, bench, texts)
        how = "the same recipe trained without a bottleneck"
    else:
        with sites.bypassed(model):
            without = measure(model, tok, bench, texts)
        how = "the same weights with the bottleneck passed through"
    return {"with_bottleneck": with_b, "without_bottleneck": without, "without_is": how,
            "warnings": damage(with_b, without)}


def damage(with_b: dict, without: dict) -> list[str]:
    """The measures on which the bottlenecked model has lost most of what the model without it had: an exact match
    below half of its value without the bottleneck (where that was at least 0.2), or a perplexity more than twice
    as high. Deleting codes from such a model is measured against a model that no longer knows its facts, so its
    forget numbers say little about unlearning (e.g. an SAE that did not learn to reconstruct SmolLM2's residual
    stream: held-out perplexity 12 -> 1,570, docs/families/bottleneck.md)."""
    out = []
    for k, w in with_b.items():
        wo = without.get(k)
        if wo is None or not (math.isfinite(w) and math.isfinite(wo)):
            continue
        if k.endswith("_exact_match") and wo >= 0.2 and w < wo / 2:
            out.append(f"{k} {wo:.2f} -> {w:.2f}")
        elif k.endswith("_ppl") and w > 2 * wo:
            out.append(f"{k} {wo:.4g} -> {w:.4g}")
    return out


def damage_line(report: dict) -> str:
    """One sentence on a cost report's ``warnings``, for the CLI and the bench."""
    return (f"the bottleneck damaged the model before any unlearning ({'; '.join(report['warnings'])}; without it: "
            f"{report['without_is']}): deleting its codes would be judged on a model that no longer knows what it "
            "knew (a from-scratch model: more epochs or another lr; a pretrained one: more steps or error_term=true)")


def build(model_spec: str, out, cfg: BottleneckConfig, bench=None, probes=None, cache=None, overwrite=False,
          inputs=()) -> dict:
    """``obliviate bottleneck``: from scratch, a bottlenecked target and oracle (``out/target``, ``out/oracle``);
    pretrained, the model with a trained bottleneck (``out``). Both with ``cost.json``. Returns the cost report."""
    import shutil
    from dataclasses import asdict
    from pathlib import Path

    from obliviate.data import load_benchmark
    from obliviate.models import SCRATCH_MODELS, load_model, save_model
    from obliviate.core.outputs import atomic_dir
    from obliviate.engine.training import train_pair
    from obliviate.core.utils import versions, write_json_atomic

    record = {"model": model_spec, "bottleneck": asdict(cfg), "versions": versions()}
    if model_spec in SCRATCH_MODELS:
        if probes is not None:
            raise ObliviateError("bottleneck: probe targets (--rwku) go with a pretrained model; a from-scratch model "
                                 "trains on a benchmark")
        bench = bench or load_benchmark("people")
        paths = train_pair(model_spec, bench, cache=cache, bottleneck=cfg)
        plain = train_pair(model_spec, bench, cache=cache)
        model, tok = load_model(paths["target"])
        plain_model, _ = load_model(plain["target"])
        report = {**record, "benchmark": bench.record(), "target": str(paths["target"]),
                  "plain_target": str(plain["target"]),
                  "parameters": {"bottleneck": sum(p.numel() for layer in sites.bottlenecks(model).values()
                                                   for p in layer.parameters()),
                                 "model": sum(p.numel() for p in plain_model.parameters())},
                  **cost(model, tok, bench, [t.text for t in bench.texts.get("retain", [])], plain=plain_model)}
        with atomic_dir(Path(out), overwrite=overwrite, inputs=inputs) as tmp:
            for role, path in paths.items():
                shutil.copytree(path, tmp / role)
            write_json_atomic(tmp / "cost.json", report)
        return report
    if cfg.from_start:
        raise ObliviateError(f"bottleneck: from_start trains a from-scratch model with its bottleneck ({model_spec!r} "
                             "is pretrained: its weights stay frozen and the bottleneck alone trains)")
    model, tok, info, held_out, source, n_examples = fitted(model_spec, cfg, probes, bench, cache)
    report = {**record, "training_text": f"{source} + {cfg.general_texts} self-written general texts",
              "training_examples": n_examples, **info, **cost(model, tok, bench, held_out)}
    save_model(model, tok, out, {"base": model_spec, "bottleneck": report}, overwrite=overwrite, inputs=inputs,
               extra={"cost.json": report})
    return report


def fitted(model_spec: str, cfg: BottleneckConfig, probes=None, bench=None, cache=None):
    """The pretrained ``model_spec`` with a bottleneck trained on the probe targets' passages and the benchmark's
    training text (either or both) plus ``cfg.general_texts`` texts the model writes itself: ``(model, tokenizer,
    training info, held-out general texts, what it trained on, number of training texts)``. Cached by content
    hash (the model, the options and every training text) under ``$OBLIVIATE_CACHE/bottlenecks``, as targets and
    oracles are, so that an hour of fitting on a CPU is done once; the self-written texts are cached too."""
    from dataclasses import asdict
    from pathlib import Path

    from obliviate.core.utils import cache_dir, stable_hash, versions
    from obliviate.data import examples_from
    from obliviate.engine.training import cache_hit
    from obliviate.models import load_model, save_model
    from obliviate.models.loading import weights_digest

    model, tok = load_model(model_spec)
    examples, parts = [], []
    if probes is not None:
        examples += [Example("", p) for t in probes.values() for p in t.passages]
        parts.append(f"the passages of {len(probes)} probe targets")
    if bench is not None:  # its questions in the model's chat template: what a chat model's activations look like
        examples += examples_from(tok, bench.training_qa(True, pretrained=True), bench.training_texts(True))
        parts.append(f"benchmark {bench.name} (training QA and passages)")
    source = " + ".join(parts) or "none"
    root = Path(cache or cache_dir())
    general = _cached(root / "general_texts", {"model": model_spec, "n": cfg.general_texts + 16, "seed": cfg.seed},
                      lambda: general_texts(model, tok, cfg.general_texts + 16, seed=cfg.seed))
    held_out = general[cfg.general_texts:]  # never trained on: the perplexity of the cost report
    examples = examples + [Example("", t) for t in general[:cfg.general_texts]]
    # a local folder is named by its weights too: the same path may hold another model later
    weights = weights_digest(model_spec) if Path(model_spec).is_dir() else None
    key = stable_hash({"model": model_spec, "weights": weights, "bottleneck": asdict(cfg),
                       "texts": [[e.prompt, e.target] for e in examples]})[:16]
    path = root / "bottlenecks" / f"{Path(model_spec).name or 'model'}-{key}"
    if cache_hit(path, key):
        import json

        model, tok = load_model(path)
        info = json.loads((path / "obliviate.json").read_text(encoding="utf-8"))["fit"]
    else:
        info = fit_pretrained(model, tok, examples, cfg)
        save_model(model, tok, path, {"base": model_spec, "cache_key": key, "fit": info, "versions": versions()},
                   overwrite=True)
    return model, tok, info, held_out, source, len(examples)


def _cached(folder, key_src: dict, make):
    """``make()``'s JSON-able value, kept in ``folder`` under the hash of ``key_src``."""
    import json

    from obliviate.core.utils import stable_hash, write_json_atomic

    path = folder / f"{stable_hash(key_src)[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["value"]
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"key": key_src, "value": value})
    return value


def code_deletions(model) -> list[dict]:
    """The code deletions recorded in a bottlenecked model folder (``obliviate codes``), oldest first."""
    from obliviate.methods.bottleneck.codeunlearn import deletions
    from obliviate.models import load_model

    return deletions(load_model(model)[0])


def undo_deletion(model, request: int, out, overwrite: bool = False, inputs: list | None = None) -> dict:
    """Write a copy of the bottlenecked ``model`` folder to ``out`` with deletion ``request`` undone (the input is
    never modified); returns the undone entry."""
    import json
    from pathlib import Path

    from obliviate.methods.bottleneck.codeunlearn import undo
    from obliviate.models import load_model, save_model

    m, tok = load_model(model)
    entry = undo(m, request)
    meta_file = Path(model) / "obliviate.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta.pop("weights_sha256", None)
    meta["undone"] = [*meta.get("undone", []), entry]
    save_model(m, tok, out, meta, overwrite=overwrite, inputs=inputs)
    return entry
