"""Discrete bottlenecks inside a causal LM: codebook features and TopK sparse autoencoders.

    obliviate bottleneck --model tiny --benchmark people --site layer.2 --codes 1024 --k 8 --out cb

CodeUnlearn (Wu, Dossou, Liu 2024, arXiv:2410.10866) puts a sparse discrete bottleneck into the model once, then
honours each forget request by deleting the codes the forget data activates (:mod:`.codeunlearn`). Two kinds:

* ``codebook`` (Tamkin et al. 2023, "Codebook Features", arXiv:2310.17230, Sec. 3): a layer holding N code
  vectors. An activation x is scored against every code (cosine similarity, the paper's choice for language
  models, or the inner product), the top k codes are kept and the layer outputs their mean,
  ``y = (1/k) Σ_{i ∈ top-k(sim(x, C))} c_i``. The gradient passes straight through to x (dy/dx = I, the
  straight-through estimator) and reaches the selected codes through y; the codes also learn from the
  reconstruction term ``mse_weight · ‖y − sg(x)‖² / E‖x‖²`` (the official code's "aeloss", normalised as Gao et
  al. normalise theirs: a residual stream's norm grows during training, and the raw term then dominates the
  LM loss and, through gradient clipping, stops the model learning) and, optionally, a commitment term
  ``commitment · ‖x − sg(y)‖² / E‖x‖²`` (VQ-VAE's β).
* ``sae``: a TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse autoencoders",
  arXiv:2406.04093, Eq. 2-3), ``z = ReLU(TopK(W_enc (x − b_pre) + b_enc))``, ``y = W_dec z + b_pre``, inserted in
  the forward pass and trained on the same reconstruction term; its latents play the role of codes. Initialised as
  the paper says: ``W_enc = W_dec^T``, decoder rows of unit norm, ``b_pre`` the mean activation (the paper takes the
  geometric median). The AuxK dead-latent loss is not implemented; ``replace_dead_every`` re-seeds dead latents.

Sites (``site``, a comma list): ``layer.L.mlp`` (the MLP block's output of decoder layer L), ``layer.L.attn``
(each attention head's output before the output projection, one codebook per head, as the paper's grouped
attention codebooks), and ``layer.L`` (the residual stream after layer L: a bottleneck everything downstream
must pass through; obliviate's addition, since a deleted code at an MLP can be bypassed by the residual
stream). ``*`` stands for every layer.

Deleting a code masks its score to −∞ (the next best codes fill its slot). The deleted set is a buffer of the
layer, so it travels with the saved weights; the requests that deleted codes are listed in the model config
(``obliviate_bottleneck.deletions``) and can be undone (:func:`undo`). A bottlenecked model saves as a normal
safetensors folder whose config carries ``obliviate_bottleneck``; :func:`obliviate.load_model` rebuilds the layers
from it (no ``trust_remote_code``). Plain ``transformers`` cannot load it without them.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..options import OptionError, Options, option
from ..utils import ObliviateError

SITE_RE = re.compile(r"^layer\.(\d+|\*)(?:\.(mlp|attn))?$")


@dataclass
class BottleneckConfig(Options):
    """Shape and training of the bottleneck (``obliviate bottleneck``; saved in the model's config)."""

    kind: str = option("sae", "sae (TopK sparse autoencoder, Gao et al. 2024) or codebook (Tamkin et al. 2023). SAE "
                              "by default: on tiny its latents are specific enough to delete, a codebook's are not "
                              "(bench/codeunlearn.py)", choices=("codebook", "sae"))
    site: str | None = option(None, "comma list of layer.L.mlp, layer.L.attn (per head) or layer.L (residual stream); "
                                    "L may be * (every layer). Default: layer.M, M the middle layer")
    codes: int | None = option(None, "codes (SAE latents) per site or head (default: 16 x the site's width for a "
                                     "codebook, 8 x for an SAE)", ge=2)
    k: int | None = option(None, "codes kept per token (default: 8 for an SAE, Tamkin et al.'s k = 8; 32 for a "
                                 "codebook, since at k = 8 a residual-stream codebook keeps 22 % of tiny's facts)",
                              ge=1)
    similarity: str = option("cosine", "codebook scoring: cosine (the paper's, for language models) or inner",
                             choices=("cosine", "inner"))
    mse_weight: float = option(1.0, "weight of the reconstruction term ||y - sg(x)||^2 (codebook: trains the codes)",
                               ge=0)
    commitment: float = option(0.0, "weight of the commitment term ||x - sg(y)||^2 (VQ-VAE's beta; 0: off)", ge=0)
    init: str = option("kmeans", "kmeans (k-means of the site's activations on the training data) or data (random "
                                 "activations)", choices=("kmeans", "data"))
    replace_dead_every: int = option(0, "> 0: every N training steps, re-seed codes unused since the last check with "
                                        "recent activations", ge=0)
    epochs: int | None = option(None, "from scratch: epochs of joint training once the bottleneck is inserted into "
                                      "the trained plain model (default 10), or of all training with from_start "
                                      "(default 60)", ge=1)
    from_start: bool = option(False, "from scratch: train the model with the bottleneck from its first step (for "
                                     "`epochs` at `lr`; the issue's recipe) instead of inserting it into the trained "
                                     "plain model. Off by default: on tiny its codes are harder to delete "
                                     "(bench/codeunlearn.py)")
    # only for pretrained models, where the base is frozen and the bottleneck alone is trained
    steps: int = option(300, "pretrained models: optimiser steps of the bottleneck (the base stays frozen)", ge=1)
    lr: float = option(1e-3, "learning rate with the bottleneck in place (from scratch: of model and bottleneck; "
                             "pretrained: of the bottleneck)", gt=0)
    batch_size: int = option(8, "pretrained models: sequences per step", ge=1)
    general_texts: int = option(64, "pretrained models: general-text samples the model writes itself (nucleus-"
                                    "sampled continuations of varied openings), trained on beside the benchmark's "
                                    "text", ge=0)
    error_term: bool = option(False, "SAE only: keep the reconstruction error, y = x - SAE(x) + SAE'(x) (SAE': "
                                     "the deleted latents masked), so that with nothing deleted the model is exactly "
                                     "the base model; trained on reconstruction alone. For pretrained models, which an "
                                     "SAE of this size cannot stand in for (a departure from CodeUnlearn's hard "
                                     "bottleneck)")
    outlier_norm: float = option(10.0, "error_term: tokens whose activation norm exceeds this many times the median "
                                       "norm of the training activations pass through untouched (the attention sink's "
                                       "massive activations, which an SAE does not model)", gt=1)
    seed: int = option(0, "seeds the initialisation and the batch order", ge=0)

    def check(self) -> None:
        if self.site is not None:
            for s in self.site.split(","):
                if not SITE_RE.match(s.strip()):
                    raise OptionError(f"site={self.site!r}: {s.strip()!r} is not layer.L, layer.L.mlp or layer.L.attn")
        if self.kind == "sae" and self.site and ".attn" in self.site:
            raise OptionError("site: the SAE kind takes layer.L or layer.L.mlp sites (per-head SAEs are not built)")
        if self.error_term and self.kind != "sae":
            raise OptionError("error_term: only the SAE kind keeps a reconstruction error (a codebook has no "
                              "encoder to take it from); use kind=sae")
        if self.error_term and not self.mse_weight:
            raise OptionError("error_term: the SAE is trained on its reconstruction alone; mse_weight must be > 0")
        if self.codes is not None and self.k is not None and self.k >= self.codes:
            raise OptionError(f"k={self.k} must be below codes={self.codes}")

    def joint_epochs(self) -> int:
        """Epochs of training with the bottleneck in place (from scratch): ``epochs``, or its default."""
        return self.epochs or (60 if self.from_start else 10)

    def shape(self, width: int) -> tuple[int, int]:
        """(codes, k) for a site (or head) ``width`` wide."""
        codes = self.codes or (16 if self.kind == "codebook" else 8) * width
        return codes, self.k or (32 if self.kind == "codebook" else 8)


def _centroids(a: torch.Tensor, n: int, kmeans: bool, seed: int, g: torch.Generator) -> torch.Tensor:
    """``n`` rows of activations ``a`` (M, d): a random sample, refined by 10 k-means iterations (scipy) when asked
    and there are more activations than rows."""
    pick = a[torch.randint(len(a), (n,), generator=g)]
    if kmeans and len(a) > n:
        from scipy.cluster.vq import kmeans2

        cent, _ = kmeans2(a.numpy().astype("float64"), pick.numpy().astype("float64"), iter=10, minit="matrix",
                          seed=seed)
        pick = torch.from_numpy(cent).float()
    return pick


class Sparse(nn.Module):
    """What both kinds share: ``groups`` independent sets of ``codes`` entries over a ``dim // groups``-wide slice,
    a ``deleted`` mask, and the bookkeeping for scoring (``record``) and training (``aux``, ``usage``)."""

    def __init__(self, dim: int, codes: int, k: int, groups: int):
        super().__init__()
        if dim % groups:
            raise ObliviateError(f"bottleneck: width {dim} does not split into {groups} heads")
        self.dim, self.n, self.k, self.groups = dim, codes, k, groups
        self.register_buffer("deleted", torch.zeros(groups, codes, dtype=torch.bool))  # saved with the weights
        self.register_buffer("usage", torch.zeros(groups, codes), persistent=False)
        self.record: list | None = None  # set to a list to collect the chosen codes, (..., G, k) ids per call
        self.aux: torch.Tensor | None = None
        self.bypass = False
        self.track_aux = False  # set while obliviate trains the bottleneck: other training leaves no graph behind
        self.mse_weight, self.commitment = 1.0, 0.0

    def _topk(self, scores: torch.Tensor) -> torch.Tensor:  # (..., G, N) -> (..., G, k)
        if int(self.deleted.sum(-1).max()) > self.n - self.k:
            raise ObliviateError(f"bottleneck: fewer than k={self.k} codes left after deletion")
        return scores.masked_fill(self.deleted, float("-inf")).topk(self.k, dim=-1).indices

    def _book(self, idx: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """Record (and count) the chosen codes; returns their ids within this layer, head-major (..., G, k)."""
        flat = idx + torch.arange(self.groups, device=idx.device).unsqueeze(-1) * self.n
        if self.record is not None:
            self.record.append(flat.detach().cpu() if active is None else flat.masked_fill(~active, -1).detach().cpu())
        if self.training:
            self.usage.view(-1).index_add_(0, flat.reshape(-1), torch.ones(flat.numel(), device=flat.device))
        return flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., D)
        if self.bypass:
            return x
        xg = x.reshape(*x.shape[:-1], self.groups, self.dim // self.groups)  # (..., G, d)
        y = self.reconstruct(xg)
        if self.training and self.track_aux and (self.mse_weight or self.commitment):
            scale = xg.detach().pow(2).sum(-1).mean().clamp_min(1e-6)  # normalised MSE (Gao et al. 2024, Sec. 2.1)
            aux = self.mse_weight * (y - xg.detach()).pow(2).sum(-1).mean() / scale
            if self.commitment:
                aux = aux + self.commitment * (xg - y.detach()).pow(2).sum(-1).mean() / scale
            self.aux = aux if self.aux is None else self.aux + aux
        return self.output(xg, y).reshape(x.shape)


class Codebook(Sparse):
    """Codebook features: the mean of the top-k codes, straight-through gradient to the input."""

    def __init__(self, dim: int, codes: int, k: int, groups: int = 1, similarity: str = "cosine"):
        super().__init__(dim, codes, k, groups)
        self.similarity = similarity
        self.codes = nn.Parameter(torch.randn(groups, codes, dim // groups) / (dim // groups) ** 0.5)

    def scores(self, xg: torch.Tensor) -> torch.Tensor:  # (..., G, d) -> (..., G, N)
        c = self.codes
        if self.similarity == "cosine":
            xg, c = F.normalize(xg, dim=-1), F.normalize(c, dim=-1)
        return torch.einsum("...gd,gnd->...gn", xg, c)

    def reconstruct(self, xg):
        with torch.no_grad():
            idx = self._topk(self.scores(xg.detach()))  # (..., G, k)
        flat = self._book(idx)
        # an embedding lookup, not advanced indexing: the latter's backward (an accumulating index_put) sums the
        # gradients of a code chosen many times in a thread-dependent order on CPU, so the same seed trained
        # different weights; the embedding's backward sums them in a fixed order
        chosen = F.embedding(flat, self.codes.reshape(self.groups * self.n, -1))  # (..., G, k, d)
        return chosen.mean(-2)

    def output(self, xg, y):
        return y + xg - xg.detach()  # value y; dy/dx = I (straight-through), codes get the gradient of y

    @torch.no_grad()
    def seed_codes(self, acts: torch.Tensor, kmeans: bool, seed: int) -> None:
        """Initialise from activations ``acts`` (M, D): k-means centroids (scipy) or a random sample."""
        g = torch.Generator().manual_seed(seed)
        ag = acts.reshape(len(acts), self.groups, -1).float()
        for j in range(self.groups):
            pick = _centroids(ag[:, j], self.n, kmeans, seed, g)
            self.codes[j].copy_(pick + 1e-3 * torch.randn(pick.shape, generator=g))

    @torch.no_grad()
    def reseed(self, rows: torch.Tensor, acts: torch.Tensor, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        ag = acts.reshape(len(acts), self.groups, -1)
        for j, i in rows.tolist():
            self.codes[j, i] = ag[int(torch.randint(len(ag), (1,), generator=g)), j]


class TopKSAE(Sparse):
    """A TopK sparse autoencoder whose reconstruction replaces the activation, or, with ``error_term``, corrects
    it: ``y = x + SAE'(x) − SAE(x)``, where SAE' masks the deleted latents (Marks et al. 2024, "Sparse Feature
    Circuits", arXiv:2403.19647, keep the reconstruction error the same way). With nothing deleted ``y = x``; a
    deletion removes the deleted latents' decoder contributions and adds those of the latents that fill their
    slots. Tokens whose activation norm exceeds ``max_norm`` (``outlier_norm`` × the median norm seen at
    initialisation) pass through untouched."""

    def __init__(self, dim: int, codes: int, k: int, groups: int = 1, error_term: bool = False,
                 outlier_norm: float = 10.0):
        super().__init__(dim, codes, k, groups)
        d = dim // groups
        dec = F.normalize(torch.randn(groups, codes, d), dim=-1)
        self.W_dec = nn.Parameter(dec)  # (G, N, d)
        self.W_enc = nn.Parameter(dec.transpose(1, 2).clone())  # (G, d, N)
        self.b_enc = nn.Parameter(torch.zeros(groups, codes))
        self.b_pre = nn.Parameter(torch.zeros(groups, d))
        self.error_term, self.outlier_norm = error_term, outlier_norm
        if error_term:  # only then, so that the state dicts of hard-bottleneck SAEs stay what they were
            self.register_buffer("max_norm", torch.tensor(float("inf")))

    def scores(self, xg):
        return torch.einsum("...gd,gdn->...gn", xg - self.b_pre, self.W_enc) + self.b_enc

    def _decode(self, pre, idx):
        vals = F.relu(pre.gather(-1, idx))  # (..., G, k)
        z = torch.zeros_like(pre).scatter(-1, idx, vals)
        return torch.einsum("...gn,gnd->...gd", z, self.W_dec), vals

    def reconstruct(self, xg):
        pre = self.scores(xg)
        idx = self._topk(pre.detach())
        y, vals = self._decode(pre, idx)
        self._book(idx, active=vals.detach() > 0)
        return y + self.b_pre

    def output(self, xg, y):
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.error_term or self.bypass:
            return super().forward(x)
        any_deleted = bool(self.deleted.any())
        if not (any_deleted or self.training or self.record is not None):
            return x  # nothing deleted, nothing to count or record: the encoder's work would be thrown away
        xg = x.reshape(*x.shape[:-1], self.groups, self.dim // self.groups)
        keep = (xg.detach().norm(dim=-1) <= self.max_norm).unsqueeze(-1)  # (..., G, 1): not an outlier
        pre = self.scores(xg)
        idx = self._topk(pre.detach())  # the deleted latents masked
        y, vals = self._decode(pre, idx)
        self._book(idx, active=(vals.detach() > 0) & keep)
        if self.training and self.track_aux and self.mse_weight:
            # normalised MSE of the reconstruction y + b_pre over the tokens that are not outliers: the squared error
            # over that of predicting their mean activation (Gao et al. 2024, Sec. 2.1)
            x0, w = xg.detach(), keep.float()
            lead = tuple(range(x0.dim() - 2))
            mean = (x0 * w).sum(lead) / w.sum(lead).clamp_min(1)
            sq = lambda t: (t.pow(2).sum(-1, keepdim=True) * w).sum()  # noqa: E731
            aux = self.mse_weight * sq(y + self.b_pre - x0) / sq(x0 - mean).clamp_min(1e-6)
            self.aux = aux if self.aux is None else self.aux + aux
        if not any_deleted:
            return x
        full, _ = self._decode(pre, pre.detach().topk(self.k, dim=-1).indices)
        return (xg + (y - full) * keep).reshape(x.shape)

    @torch.no_grad()
    def seed_codes(self, acts: torch.Tensor, kmeans: bool, seed: int) -> None:
        """``b_pre`` = mean activation; decoder rows = unit directions of (k-means of) centred activations. With an
        error term, ``max_norm`` is set first and the outliers are left out."""
        g = torch.Generator().manual_seed(seed)
        if self.error_term:
            norms = acts.float().norm(dim=-1)
            self.max_norm.fill_(self.outlier_norm * float(norms.median()))
            acts = acts[norms <= self.max_norm]
        ag = acts.reshape(len(acts), self.groups, -1).float()
        for j in range(self.groups):
            a = ag[:, j]
            self.b_pre[j] = a.mean(0)
            pick = _centroids(a - a.mean(0), self.n, kmeans, seed, g)
            dec = F.normalize(pick + 1e-3 * torch.randn(pick.shape, generator=g), dim=-1)
            self.W_dec[j], self.W_enc[j] = dec, dec.T

    @torch.no_grad()
    def reseed(self, rows, acts, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        ag = acts.reshape(len(acts), self.groups, -1)
        for j, i in rows.tolist():
            d = F.normalize(ag[int(torch.randint(len(ag), (1,), generator=g)), j] - self.b_pre[j], dim=-1)
            self.W_dec[j, i], self.W_enc[j, :, i], self.b_enc[j, i] = d, d, 0.0


class Bottlenecked(nn.Module):
    """``inner`` with a bottleneck on its (first) output, or on its input (``on_input``: per-head attention)."""

    def __init__(self, inner: nn.Module, bottleneck: Sparse, on_input: bool = False):
        super().__init__()
        self.inner, self.bottleneck, self.on_input = inner, bottleneck, on_input

    def forward(self, *args, **kwargs):
        if self.on_input:
            return self.inner(self.bottleneck(args[0]), *args[1:], **kwargs)
        out = self.inner(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.bottleneck(out[0]), *out[1:])
        return self.bottleneck(out)

    def __getattr__(self, name):  # attributes of the wrapped block (e.g. a decoder layer's attention_type)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)


def _layers(model):
    from ..models.anatomy import decoder_layers

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
                 else TopKSAE(width, n, k, groups, cfg.error_term, cfg.outlier_norm))
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


def pop_aux(model) -> torch.Tensor | None:
    """The summed training reconstruction terms of the last forward pass (and reset them)."""
    total = None
    for layer in bottlenecks(model).values():
        if layer.aux is not None:
            total = layer.aux if total is None else total + layer.aux
            layer.aux = None
    return total


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


def set_deleted(model, codes: list[int], value: bool) -> None:
    layers = bottlenecks(model)
    for c in codes:
        site, g, i = split_id(model, c, layers)
        layers[site].deleted[g, i] = value
