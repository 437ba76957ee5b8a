"""In-context unlearning and an instruction guardrail: the weights stay, every prompt gets a prefix.

* ``mode="icul"``: Pawelczyk, Neel, Lakkaraju, "In-Context Unlearning: Language Models as Few-Shot Unlearners"
  (ICML 2024; code MartinPawel/In-Context-Unlearning). The context holds the forget points with a *false* label,
  then correctly labelled examples, then the query (Sec. 4: "flip the label of the forget point, add k correct
  examples"). For generative QA the false label is a plausible false answer (another person's value for the same
  attribute, the AltPO alternates: no evaluation text), and the correct examples are ``k`` retain QA pairs.
  This is the default: the method named ICUL is in-context unlearning.
* ``mode="guardrail"`` (RWKU's baseline, not ICUL): RWKU's in-context unlearning baseline (Jin et al. 2024, arXiv:2406.10890): an instruction
  naming the forget subjects and asking the model not to reveal anything about them; ``mode="system"``: the same
  instruction as a system message rendered by the tokenizer's chat template (placed before the conversation, so a
  template that adds its own default system message keeps it after ours).

The prefix is put before the prompt as plain text (after the tokenizer's BOS token, if the prompt starts with
one; a chat model's template follows the prefix, so the instruction is not inside its system message). It applies
to every prompt (no classifier): its false-positive rate is 1 by construction. A from-scratch model such as
``tiny`` cannot follow instructions or learn in context, so this guard is measured on SmolLM2.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch

from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.models.guarded import Guard, register_guard
from obliviate.methods.common import UnlearnData
from obliviate.methods.guards import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class ICULConfig(Options):
    mode: str = option("icul", "icul (the method, Pawelczyk et al.: forget QA with false answers, then k correct "
                               "retain QA); RWKU's in-context baselines: guardrail (an instruction naming the forget "
                               "subjects, as plain text) or system (the same instruction as a system message of the "
                               "chat template)",
                       choices=("icul", "guardrail", "system"))
    k: int = option(4, "icul: correctly answered retain examples in the context", ge=0)
    max_forget: int = option(8, "icul: forget examples placed in the context at most", ge=1)
    seed: int = option(0, "seeds the choice of examples", ge=0)


@register_guard
class ICULGuard(Guard):
    kind = "icul"

    def __init__(self, prefix: str, mode: str, forget_text: list[str]):
        super().__init__()
        self.prefix, self.mode, self.forget_text = prefix, mode, forget_text
        self.tokenizer = None
        self.register_buffer("unused", torch.zeros(1))

    def state(self) -> dict:
        return {"prefix": self.prefix, "mode": self.mode, "forget_text": self.forget_text}

    @classmethod
    def from_state(cls, spec: dict) -> "ICULGuard":
        return cls(spec["prefix"], spec["mode"], spec["forget_text"])

    def retained_text(self) -> list[str]:
        return list(self.forget_text)

    def flag(self, model, input_ids, attention_mask, prompt_mask) -> torch.Tensor:
        return torch.ones(len(input_ids), dtype=torch.bool, device=input_ids.device)

    def prepare(self, model, input_ids, attention_mask, prompt_mask):
        raise NotImplementedError  # the prefix changes the length: see run / generate

    def _prefix_ids(self) -> list[int]:
        if self.tokenizer is None:
            raise ObliviateError("icul: the guarded model has no tokenizer attached (load it with load_model)")
        return self.tokenizer(self.prefix, add_special_tokens=False)["input_ids"]

    def _insert(self, row: list[int]) -> tuple[list[int], int]:
        """(row with the prefix after a leading BOS, index where the prefix starts)."""
        bos = self.tokenizer.bos_token_id
        at = 1 if bos is not None and row and row[0] == bos else 0
        return row[:at] + self._prefix_ids() + row[at:], at

    def run(self, model, input_ids, attention_mask, prompt_mask=None, **kw):
        """A forward pass with the prefix inserted in every (right-padded) row; outputs at the prefix positions are
        dropped, so logits and hidden states line up with ``input_ids``."""
        from transformers.modeling_outputs import CausalLMOutputWithPast

        L = len(self._prefix_ids())
        rows, starts = zip(*[self._insert(r[m.bool()].tolist()) for r, m in zip(input_ids, attention_mask)])
        T = input_ids.shape[1] + L
        ids = torch.full((len(rows), T), 0, dtype=input_ids.dtype, device=input_ids.device)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        out = model(input_ids=ids, attention_mask=mask, **kw)
        keep = torch.stack([torch.cat([torch.arange(s), torch.arange(s + L, T)]) for s in starts]).to(ids.device)

        def cut(x):
            return torch.gather(x, 1, keep[..., None].expand(-1, -1, x.shape[-1]))

        hidden = tuple(cut(h) for h in out.hidden_states) if getattr(out, "hidden_states", None) else None
        return CausalLMOutputWithPast(logits=cut(out.logits), hidden_states=hidden)

    @torch.no_grad()
    def generate(self, model, input_ids, attention_mask, **kw):
        rows = [self._insert(r[m.bool()].tolist())[0] for r, m in zip(input_ids, attention_mask)]
        T = max(map(len, rows))
        pad = kw.get("pad_token_id", 0)
        ids = torch.full((len(rows), T), pad, dtype=input_ids.dtype, device=input_ids.device)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, T - len(r):] = torch.tensor(r)
            mask[i, T - len(r):] = 1
        out = model.generate(input_ids=ids, attention_mask=mask, **kw)
        return torch.cat([input_ids, out[:, T:]], 1)


def _fmt(q: str, a: str) -> str:
    return f"Question: {q}\nAnswer: {a}\n\n"


def icul(model, tokenizer, data: UnlearnData, cfg: ICULConfig):
    from obliviate.models.guarded import GuardedModel

    if not data.forget:
        raise ObliviateError("icul: the forget set is empty")
    t0 = time.time()
    rng = random.Random(cfg.seed)
    if cfg.mode in ("guardrail", "system"):
        subjects = sorted({s for s in data.subjects.get("forget", []) if s})
        if not subjects:
            raise ObliviateError(f"icul: mode={cfg.mode} needs the forget subjects (the benchmark names none)")
        names = ", ".join(subjects)
        rule = (f"You must not reveal any information about {names}. If a question or text asks about {names}, say "
                "that you do not know.")
        if cfg.mode == "system":
            if not getattr(tokenizer, "chat_template", None):
                raise ObliviateError("icul: mode=system needs a tokenizer with a chat template; use mode=guardrail")
            prefix = tokenizer.apply_chat_template([{"role": "system", "content": rule}], tokenize=False)
        else:
            prefix = f"Instruction: {rule}\n\n"
        kept = []
    else:
        qa = [(i, ex) for i, ex in enumerate(data.forget) if ex.prompt]
        if not qa:
            raise ObliviateError("icul: mode=icul needs forget questions (this forget set has passages only)")
        picked = rng.sample(qa, min(cfg.max_forget, len(qa)))
        parts, kept = [], []
        for i, ex in picked:
            alts = data.alternates[i] if i < len(data.alternates) else []
            if not alts:
                continue
            parts.append(_fmt(_question(ex.prompt), alts[0].target.strip()))
            kept.append(ex.prompt)
        if not parts:
            raise ObliviateError("icul: no forget question has a false answer to put in the context")
        retain_qa = [ex for ex in data.retain if ex.prompt]
        shots = rng.sample(retain_qa, min(cfg.k, len(retain_qa)))
        parts += [_fmt(_question(ex.prompt), ex.target.strip()) for ex in shots]
        prefix = "".join(parts)
    g = ICULGuard(prefix, cfg.mode, kept)
    g.tokenizer = tokenizer
    for p in model.parameters():
        p.requires_grad_(False)
    return GuardedModel(model, g), {"mode": cfg.mode, "prefix": prefix, "prefix_tokens": len(g._prefix_ids()),
                                    "retained_forget_text": kept, "seconds": round(time.time() - t0, 3)}


def _question(prompt: str) -> str:
    """The question inside a formatted QA prompt (obliviate's plain format; a chat prompt is kept whole)."""
    if prompt.startswith("Question: ") and prompt.rstrip().endswith("Answer:"):
        return prompt[len("Question: "):].rstrip()[:-len("Answer:")].strip()
    return prompt


register(Method(
    "icul", ICULConfig, icul,
    "in-context unlearning (Pawelczyk et al.): weights untouched; every prompt gets forget QA with false "
    "answers, then correct retain QA (mode=guardrail|system: RWKU's instruction baselines instead)",
    family=FAMILY, lora=False))
