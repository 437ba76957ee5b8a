"""S3T: exact unlearning with LoRA adapters trained layer group by layer group on cumulative slices.

Chowdhury et al., "Towards Scalable Exact Machine Unlearning Using Parameter-Efficient Fine-Tuning" (ICLR 2025;
code brcsomnath/S3T), Sec. 3. The base model is frozen. Each shard's rows are split into ``L`` slices (by row
hash, as SISA: :func:`obliviate.methods.exact.sisa.assign_slices`) and the decoder layers into ``L`` groups counted from the top
(group 0 = the top ``n // L`` layers, as the official ``get_layers``; layers below ``L * (n // L)`` get no adapter).
For an ordering π of the slices, step i trains only group i's LoRA weights on the slices π[0..i], the other groups
frozen (the paper's Fig. 2). Group i has therefore seen exactly the slices π[0..i]; the first ``d`` groups form a
model that saw only π[0..d-1].

Each shard trains ``B`` orderings (the budget; default ``L``: the ``L`` cyclic rotations, the paper's Sec. 3.3
cyclic strategy; for ``B > L`` the rotations' suffixes are rotated in turn, our round-robin). A deletion cuts
every ordering of an affected shard at the position of the first slice holding a deleted row: the groups from
there down are reset to their initial LoRA weights (B = 0, so they add exactly nothing) and their trained
weights are discarded, so the saved model holds no weight that saw a deleted row. Each shard serves its deepest
surviving prefix; the ensemble averages the shards' next-token log-probabilities, as SISA. Only when no ordering
of a shard keeps ``min_depth`` groups is that shard's deepest ordering retrained from its cut through the last
group on the remaining rows, with each step's recorded seed: the result equals, bit for bit on the CPU, that
ordering trained from scratch without the rows (``tests/test_s3t.py``).

Defaults from the official ``s3t_llm.py``: LoRA rank 32, alpha 2 × rank, rsLoRA, dropout 0.05, every linear
projection of the attention and MLP. Departures: each step trains with the caller's recipe (``obliviate train
--sharded --s3t``: the target recipe's epochs divided by L and its learning rate, as SISA's slices) rather than
the official 3 epochs at 2e-5 for Llama-2-13B; a shard whose every ordering is cut to depth 0 and not retrained
(``min_depth = 0``) drops out of the ensemble (the base alone saw none of its rows); the paper retrains.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from obliviate.models.loading import register_folder_kind
from obliviate.core.options import Options, option
from obliviate.methods.exact.sisa import LogProbEnsemble, _key, assign_slices
from obliviate.core.utils import ObliviateError, seed_everything
from obliviate.methods.exact import FAMILY
from obliviate.methods.registry import Method, register

S3T_JSON = "obliviate_s3t.json"
_LAYER = re.compile(r"\.layers\.(\d+)\.")


@dataclass
class S3TConfig(Options):
    shards: int = option(2, "S: shards, each served by one adapter stack", ge=1)
    slices: int = option(4, "L: slices per shard = layer groups trained in sequence", ge=1)
    budget: int | None = option(None, "B: slice orderings trained per shard (default L, the cyclic rotations)", ge=1)
    rank: int = option(32, "LoRA rank (the official S3T default)", ge=1)
    alpha: float | None = option(None, "LoRA alpha (default 2 x rank, as the official code)", gt=0)
    dropout: float = option(0.05, "LoRA dropout", ge=0, lt=1)
    targets: str = option("all-linear", "LoRA target modules: all-linear or a comma list")
    min_depth: int = option(1, "retrain a shard's deepest ordering when no ordering keeps this many groups "
                               "(0: never retrain)", ge=0)
    seed: int = option(0, "assignment, adapter initialisation and batch-order seed", ge=0)


def orderings(L: int, B: int) -> list[list[int]]:
    """``B`` distinct orderings of ``range(L)``: the ``L`` cyclic rotations first; beyond them, each ordering's
    suffix after position n rotated (n = 1, 2, ...), taken round-robin over the parents."""
    import math

    if B > math.factorial(L):
        raise ObliviateError(f"s3t: budget={B} exceeds the {math.factorial(L)} orderings of {L} slices")
    rot = lambda xs: [xs[i:] + xs[:i] for i in range(len(xs))]  # noqa: E731
    out = rot(list(range(L)))[:B]
    frontier, n = out[:], 1
    while len(out) < B and n < L - 1:  # level n: all orderings distinct in their first n + 1 positions
        children = [[p[:n] + r for r in rot(p[n:])] for p in frontier]
        frontier = []
        for i in range(L - n):  # round-robin over the parents
            for ch in children:
                frontier.append(ch[i])
                if ch[i] not in out and len(out) < B:
                    out.append(ch[i])
        n += 1
    return out


def layer_groups(n_layers: int, L: int) -> list[list[int]]:
    """Group g: the ``n_layers // L`` layers counted down from the top (the official ``get_layers``)."""
    if n_layers < L:
        raise ObliviateError(f"s3t: slices={L} needs at least {L} decoder layers (one group each); the model has "
                             f"{n_layers}")
    k = n_layers // L
    return [[n_layers - 1 - (g * k + i) for i in range(k)] for g in range(L)]


