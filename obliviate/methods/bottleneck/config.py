"""What a bottleneck looks like and how it is trained: :class:`BottleneckConfig` (``obliviate bottleneck``'s
options, saved in the model's config). The layers are in :mod:`.codebook`, where they sit in :mod:`.sites`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from obliviate.core.options import OptionError, Options, option


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
    outlier_norm: float = option(10.0, "with pass_outliers or error_term: tokens whose activation norm exceeds this "
                                       "many times the median norm of the training activations pass through "
                                       "untouched (the attention sink's massive activations, which an SAE does not "
                                       "model)", gt=1)
    pass_outliers: bool | None = option(None, "SAE only: let the outlier tokens (outlier_norm) pass through a hard "
                                              "bottleneck. Default: on for a pretrained model (its first token, the "
                                              "attention sink, carries an activation far above the median, and "
                                              "reconstructing it breaks attention), off from scratch")
    kl_steps: int = option(0, "pretrained, hard SAE: after `steps` of reconstruction on collected activations, this "
                              "many steps through the frozen model on the KL divergence from the base model's "
                              "next-token distribution plus the reconstruction term (Braun et al. 2024's end-to-end "
                              "SAE objective, with the local reconstruction term kept beside it)", ge=0)
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
        if self.pass_outliers and self.kind != "sae":
            raise OptionError("pass_outliers: only the SAE kind lets outlier tokens pass (a codebook scores by "
                              "direction, not norm); use kind=sae")
        if self.kl_steps and self.error_term:
            raise OptionError("kl_steps: an SAE with an error term leaves the model's output unchanged, so the KL "
                              "divergence has no gradient for it; use error_term=false (a hard bottleneck)")
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
