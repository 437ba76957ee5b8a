"""SISA: exact unlearning by sharded, isolated, sliced, aggregated training.

Bourtoule et al., "Machine Unlearning" (IEEE S&P 2021; code cleverhans-lab/machine-unlearning), Sec. IV. The
training rows are split into ``S`` shards and each shard into ``R`` slices; one constituent model per shard is
trained slice by slice (slice r on the union of slices 0..r, the paper's incremental training), with a checkpoint
after each slice. The ensemble answers with the mean of the constituents' next-token log-probabilities (the
paper aggregates label votes; for a language model the log-probability average is the natural counterpart).
A forget request restores each affected shard's checkpoint from before its first affected slice (or the
initialisation), drops the rows and retrains the remaining slices with the same seeds: the result is, bit for bit
on the CPU, the constituent a from-scratch run on the shard without those rows would give (``tests/test_sisa.py``).

Assignment is per row and deterministic: shard = SHA-256(seed, row) mod S, slice = another hash mod R, so removing
rows never moves the others (what makes the from-scratch comparison exact). Every constituent starts from the same
initialisation (the base model's), each slice's training is seeded by (seed, shard, slice).
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from obliviate.models.loading import register_folder_kind
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.exact import FAMILY
from obliviate.methods.registry import Method, register

SISA_JSON = "obliviate_sisa.json"


@dataclass
class SisaConfig(Options):
    shards: int = option(4, "S: constituent models, each trained on its own shard", ge=1)
    slices: int = option(4, "R: slices per shard, a checkpoint after each", ge=1)
    epochs: int | None = option(None, "epochs per slice (default: the recipe's epochs divided by R, at least 1)", ge=1)
    seed: int = option(0, "assignment, initialisation and batch-order seed", ge=0)


def _key(ex) -> str:
    return ex.sha256()


def assign(key: str, salt: str, n: int, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{salt}:{key}".encode()).hexdigest(), 16) % n


class LogProbEnsemble(torch.nn.Module):
    """A model that answers with the mean of its members' next-token log-probabilities (SISA's and S3T's
    aggregation). Subclasses give :meth:`member_logits`; ``slices[s][r]`` holds the row keys of shard s, slice r
    and ``rows`` maps key -> example (in memory, for retraining; never saved)."""

    slices: list
    rows: dict

    def member_logits(self, **kw) -> list:
        raise NotImplementedError

    @property
    def config(self):
        return self.first_member().config

    def first_member(self):
        raise NotImplementedError

    def get_input_embeddings(self):
        return self.first_member().get_input_embeddings()

    def get_output_embeddings(self):
        return self.first_member().get_output_embeddings()

    def forward(self, input_ids=None, attention_mask=None, **kw):
        from transformers.modeling_outputs import CausalLMOutputWithPast

        kw.pop("prompt_mask", None)
        logps = [torch.log_softmax(x.float(), -1)
                 for x in self.member_logits(input_ids=input_ids, attention_mask=attention_mask, **kw)]
        return CausalLMOutputWithPast(logits=torch.stack(logps).mean(0))

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, max_new_tokens: int = 32, eos_token_id=None,
                 pad_token_id=0, **_):
        """Greedy decoding on the averaged log-probabilities (no cache; left-padded rows)."""
        ids, mask = input_ids, attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
        for _ in range(max_new_tokens):
            pos = (mask.cumsum(-1) - 1).clamp_min(0)
            nxt = self(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad_token_id), nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            mask = torch.cat([mask, (~done).long()[:, None]], 1)
            if eos_token_id is not None:
                done |= nxt == eos_token_id
            if bool(done.all()):
                break
        return ids


class SisaEnsemble(LogProbEnsemble):
    """S constituents; ``slices[s][r]``: the row keys of shard s, slice r; ``rows``: key -> example (in memory, for
    retraining; never saved unless the owner asks); ``checkpoints[s][r]``: state after slice r (``init``: before)."""

    def __init__(self, constituents, slices: list[list[list[str]]], cfg: SisaConfig, train_cfg: dict):
        super().__init__()
        self.constituents = torch.nn.ModuleList(constituents)
        self.slices, self.cfg, self.train_cfg = slices, cfg, train_cfg
        self.checkpoints: list[list[dict]] = [[] for _ in constituents]
        self.init_state: dict = {}
        self.rows: dict = {}

    def first_member(self):
        return self.constituents[0]

    def member_logits(self, **kw) -> list:
        return [c(**kw).logits for c in self.constituents]

    def save_pretrained(self, path, **kw):
        from safetensors.torch import save_file

        path = Path(path)
        for s, c in enumerate(self.constituents):
            c.save_pretrained(path / f"shard{s}", safe_serialization=True)
            for r, st in enumerate(self.checkpoints[s]):
                save_file({k: v.contiguous() for k, v in st.items()}, str(path / f"shard{s}" / f"slice{r}.safetensors"))
        save_file({k: v.contiguous() for k, v in self.init_state.items()}, str(path / "init.safetensors"))
        self.constituents[0].config.save_pretrained(path)
        (path / SISA_JSON).write_text(json.dumps({"config": asdict(self.cfg), "train": self.train_cfg,
                                                  "slices": self.slices}, indent=1), encoding="utf-8")


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train_slices(ens: SisaEnsemble, s: int, start: int, tokenizer) -> None:
    """Train constituent ``s`` from its state before slice ``start`` through the last slice."""
    from obliviate.engine.training import TrainConfig, finetune

    model = ens.constituents[s]
    model.load_state_dict(ens.init_state if start == 0 else ens.checkpoints[s][start - 1])
    del ens.checkpoints[s][start:]
    base = TrainConfig(**{k: v for k, v in ens.train_cfg.items() if k != "seed"})
    for r in range(start, ens.cfg.slices):
        keys = [k for rr in range(r + 1) for k in ens.slices[s][rr]]
        if keys:
            cfg = TrainConfig(**{**asdict(base), "seed": ens.cfg.seed * 10007 + s * 101 + r})
            model.train()
            finetune(model, tokenizer, [ens.rows[k] for k in keys], cfg, desc=f"sisa shard {s} slice {r}")
        ens.checkpoints[s].append(_state(model))
    model.eval()


def train_sisa(base, tokenizer, examples, cfg: SisaConfig, train_cfg: dict) -> SisaEnsemble:
    """An ensemble trained from ``base`` (left untouched) on ``examples``."""
    if not examples:
        raise ObliviateError("sisa: no training rows")
    rows, slices = assign_slices(examples, cfg.shards, cfg.slices, cfg.seed)
    ens = SisaEnsemble([copy.deepcopy(base) for _ in range(cfg.shards)], slices, cfg, train_cfg)
    ens.rows, ens.init_state = rows, _state(base)
    for s in range(cfg.shards):
        _train_slices(ens, s, 0, tokenizer)
    return ens


@dataclass
class SisaUnlearnConfig(Options):
    seed: int = option(0, "unused: retraining repeats each slice's recorded seed", ge=0)


def sisa_unlearn(model, tokenizer, data, cfg: SisaUnlearnConfig) -> dict:
    """Drop the forget rows from their slices and retrain each affected shard from the checkpoint before its first
    affected slice. Rows the ensemble never trained on are reported, not an error."""
    if not isinstance(model, SisaEnsemble):
        raise ObliviateError("sisa: the model is not a SISA ensemble; build one with obliviate train --sharded S "
                             "--slices R --out DIR")
    t0 = time.time()
    keys = {_key(ex) for ex in data.forget}
    if not model.rows:
        raise ObliviateError("sisa: this ensemble holds no training rows to retrain with (it was saved without "
                             "them); retraining needs the shard's remaining data")
    found = keys & set(model.rows)
    work = []
    for s in range(model.cfg.shards):
        hit = [r for r in range(model.cfg.slices) if set(model.slices[s][r]) & found]
        if not hit:
            continue
        first = hit[0]
        removed = 0
        for r in hit:
            before = len(model.slices[s][r])
            model.slices[s][r] = [k for k in model.slices[s][r] if k not in found]
            removed += before - len(model.slices[s][r])
        rows_trained = sum(len(model.slices[s][r]) * (model.cfg.slices - r) for r in range(first, model.cfg.slices))
        _train_slices(model, s, first, tokenizer)
        origin = "initialisation" if first == 0 else f"checkpoint after slice {first - 1}"
        work.append({"shard": s, "restored_from": origin,
                     "retrained_slices": list(range(first, model.cfg.slices)), "rows_removed": removed,
                     "row_passes_retrained": rows_trained})
    for k in found:
        model.rows.pop(k, None)
    total = sum(len(sl) * (model.cfg.slices - r) for sh in model.slices for r, sl in enumerate(sh))
    return {"exact": {"shards_retrained": work, "forget_rows_found": len(found),
                      "forget_rows_not_trained_on": len(keys - found),
                      "row_passes_retrained": sum(w["row_passes_retrained"] for w in work),
                      "row_passes_full_retraining": total},
            "seconds": round(time.time() - t0, 3)}


def load_sisa(path: Path) -> SisaEnsemble:
    """An ensemble saved by :meth:`SisaEnsemble.save_pretrained` (its rows are not saved: unlearning a loaded
    ensemble needs them back, see :func:`attach_rows`)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    spec = json.loads((Path(path) / SISA_JSON).read_text(encoding="utf-8"))
    cfg = SisaConfig(**spec["config"])
    constituents = [AutoModelForCausalLM.from_pretrained(str(Path(path) / f"shard{s}")) for s in range(cfg.shards)]
    ens = SisaEnsemble(constituents, spec["slices"], cfg, spec["train"])
    ens.init_state = load_file(str(Path(path) / "init.safetensors"))
    for s in range(cfg.shards):
        ens.checkpoints[s] = [load_file(str(Path(path) / f"shard{s}" / f"slice{r}.safetensors"))
                              for r in range(cfg.slices)]
    ens.eval()
    return ens