def _name(s: int, o: int) -> str:
    return f"s{s}o{o}"


class S3TEnsemble(LogProbEnsemble):
    """One frozen base wrapped by peft with an adapter per (shard, ordering); ``depth[s][o]``: how many groups of
    that ordering are live (the rest hold their initial weights)."""

    def __init__(self, peft_model, slices, order: list[list[list[int]]], groups: list[list[int]], cfg: S3TConfig,
                 train_cfg: dict):
        super().__init__()
        self.peft = peft_model
        self.slices, self.order, self.groups, self.cfg, self.train_cfg = slices, order, groups, cfg, train_cfg
        self.depth = [[0] * len(o) for o in order]
        self.init: dict[str, dict] = {}
        self.rows: dict = {}

    def first_member(self):
        return self.peft.get_base_model()

    def served(self) -> list[tuple[int, int] | None]:
        """Per shard: (ordering, depth) of its deepest live prefix (the first such ordering), or None."""
        out = []
        for s, ds in enumerate(self.depth):
            o = max(range(len(ds)), key=lambda i: (ds[i], -i))
            out.append((o, ds[o]) if ds[o] > 0 else None)
        return out

    def member_logits(self, **kw) -> list:
        live = [(s, so) for s, so in enumerate(self.served()) if so is not None]
        if not live:  # every shard cut to nothing: the base, which saw none of the rows
            with self.peft.disable_adapter():
                return [self.peft(**kw).logits]
        out = []
        for s, (o, _) in live:
            self.peft.set_adapter(_name(s, o))
            out.append(self.peft(**kw).logits)
        return out

    def lora_params(self, name: str, group: int | None = None) -> dict[str, torch.nn.Parameter]:
        """The adapter's LoRA parameters (of one layer group's layers when ``group`` is given)."""
        layers = None if group is None else set(self.groups[group])
        out = {}
        for k, p in self.peft.named_parameters():
            if "lora_" in k and f".{name}." in k + ".":
                m = _LAYER.search(k)
                if layers is None or (m and int(m.group(1)) in layers):
                    out[k] = p
        return out

    def reset_groups(self, name: str, start: int) -> None:
        """Groups ``start..L-1`` of an adapter back to their initial weights (their trained weights are gone)."""
        with torch.no_grad():
            for g in range(start, len(self.groups)):
                for k, p in self.lora_params(name, g).items():
                    p.copy_(self.init[name][k])

    def save_pretrained(self, path, **kw):
        from safetensors.torch import save_file

        path = Path(path)
        (path / "base").mkdir(parents=True, exist_ok=True)
        base = self.peft.get_base_model()
        sd = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}
        save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, str(path / "base" / "model.safetensors"))
        base.config.save_pretrained(path / "base")
        base.config.save_pretrained(path)
        (path / "adapters").mkdir(exist_ok=True)
        for name, init in self.init.items():
            live = {k: v.detach().contiguous().clone() for k, v in self.lora_params(name).items()}
            save_file(live, str(path / "adapters" / f"{name}.safetensors"))
            save_file({k: v.contiguous() for k, v in init.items()}, str(path / "adapters" / f"{name}.init.safetensors"))
        (path / S3T_JSON).write_text(json.dumps({"config": asdict(self.cfg), "train": self.train_cfg,
                                                 "orderings": self.order, "groups": self.groups, "depth": self.depth,
                                                 "slices": self.slices}, indent=1), encoding="utf-8")


