"""Where the bottleneck layers sit in a model: resolving ``site`` names, inserting and rebuilding the layers, and
what runs across all of them (bypassing, recording, code ids and the deleted set)."""
from __future__ import annotations

import contextlib
from dataclasses import asdict

import torch
from torch import nn

from obliviate.core.utils import ObliviateError
from obliviate.methods.bottleneck.codebook import Bottlenecked, Codebook, Sparse, TopKSAE
from obliviate.methods.bottleneck.config import SITE_RE, BottleneckConfig


def _layers(model):
    from obliviate.models.anatomy import decoder_layers

    return decoder_layers(model)


def resolve_sites(model, site: str | None) -> list[str]:
    n = len(_layers(model))
    site = site or f"layer.{n // 2}"
    out = []
    for s in (p.strip() for p in site.split(",")):
        m = SITE_RE.match(s)
        if not m:
            raise ObliviateError(f"bottleneck site {s!r}: expected layer.L, layer.L.mlp or layer.L.attn")
        idx = range(n) if m.group(1) == "*" else [int(m.group(1))]
        for i in idx:
            if not 0 <= i < n:
                raise ObliviateError(f"bottleneck site {s!r}: the model has layers 0..{n - 1}")
            out.append(f"layer.{i}" + (f".{m.group(2)}" if m.group(2) else ""))
    if len(set(out)) != len(out):
        raise ObliviateError(f"bottleneck site {site!r} names a site twice")
    return out


def site_layer(site: str) -> int:
    """The decoder layer a resolved site (``layer.L``, ``layer.L.mlp``, ``layer.L.attn``) belongs to."""
    return int(site.split(".")[1])


def _parent_attr(model, site: str) -> tuple[nn.Module, str, int, int]:
    """(module holding the wrapped child, the child's attribute name, width, groups) of a site."""
    part = site.split(".")[2:]
    layers, i = _layers(model), site_layer(site)
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    width = cfg.hidden_size
    if not part:
        return layers, str(i), width, 1
    layer = layers[i]
    if part[0] == "mlp":
        if not hasattr(layer, "mlp"):
            raise ObliviateError(f"bottleneck site {site}: layer {i} of {type(model).__name__} has no .mlp")
        return layer, "mlp", width, 1
    attn = getattr(layer, "self_attn", None)
    if attn is None or not hasattr(attn, "o_proj"):
        raise ObliviateError(f"bottleneck site {site}: layer {i} has no self_attn.o_proj")
    heads = cfg.num_attention_heads
    return attn, "o_proj", attn.o_proj.in_features, heads


def spec_of(model) -> dict | None:
    return getattr(model.config, "obliviate_bottleneck", None)


def bottlenecks(model) -> dict[str, Sparse]:
    """``{site: layer}`` of a bottlenecked model (empty for any other model)."""
    spec = spec_of(model)
    if not spec:
        return {}
    out = {}
    for site in spec["sites"]:
        parent, attr, _, _ = _parent_attr(model, site)
        child = parent[int(attr)] if attr.isdigit() else getattr(parent, attr)
        if isinstance(child, Bottlenecked):
            out[site] = child.bottleneck
    return out


