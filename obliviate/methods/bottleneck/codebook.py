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

Deleting a code works one of two ways, the two that codebook-features offers (Tamkin et al.'s code, its
``keep_k_codes`` hook option): ``fill`` (its default, ``keep_k_codes=True``) masks the code's score to −∞, so the
next best code takes its slot and k codes still make the output; ``zero`` (``keep_k_codes=False``) lets the code
be chosen but drops its contribution, so its slot stays empty (a codebook still divides by k; an SAE latent's value
is set to 0). Fill hands a deleted code's slot to a near copy when the codebook is large; zero removes what the code
carried. The deleted set is a buffer of the layer, so it travels with the saved weights; the zero-deleted subset is
rebuilt from the recorded requests; the requests that deleted codes are listed in the model config
(``obliviate_bottleneck.deletions``) and can be undone (:func:`undo`). A bottlenecked model saves as a normal
safetensors folder whose config carries ``obliviate_bottleneck``; :func:`obliviate.load_model` rebuilds the layers
from it (no ``trust_remote_code``). Plain ``transformers`` cannot load it without them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.core.utils import ObliviateError

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
    a ``deleted`` mask, and the bookkeeping for scoring (``record``) and training (``aux_loss``, ``usage``)."""

    def __init__(self, dim: int, codes: int, k: int, groups: int):
        super().__init__()
        if dim % groups:
            raise ObliviateError(f"bottleneck: width {dim} does not split into {groups} heads")
        self.dim, self.n, self.k, self.groups = dim, codes, k, groups
        self.register_buffer("deleted", torch.zeros(groups, codes, dtype=torch.bool))  # saved with the weights
        # the deleted codes whose contribution is zeroed rather than filled (rebuilt from the recorded requests)
        self.register_buffer("zeroed", torch.zeros(groups, codes, dtype=torch.bool), persistent=False)
        self.register_buffer("usage", torch.zeros(groups, codes), persistent=False)
        self.record: list | None = None  # set to a list to collect the chosen codes, (..., G, k) ids per call
        self.aux_loss: torch.Tensor | None = None
        self.bypass = False
        self.track_aux = False  # set while obliviate trains the bottleneck: other training leaves no graph behind
        self.mse_weight, self.commitment = 1.0, 0.0

    def _topk(self, scores: torch.Tensor) -> torch.Tensor:  # (..., G, N) -> (..., G, k)
        filled = self.deleted & ~self.zeroed  # fill-deleted codes are never chosen; zero-deleted ones may be
        if int(filled.sum(-1).max()) > self.n - self.k:
            raise ObliviateError(f"bottleneck: fewer than k={self.k} codes left after deletion")
        return scores.masked_fill(filled, float("-inf")).topk(self.k, dim=-1).indices

    def _zeroed_at(self, idx: torch.Tensor) -> torch.Tensor | None:
        """(..., G, k): which chosen codes are zero-deleted; None while no code is."""
        if not bool(self.zeroed.any()):
            return None
        flat = idx + torch.arange(self.groups, device=idx.device).unsqueeze(-1) * self.n
        return self.zeroed.reshape(-1)[flat]

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
            self.aux_loss = aux if self.aux_loss is None else self.aux_loss + aux
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
        zero = self._zeroed_at(idx)
        flat = self._book(idx, active=None if zero is None else ~zero)
        # an embedding lookup, not advanced indexing: the latter's backward (an accumulating index_put) sums the
        # gradients of a code chosen many times in a thread-dependent order on CPU, so the same seed trained
        # different weights; the embedding's backward sums them in a fixed order
        chosen = F.embedding(flat, self.codes.reshape(self.groups * self.n, -1))  # (..., G, k, d)
        if zero is None:
            return chosen.mean(-2)
        return (chosen * (~zero).unsqueeze(-1)).sum(-2) / self.k  # a zeroed code's slot stays empty

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
    slots. With an error term, or with ``pass_outliers`` (a hard bottleneck in a pretrained model), tokens whose
    activation norm exceeds ``max_norm`` (``outlier_norm`` × the median norm seen at initialisation: the attention
    sink) pass through untouched."""

    def __init__(self, dim: int, codes: int, k: int, groups: int = 1, error_term: bool = False,
                 outlier_norm: float = 10.0, pass_outliers: bool = False):
        super().__init__(dim, codes, k, groups)
        d = dim // groups
        dec = F.normalize(torch.randn(groups, codes, d), dim=-1)
        self.W_dec = nn.Parameter(dec)  # (G, N, d)
        self.W_enc = nn.Parameter(dec.transpose(1, 2).clone())  # (G, d, N)
        self.b_enc = nn.Parameter(torch.zeros(groups, codes))
        self.b_pre = nn.Parameter(torch.zeros(groups, d))
        self.error_term, self.outlier_norm = error_term, outlier_norm
        self.pass_outliers = error_term or pass_outliers
        if self.pass_outliers:  # only then, so that the state dicts of tiny's hard SAEs stay what they were
            self.register_buffer("max_norm", torch.tensor(float("inf")))

    def scores(self, xg):
        return torch.einsum("...gd,gdn->...gn", xg - self.b_pre, self.W_enc) + self.b_enc

    def _decode(self, pre, idx, zero: bool = True):
        vals = F.relu(pre.gather(-1, idx))  # (..., G, k)
        dropped = self._zeroed_at(idx) if zero else None
        if dropped is not None:
            vals = vals.masked_fill(dropped, 0.0)  # a zero-deleted latent contributes nothing
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
        if not self.pass_outliers or self.bypass:
            return super().forward(x)
        any_deleted = bool(self.deleted.any())
        if self.error_term and not (any_deleted or self.training or self.record is not None):
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
            self.aux_loss = aux if self.aux_loss is None else self.aux_loss + aux
        if not self.error_term:  # a hard bottleneck: the reconstruction replaces every token but the outliers
            return torch.where(keep, y + self.b_pre, xg).reshape(x.shape)
        if not any_deleted:
            return x
        full, _ = self._decode(pre, pre.detach().topk(self.k, dim=-1).indices, zero=False)
        return (xg + (y - full) * keep).reshape(x.shape)

    @torch.no_grad()
    def seed_codes(self, acts: torch.Tensor, kmeans: bool, seed: int) -> None:
        """``b_pre`` = mean activation; decoder rows = unit directions of (k-means of) centred activations. When
        outliers pass through (always with an error term), ``max_norm`` is set first and the outliers are left out."""
        g = torch.Generator().manual_seed(seed)
        if self.pass_outliers:
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
