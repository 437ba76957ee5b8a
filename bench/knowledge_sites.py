"""Where a pretrained model keeps what its real targets' probes ask: the most that removing one layer's MLP output
can take away (issue 40: why CodeUnlearn's bottleneck at one MLP site does or does not delete a topic).

    python bench/knowledge_sites.py [--model smollm2-135m] [--layers 0,3,6,...] [--targets all]

For each listed layer, the output of its MLP is replaced by its mean over held-out text the model wrote itself
(mean ablation: the component's information removed, its average contribution kept, the standard way to remove a
component without pushing activations off their range; Wang et al. 2023, "Interpretability in the Wild", §3),
and every built-in target's forget probes are asked again, with held-out perplexity as the damage. Tokens whose
MLP output is an outlier (norm above 10 x the median: the attention sink) keep their own output, as the bench's
bottleneck lets them through (``BottleneckConfig.pass_outliers``).

What it tells: a bottleneck at one site can at most remove what that site's output carries. Where the whole output
of a layer's MLP can be removed and the probes are still answered, deleting some of its latents (the ones a topic
fires most) cannot be expected to remove the topic: the facts reach the answer through other layers. Intervals:
bootstrap over targets, drops paired (the same targets in each resample).
"""
from __future__ import annotations

import argparse
import os
import time

from common import perplexity, probe_hits, say, table, write_result

OUTLIER = 10.0  # x the median norm, as BottleneckConfig.outlier_norm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--layers", default="", help="comma list of layers (default: every third layer and the middle)")
    ap.add_argument("--targets", default="all", help="comma list of built-in targets, or all")
    ap.add_argument("--texts", type=int, default=32, help="self-written texts: half for the mean, half held out")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import numpy as np
    import torch

    import obliviate as ob
    from obliviate.data.rwku import PROBE_SETS, load_probes
    from obliviate.evals.uncertainty import bootstrap
    from obliviate.methods.bottleneck.build import general_texts

    t0 = time.time()
    probes = load_probes(a.model if a.model in PROBE_SETS else None)
    targets = list(probes) if a.targets == "all" else [x.strip() for x in a.targets.split(",")]
    model, tok = ob.load_model(a.model)
    model.eval()
    blocks = model.model.layers  # the decoder layers of a Hugging Face causal LM (Llama, Gemma, Qwen, ...)
    n_layers = len(blocks)
    layers = ([int(x) for x in a.layers.split(",")] if a.layers else
              sorted({*range(0, n_layers, 3), n_layers // 2}))
    bad = [x for x in layers if not 0 <= x < n_layers]
    if bad:
        raise SystemExit(f"--layers: {bad} outside 0..{n_layers - 1} ({a.model} has {n_layers} layers)")
    texts = general_texts(model, tok, a.texts, seed=1)
    fit_texts, held_out = texts[:a.texts // 2], texts[a.texts // 2:]

    def mlp_means() -> dict[int, tuple[torch.Tensor, float]]:
        """Per layer: the mean MLP output over the fitting texts' tokens (outliers left out), and the outlier
        threshold (10 x the median norm)."""
        outs: dict[int, list[torch.Tensor]] = {i: [] for i in layers}
        hooks = [blocks[i].mlp.register_forward_hook(lambda _m, _a, y, i=i: outs[i].append(y.detach().flatten(0, 1)))
                 for i in layers]
        try:
            with torch.no_grad():
                for x in fit_texts:
                    model(**tok(x, return_tensors="pt"))
        finally:
            for h in hooks:
                h.remove()
        res = {}
        for i, ys in outs.items():
            y = torch.cat(ys)
            norms = y.norm(dim=-1)
            cut = OUTLIER * norms.median()
            res[i] = (y[norms <= cut].mean(0), float(cut))
        return res

    means = mlp_means()

    def ablated(i: int):
        mean, cut = means[i]

        def hook(_m, _a, y):
            keep = y.norm(dim=-1, keepdim=True) > cut
            return torch.where(keep, y, mean.to(y.dtype).expand_as(y))
        return blocks[i].mlp.register_forward_hook(hook)

    def measure() -> dict:
        per = {t: probe_hits(model, tok, probes, [t]) for t in targets}
        return {"hits": np.array([sum(per[t]) for t in targets], float),
                "count": np.array([len(per[t]) for t in targets], float),
                "ppl": perplexity(model, tok, held_out)}

    base = measure()
    got = {}
    for i in layers:
        t = time.time()
        h = ablated(i)
        try:
            got[i] = measure()
        finally:
            h.remove()
        print(f"  layer {i}: {got[i]['hits'].sum():.0f} / {got[i]['count'].sum():.0f} probes, "
              f"ppl {got[i]['ppl']:.2f} ({time.time() - t:.0f} s)", flush=True)

    idx = {"t": targets}
    c = base["count"]

    def acc(h):
        return h.sum() / c.sum(), bootstrap({"m": lambda s: h[s["t"]].sum() / c[s["t"]].sum()}, idx)["m"]

    def drop(h):
        d = base["hits"] - h
        return d.sum() / c.sum(), bootstrap({"m": lambda s: d[s["t"]].sum() / c[s["t"]].sum()}, idx)["m"]

    def fmt(v, sign=False):
        x, (lo, hi) = v
        f = "+.2f" if sign else ".2f"
        return f"{x:{f}} [{lo:{f}}, {hi:{f}}]"

    drops = {i: drop(got[i]["hits"]) for i in layers}  # each bootstrap once
    rows = [["none (the base model)", fmt(acc(base["hits"])), "-", f"{base['ppl']:.2f}", "-"]]
    values = {"base": {"probe_accuracy": acc(base["hits"])[0], "held_out_ppl": base["ppl"]}}
    for i in layers:
        g, d, ac = got[i], drops[i], acc(got[i]["hits"])
        rows.append([f"layer {i} MLP", fmt(ac), fmt(d, True), f"{g['ppl']:.2f}", f"{g['ppl'] / base['ppl']:.2f} x"])
        values[f"layer{i}"] = {"probe_accuracy": ac[0], "drop": {"value": d[0], "ci": list(d[1])},
                               "held_out_ppl": g["ppl"]}
    table(f"{a.model}: one layer's MLP output mean-ablated, every target's forget probes ({len(targets)} targets, "
          f"{c.sum():.0f} probes the base answers; bootstrap over targets)",
          ["MLP removed", "forget probes answered", "drop from the base", "held-out ppl", "ppl / base's"], rows)
    above = [i for i in layers if drops[i][1][0] > 0]
    mid = n_layers // 2
    say(f"{a.model}: removing one MLP's output drops the probes (interval above 0) at "
        + (f"layer(s) {', '.join(map(str, above))}" if above else "no layer measured")
        + (f"; at layer {mid}, the bench's bottleneck site, the drop is {fmt(drops[mid], True)}"
           if mid in got else "") + f"; {time.time() - t0:.0f} s in all")
    write_result(f"knowledge_sites_{a.model}", values, vars(a))


if __name__ == "__main__":
    main()