def insert(model, cfg: BottleneckConfig) -> dict[str, Sparse]:
    """Wrap each site of ``model`` (in place) with a fresh bottleneck; record the spec in ``model.config``."""
    if spec_of(model):
        raise ObliviateError("the model already has a bottleneck")
    sites = resolve_sites(model, cfg.site)
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    made = {}
    for site in sites:
        parent, attr, width, groups = _parent_attr(model, site)
        n, k = cfg.shape(width // groups)
        if k >= n:
            raise ObliviateError(f"bottleneck: k={k} must be below the {n} codes")
        torch.manual_seed(cfg.seed)
        layer = (Codebook(width, n, k, groups, cfg.similarity) if cfg.kind == "codebook"
                 else TopKSAE(width, n, k, groups, cfg.error_term, cfg.outlier_norm, bool(cfg.pass_outliers)))
        layer.mse_weight, layer.commitment = cfg.mse_weight, cfg.commitment
        layer.to(device=dev, dtype=dtype)
        child = parent[int(attr)] if attr.isdigit() else getattr(parent, attr)
        wrapped = Bottlenecked(child, layer, on_input=site.endswith(".attn"))
        if attr.isdigit():
            parent[int(attr)] = wrapped
        else:
            setattr(parent, attr, wrapped)
        made[site] = layer
    model.config.obliviate_bottleneck = {"sites": sites, "config": asdict(cfg), "deletions": []}
    return made


def rebuild(model) -> None:
    """Re-create the bottleneck layers a saved config describes (before its weights are loaded)."""
    spec = dict(spec_of(model))
    del model.config.obliviate_bottleneck
    cfg = BottleneckConfig(**{**spec["config"], "site": ",".join(spec["sites"])})
    insert(model, cfg)
    model.config.obliviate_bottleneck = spec
    for d in spec["deletions"]:  # the zero-deleted codes are not among the weights: the requests say which
        if d.get("deletion") == "zero":
            set_deleted(model, d["codes"], True, zero=True)


@contextlib.contextmanager
def bypassed(model):
    """Run ``model`` as if it had no bottleneck (each site passes its activation through unchanged)."""
    layers = list(bottlenecks(model).values())
    for layer in layers:
        layer.bypass = True
    try:
        yield model
    finally:
        for layer in layers:
            layer.bypass = False


@contextlib.contextmanager
def recording(model):
    """Collect the codes each bottleneck chooses: yields ``{site: [tensor (..., G, k) of global ids]}``."""
    layers = bottlenecks(model)
    rec = {s: [] for s in layers}
    for s, layer in layers.items():
        layer.record = rec[s]
    try:
        yield rec
    finally:
        for layer in layers.values():
            layer.record = None


@contextlib.contextmanager
def capture(model):
    """Collect each site's incoming activation (flattened to (M, D) per call) while bypassing the bottleneck."""
    layers = bottlenecks(model)
    acts = {s: [] for s in layers}
    handles = []
    for s, layer in layers.items():
        def pre(_m, args, s=s):
            acts[s].append(args[0].detach().reshape(-1, args[0].shape[-1]).float().cpu())
        handles.append(layer.register_forward_pre_hook(pre))
    try:
        with bypassed(model):
            yield acts
    finally:
        for h in handles:
            h.remove()


def offsets(model) -> dict[str, int]:
    """The first global code id of each site: global ids run site by site in the spec's order, each site's
    head-major (its layer's own ids, as :meth:`Sparse._book` records them, plus this offset)."""
    out, o = {}, 0
    for site, layer in bottlenecks(model).items():
        out[site], o = o, o + layer.groups * layer.n
    return out


def code_count(model) -> int:
    return sum(layer.groups * layer.n for layer in bottlenecks(model).values())


def split_id(model, code: int, layers: dict[str, Sparse] | None = None) -> tuple[str, int, int]:
    """A global code id -> (site, head, index)."""
    layers = layers or bottlenecks(model)
    for site, start in reversed(offsets(model).items()):
        if start <= code < start + layers[site].groups * layers[site].n:
            local = code - start
            return site, local // layers[site].n, local % layers[site].n
    raise ObliviateError(f"code id {code} out of range (the model has {code_count(model)} codes)")


def deleted_mask(model) -> torch.Tensor:
    """Every code's deleted flag, in global id order."""
    return torch.cat([layer.deleted.reshape(-1).cpu() for layer in bottlenecks(model).values()])


def set_deleted(model, codes: list[int], value: bool, zero: bool = False) -> None:
    """Delete (``value``) or restore ``codes``; ``zero``: a deletion that zeroes the codes' contributions instead of
    letting the next best codes fill their slots (:mod:`.codebook`)."""
    layers = bottlenecks(model)
    for c in codes:
        site, g, i = split_id(model, c, layers)
        layers[site].deleted[g, i] = value
        layers[site].zeroed[g, i] = value and zero