def assign_slices(examples, shards: int, slices: int, seed: int) -> tuple[dict, list[list[list[str]]]]:
    """(key -> example, ``slices[s][r]``: sorted keys): each row placed by its own hash, so that removing rows never
    moves the others."""
    rows: dict = {}
    for ex in examples:
        rows.setdefault(_key(ex), ex)
    out: list[list[list[str]]] = [[[] for _ in range(slices)] for _ in range(shards)]
    for k in sorted(rows):
        out[assign(k, "shard", shards, seed)][assign(k, "slice", slices, seed)].append(k)
    return rows, out


def attach_rows(ens: LogProbEnsemble, examples) -> int:
    """Give a loaded ensemble its training rows back (matched by hash); returns how many of its rows were found."""
    want = {k for sh in ens.slices for sl in sh for k in sl}
    for ex in examples:
        k = _key(ex)
        if k in want:
            ens.rows[k] = ex
    return len(ens.rows)


def prepare_ensemble(model, tokenizer, bench) -> None:
    """The exact family's preparation: a loaded SISA or S3T ensemble gets its training rows back from the
    benchmark (retraining a shard needs its remaining rows; the folder keeps only their hashes)."""
    if isinstance(model, LogProbEnsemble) and bench is not None:
        from obliviate.data.format import examples_from

        # matched by hash: rows an ensemble was not trained on (a pretrained one's world facts) go unused
        attach_rows(model, examples_from(tokenizer, bench.training_qa(True), bench.training_texts(True)))


register_folder_kind("sisa", "obliviate_sisa.json", load_sisa)


register(Method(
    "sisa", SisaUnlearnConfig, sisa_unlearn,
    "SISA, exact: retrain each affected shard of a sharded ensemble (obliviate train --sharded) from the "
    "checkpoint before its first affected slice",
    family=FAMILY, lora=False))