def _wrap(base, cfg: S3TConfig, groups: list[list[int]], n_adapters: list[str]):
    from peft import LoraConfig, get_peft_model

    if cfg.targets == "all-linear":  # every linear projection inside the decoder layers (peft wants names here)
        targets = sorted({k.rsplit(".", 1)[-1] for k, m in base.named_modules()
                          if isinstance(m, torch.nn.Linear) and _LAYER.search(k + ".")})
    else:
        targets = [t.strip() for t in cfg.targets.split(",") if t.strip()]
    lcfg = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha or 2 * cfg.rank, lora_dropout=cfg.dropout, use_rslora=True,
                      target_modules=targets, layers_to_transform=sorted(x for g in groups for x in g),
                      task_type="CAUSAL_LM")
    seed_everything(cfg.seed)  # adapters created in a fixed order from one seed: the same initial weights each run
    try:
        model = get_peft_model(base, lcfg, adapter_name=n_adapters[0])
    except ValueError as e:
        raise ObliviateError(f"s3t: no module of the model matches targets={cfg.targets!r} ({e})") from None
    for name in n_adapters[1:]:
        model.add_adapter(name, lcfg)
    return model


def _cumulative(ens: S3TEnsemble, s: int, o: int, step: int) -> list[str]:
    return [k for r in ens.order[s][o][:step + 1] for k in ens.slices[s][r]]


def train_steps(ens: S3TEnsemble, s: int, o: int, start: int, tokenizer) -> int:
    """Train (shard s, ordering o) from group ``start`` through the last; returns the row passes (one row for one
    step's epochs = 1)."""
    from obliviate.engine.training import TrainConfig, finetune

    name = _name(s, o)
    ens.reset_groups(name, start)
    base = TrainConfig(**{k: v for k, v in ens.train_cfg.items() if k != "seed"})
    ens.peft.set_adapter(name)
    work = 0
    for i in range(start, len(ens.groups)):
        keys = _cumulative(ens, s, o, i)
        for p in ens.peft.parameters():
            p.requires_grad_(False)
        for p in ens.lora_params(name, i).values():
            p.requires_grad_(True)
        if keys:
            cfg = TrainConfig(**{**asdict(base), "seed": ens.cfg.seed * 1000003 + s * 10007 + o * 101 + i})
            ens.peft.train()
            finetune(ens.peft, tokenizer, [ens.rows[k] for k in keys], cfg,
                     desc=f"s3t shard {s} ordering {o} group {i}")
            work += len(keys)
        ens.depth[s][o] = i + 1
    for p in ens.peft.parameters():
        p.requires_grad_(False)
    ens.peft.eval()
    return work


def train_s3t(base, tokenizer, examples, cfg: S3TConfig, train_cfg: dict) -> S3TEnsemble:
    """An S3T ensemble over ``base`` (wrapped in place by peft: pass a copy to keep the original) on ``examples``."""
    if not examples:
        raise ObliviateError("s3t: no training rows")
    L, B = cfg.slices, cfg.budget or cfg.slices
    if cfg.min_depth > L:
        raise ObliviateError(f"s3t: min_depth={cfg.min_depth} exceeds the {L} layer groups")
    n_layers = getattr(base.config, "num_hidden_layers", None)
    if not n_layers:
        raise ObliviateError("s3t: the model's config has no num_hidden_layers (decoder layers to group)")
    groups = layer_groups(n_layers, L)
    rows, slices = assign_slices(examples, cfg.shards, L, cfg.seed)
    order = [orderings(L, B) for _ in range(cfg.shards)]
    names = [_name(s, o) for s in range(cfg.shards) for o in range(B)]
    ens = S3TEnsemble(_wrap(base, cfg, groups, names), slices, order, groups, cfg, train_cfg)
    ens.rows = rows
    for name in names:
        ens.init[name] = {k: v.detach().clone() for k, v in ens.lora_params(name).items()}
    for s in range(cfg.shards):
        for o in range(B):
            train_steps(ens, s, o, 0, tokenizer)
    return ens


def full_cost(ens: S3TEnsemble) -> int:
    """Row passes to train every ordering of every shard from scratch on the rows left."""
    return sum(len(_cumulative(ens, s, o, i)) for s in range(len(ens.order)) for o in range(len(ens.order[s]))
               for i in range(len(ens.groups)))


@dataclass
class S3TUnlearnConfig(Options):
    min_depth: int | None = option(None, "override the ensemble's min_depth for this request (0: never retrain)",
                                   ge=0)
    seed: int = option(0, "unused: retraining repeats each step's recorded seed", ge=0)


