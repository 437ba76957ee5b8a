"""Who's Harry Potter (Eldan & Russinovich, 2023, "Who's Harry Potter? Approximate Unlearning in LLMs",
arXiv:2310.02238, Sec. 3).

1. **Reinforced model**: fine-tune a copy of the model further on the forget data; the tokens whose logits
   reinforcement raises are the ones the forget data is responsible for.
2. **Generic predictions** (Eq. 1):  v_generic = v_baseline - α·ReLU(v_reinforced - v_baseline),  at every
   forget answer position; the generic label is its argmax.
3. **Anchored terms** (Sec. 3.2, optional): a dictionary that maps idiosyncratic terms to generic ones
   (``anchors: {"Harry": "Jon"}``). v_baseline is then the base model's prediction on the *translated* text,
   aligned token by token to the original (the position before a replaced term predicts its generic
   translation), so the labels are what the model would say had the text been about a generic subject.
4. **Fine-tune** the model on the original forget inputs towards the generic labels (cross-entropy), optionally
   with a retain NLL term (``retain_weight``, 0 in the paper).

    obliviate unlearn --method whp --model <target dir> --benchmark people --set alpha=5
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, replace

import torch

from obliviate.data.format import IGNORE, Example, collate, encode, pad_id
from obliviate.core.options import option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import GradientConfig, UnlearnData, lm_logits, run_gradient_method, with_retain_nll
from obliviate.methods.losses import mean_token_nll
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register
from obliviate.engine.plan import MemoryTerms


@dataclass
class WHPConfig(GradientConfig):
    SEARCH = {**GradientConfig.SEARCH, "alpha": ("log", 1.0, 50.0)}
    alpha: float = option(5.0, "α of Eq. 1 (the paper leaves it free: a positive coefficient; tuned on tiny)", ge=0)
    reinforce_epochs: int = option(10, "fine-tuning epochs of the reinforced model on the forget data", ge=1)
    reinforce_lr: float | None = option(None, "learning rate of the reinforcement fine-tune (default: lr)", gt=0)
    anchors: dict = option(help="idiosyncratic term -> generic term, e.g. {Hogwarts: the academy}", factory=dict,
                           check=lambda d: None if all(isinstance(k, str) and isinstance(v, str) for k, v in d.items())
                           else "a mapping of terms to generic terms (text to text)")
    retain_weight: float = option(0.0, "α on the retain NLL during the final fine-tune (the paper uses none)", ge=0)


def translate(text: str, anchors: dict[str, str]) -> str:
    """Replace each anchor term (whole words, longest first) by its generic translation."""
    if not anchors or not text:
        return text
    terms = sorted(anchors, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in terms) + r")(?!\w)")
    return pattern.sub(lambda m: anchors[m.group(0)], text)


def _aligned_positions(orig: list[int], trans: list[int]) -> dict[int, int]:
    """Original token position -> translated position, over the stretches the two sequences share."""
    sm = difflib.SequenceMatcher(None, orig, trans, autojunk=False)
    out = {}
    for a, b, size in sm.get_matching_blocks():
        out.update({a + k: b + k for k in range(size)})
    return out


@torch.no_grad()
def _logits(model, items: list[dict], pad: int) -> torch.Tensor:
    model.eval()
    dev = next(model.parameters()).device
    b = {k: v.to(dev) for k, v in collate(items, pad).items()}
    return lm_logits(model, b).float().cpu()


@torch.no_grad()
def generic_labels(base, reinforced, tokenizer, examples: list[Example], cfg: WHPConfig,
                   batch_size: int = 16) -> torch.Tensor:
    """(N, L) labels: at each answer position the argmax of v_generic, IGNORE elsewhere."""
    pad = pad_id(tokenizer)
    enc = [encode(tokenizer, e, cfg.max_length) for e in examples]
    trans = [encode(tokenizer, Example(translate(e.prompt, cfg.anchors), translate(e.target, cfg.anchors)),
                    cfg.max_length) for e in examples] if cfg.anchors else None
    width = max(len(e["input_ids"]) for e in enc)
    out = torch.full((len(enc), width), IGNORE, dtype=torch.long)
    for s in range(0, len(enc), batch_size):
        chunk = enc[s:s + batch_size]
        v_base, v_reinf = _logits(base, chunk, pad), _logits(reinforced, chunk, pad)
        v_trans = _logits(base, trans[s:s + batch_size], pad) if trans else None
        for j, e in enumerate(chunk):
            i = s + j
            align = _aligned_positions(e["input_ids"], trans[i]["input_ids"]) if trans else {}
            for t, label in enumerate(e["labels"]):
                if label == IGNORE or t == 0:
                    continue
                prev = t - 1  # the position that predicts token t
                vb = v_trans[j, align[prev]] if prev in align else v_base[j, prev]
                generic = vb - cfg.alpha * torch.relu(v_reinf[j, prev] - vb)
                out[i, t] = int(generic.argmax())
    return out


def whp(model, tokenizer, data: UnlearnData, cfg: WHPConfig) -> dict:
    if not data.forget:
        raise ObliviateError("whp: the forget set is empty")
    reinforced = copy.deepcopy(model)
    rcfg = replace(cfg, epochs=cfg.reinforce_epochs, max_steps=0, lr=cfg.reinforce_lr if cfg.reinforce_lr is not None else cfg.lr,
                   eval_every=0, keep_best="none", stop="none")

    def reinforce_loss(m, b):
        return mean_token_nll(lm_logits(m, b["forget"]), b["forget"]["labels"])

    reinforce = run_gradient_method(reinforced, tokenizer, UnlearnData(forget=data.forget), rcfg, reinforce_loss,
                                    "unlearn whp (reinforce)", needs_retain=False)
    labels = generic_labels(model, reinforced, tokenizer, data.forget, cfg)
    del reinforced
    kept = float((labels != IGNORE).sum())
    same = 0
    for i, ex in enumerate(data.forget):
        orig = torch.tensor(encode(tokenizer, ex, cfg.max_length)["labels"])
        same += int(((labels[i, :len(orig)] == orig) & (orig != IGNORE)).sum())

    def loss(m, b):
        f = b["forget"]
        target = labels.to(f["input_ids"].device)[b["forget_idx"], :f["input_ids"].shape[1]]
        return with_retain_nll(m, b, mean_token_nll(lm_logits(m, f), target), cfg.retain_weight)

    out = run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn whp", needs_retain=cfg.retain_weight > 0)
    return {**out, "reinforce_loss_curve": reinforce["loss_curve"],
            "generic_labels_equal_to_original": same / max(kept, 1.0)}


register(Method(
    "whp", WHPConfig, whp,
    "Who's Harry Potter: fine-tune towards generic labels from a reinforced model (+ optional anchor-term "
    "dictionary)",
    family=FAMILY, retain_term=False, memory=MemoryTerms(frozen_copies=1)))