def s3t_unlearn(model, tokenizer, data, cfg: S3TUnlearnConfig) -> dict:
    """Cut every ordering of each affected shard before its first slice holding a forget row; retrain a shard's
    deepest ordering only when none keeps ``min_depth`` groups."""
    if not isinstance(model, S3TEnsemble):
        raise ObliviateError("s3t: the model is not an S3T ensemble; build one with obliviate train --sharded S "
                             "--slices L --s3t --out DIR")
    L = len(model.groups)
    min_depth = model.cfg.min_depth if cfg.min_depth is None else cfg.min_depth
    if min_depth > L:
        raise ObliviateError(f"s3t: min_depth={min_depth} exceeds the ensemble's {L} layer groups")
    if not model.rows:
        raise ObliviateError("s3t: this ensemble holds no training rows (it was saved without them); cutting needs "
                             "only the slice table, but retraining needs the shard's remaining data")
    t0 = time.time()
    keys = {_key(ex) for ex in data.forget}
    found = keys & set(model.rows)
    cuts, retrained = [], []
    for s in range(len(model.slices)):
        hit = [r for r in range(L) if set(model.slices[s][r]) & found]
        if not hit:
            continue
        removed = 0
        for r in hit:
            before = len(model.slices[s][r])
            model.slices[s][r] = [k for k in model.slices[s][r] if k not in found]
            removed += before - len(model.slices[s][r])
        for o, perm in enumerate(model.order[s]):
            pos = min(perm.index(r) for r in hit)
            if pos < model.depth[s][o]:
                cuts.append({"shard": s, "ordering": o, "depth_before": model.depth[s][o], "depth_after": pos,
                             "slice": perm[pos]})
                model.reset_groups(_name(s, o), pos)
                model.depth[s][o] = pos
        best = max(range(len(model.order[s])), key=lambda i: (model.depth[s][i], -i))
        if model.depth[s][best] < min_depth:
            start = model.depth[s][best]
            work = train_steps(model, s, best, start, tokenizer)
            retrained.append({"shard": s, "ordering": best, "restored_from": f"ordering {best} cut at depth {start}",
                              "retrained_slices": model.order[s][best][start:], "rows_removed": removed,
                              "row_passes_retrained": work})
    for k in found:
        model.rows.pop(k, None)
    return {"exact": {"shards_retrained": retrained, "orderings_cut": cuts,
                      "served": [None if x is None else {"ordering": x[0], "depth": x[1]} for x in model.served()],
                      "forget_rows_found": len(found), "forget_rows_not_trained_on": len(keys - found),
                      "row_passes_retrained": sum(w["row_passes_retrained"] for w in retrained),
                      "row_passes_full_retraining": full_cost(model)},
            "seconds": round(time.time() - t0, 3)}


def load_s3t(path: Path) -> S3TEnsemble:
    """An ensemble saved by :meth:`S3TEnsemble.save_pretrained` (rows are not saved: see
    :func:`obliviate.methods.exact.sisa.attach_rows`)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    path = Path(path)
    spec = json.loads((path / S3T_JSON).read_text(encoding="utf-8"))
    cfg = S3TConfig(**spec["config"])
    base = AutoModelForCausalLM.from_pretrained(str(path / "base"))
    names = [_name(s, o) for s in range(len(spec["orderings"])) for o in range(len(spec["orderings"][s]))]
    ens = S3TEnsemble(_wrap(base, cfg, spec["groups"], names), spec["slices"], spec["orderings"], spec["groups"], cfg,
                      spec["train"])
    ens.depth = spec["depth"]
    for name in names:
        ens.init[name] = load_file(str(path / "adapters" / f"{name}.init.safetensors"))
        live = load_file(str(path / "adapters" / f"{name}.safetensors"))
        params = ens.lora_params(name)
        if set(live) != set(params):
            raise ObliviateError(f"s3t: {path / 'adapters' / (name + '.safetensors')} does not match the adapter "
                                 "layout of obliviate_s3t.json")
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(live[k])
    for p in ens.peft.parameters():
        p.requires_grad_(False)
    ens.eval()
    return ens


register_folder_kind("s3t", "obliviate_s3t.json", load_s3t)


register(Method(
    "s3t", S3TUnlearnConfig, s3t_unlearn,
    "S3T, exact: cut each slice ordering of an S3T ensemble (obliviate train --sharded --s3t) before its "
    "first affected slice and serve the deepest surviving LoRA prefix; retrain only a shard left without one",
    family=FAMILY, lora=False))
