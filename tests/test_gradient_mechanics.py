"""Each gradient method's own mechanism, beyond the forget loss that tests/test_methods.py checks for all of them:
RMU's steering, retraining's oracle, localized's located components, WHP's generic labels, UoE's expert,
AltPO's alternates, PDU's multiplier."""
import copy

import pytest
import torch

from obliviate import ObliviateError, UnlearnData, unlearn
from obliviate.data import collate, encode
from obliviate.data.format import pad_id
from obliviate.methods.losses import mean_token_nll


def test_rmu_updates_only_the_down_projections_of_its_layers(micro_models, data):
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "rmu", {"max_steps": 12, "layer": 1, "n_updated_layers": 1})
    assert info["updated_layers"] == [1] and info["updated_parameters"] == ["model.layers.1.mlp.down_proj.weight"]
    before = target.state_dict()
    changed = {k for k, v in new.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"model.layers.1.mlp.down_proj.weight"}
    assert all(p.requires_grad for p in new.parameters())  # flags restored for later fine-tuning


def test_rmu_activations_run_no_block_above_the_steered_layer(micro_models, data):
    """RMU's loss reads layer ℓ only: its forward pass stops there (no work or memory above ℓ), gives the same
    activation and gradient as the whole model's forward, and puts the stack back."""
    from obliviate.methods.gradient.rmu import _activations, decoder_layers

    target, _, tok = micro_models
    model = copy.deepcopy(target)
    batch = collate([encode(tok, e) for e in data.forget[:4]], pad_id(tok))
    calls = []
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
             for k, layer in enumerate(decoder_layers(model))]
    h = _activations(model, batch, 0)
    assert calls == [0]
    full = {}

    def keep(_m, _i, out):
        full["h"] = out[0] if isinstance(out, tuple) else out

    hooks.append(decoder_layers(model)[0].register_forward_hook(keep))
    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert calls[1:] == [0, 1] and len(decoder_layers(model)) == 2
    assert torch.equal(h, full["h"])
    w = decoder_layers(model)[0].mlp.down_proj.weight
    (g_short,) = torch.autograd.grad(h.square().sum(), w)
    (g_full,) = torch.autograd.grad(full["h"].square().sum(), w)
    assert torch.equal(g_short, g_full)
    for hook in hooks:
        hook.remove()


def test_rmu_layer_out_of_range(micro_models, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match=r"rmu: layer 5 is out of range; the model has layers 0\.\.1"):
        unlearn(target, tok, data, "rmu", {"max_steps": 2, "layer": 5})


def test_rmu_misdirects_forget_activations_and_keeps_retain_ones(micro_models, data, answer_nll):
    from obliviate.methods.gradient.rmu import _activations, _token_mse, data_tokens

    target, _, tok = micro_models
    cfg = {"max_steps": 24, "layer": 1, "lr": 1e-2, "alpha": 10.0}
    before = copy.deepcopy(target.state_dict())
    new, info = unlearn(target, tok, data, "rmu", cfg)
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())
    g = torch.Generator().manual_seed(0)
    u = torch.rand(target.config.hidden_size, generator=g)
    control = 6.5 * u / u.norm()
    f = collate([encode(tok, e) for e in data.forget], pad_id(tok))
    r = collate([encode(tok, e) for e in data.retain[:32]], pad_id(tok))
    # the activation terms read answer tokens (every token of a passage), not the shared question template
    mf = data_tokens(f)
    qa_rows = [i for i, e in enumerate(data.forget) if e.prompt]
    passage_rows = [i for i, e in enumerate(data.forget) if not e.prompt]
    assert (mf[qa_rows] < f["attention_mask"][qa_rows]).any(dim=1).all()  # prompt positions left out
    assert torch.equal(mf[passage_rows][:, 1:], f["attention_mask"][passage_rows][:, 1:])  # all text after BOS
    with torch.no_grad():
        d0 = _token_mse(_activations(target, f, 1), control, mf).item()
        d1 = _token_mse(_activations(new, f, 1), control, mf).item()
        drift = _token_mse(_activations(new, r, 1), _activations(target, r, 1), data_tokens(r)).item()
    assert d1 < 0.8 * d0, f"forget activations did not move towards c*u ({d0:.3f} -> {d1:.3f})"
    assert drift < 0.1 * (d0 - d1), f"retain activations drifted {drift:.4f}"
    assert answer_nll(new, tok, data.forget) > answer_nll(target, tok, data.forget) + 1.0


def test_rmu_adaptive_scale_sets_c_from_the_forget_activation_norm(micro_models, data):
    """Adaptive RMU: c = β × the mean layer-ℓ norm over the forget tokens, read off the input model, so the
    steering target keeps its size relative to the activations on any model; the default stays the paper's c."""
    from obliviate.methods.gradient.rmu import _activations, data_tokens

    target, _, tok = micro_models
    f = collate([encode(tok, e) for e in data.forget], pad_id(tok))
    with torch.no_grad():
        norms = _activations(target, f, 1).norm(dim=-1)
    mask = data_tokens(f).bool()
    expected = 3.0 * norms[mask].mean().item()
    cfg = {"max_steps": 2, "layer": 1, "batch_size": 5}
    _, plain = unlearn(target, tok, data, "rmu", cfg)
    _, adaptive = unlearn(target, tok, data, "rmu", {**cfg, "adaptive_scale": 3.0})
    assert plain["steering_coeff"] == 6.5
    assert adaptive["steering_coeff"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ObliviateError, match="adaptive_scale"):
        unlearn(target, tok, data, "rmu", {**cfg, "adaptive_scale": 0})


def test_retrain_reproduces_the_oracle(micro_models, data):
    target, oracle, tok = micro_models
    new, info = unlearn(target, tok, data, "retrain")
    assert info["train_seconds"] > 0
    ref = oracle.state_dict()
    assert all(torch.allclose(v, ref[k], atol=1e-6) for k, v in new.state_dict().items())
    with pytest.raises(ObliviateError, match="LoRA does not apply"):
        unlearn(target, tok, data, "retrain", {"lora_rank": 4})


# --- localized (mechanistic) -------------------------------------------------------------------------------

def test_localized_updates_only_the_located_mlps(micro_models, data, answer_nll):
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "localized", {"max_steps": 24, "n_components": 1})
    located = info["located"]
    assert len(located) == 1 and len(info["layer_scores"]) == target.config.num_hidden_layers
    prefix = located[0]["module"] + "."
    before = target.state_dict()
    changed = {k for k, v in new.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(prefix) for k in changed), changed
    assert set(info["updated_parameters"]) == {k for k in before if k.startswith(prefix)}
    assert located[0]["score"] == max(r["score"] for r in info["layer_scores"])
    assert answer_nll(new, tok, data.forget) > answer_nll(target, tok, data.forget) + 0.5


def test_localized_patching_scores_are_the_nll_increase_of_mean_ablation(micro_models, data):
    """The patching score of a layer equals the forget NLL increase (nats per answer token) measured
    independently by mean-ablating that MLP with a hook."""
    from obliviate.methods.gradient.localized import LocalizedConfig, locate, mean_mlp_outputs
    from obliviate.models.anatomy import mlp_modules

    target, _, tok = micro_models
    cfg = LocalizedConfig(locate="patching", contrast=False, locate_examples=16)
    rows = {r["layer"]: r for r in locate(target, tok, data, cfg)}
    means = mean_mlp_outputs(target, tok, data.retain[:16], cfg.max_length)
    batch = collate([encode(tok, e) for e in data.forget[:16]], pad_id(tok))
    n_tokens = int((batch["labels"][:, 1:] != -100).sum())

    def total_nll():
        with torch.no_grad():
            logits = target(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return mean_token_nll(logits, batch["labels"]).item() * n_tokens

    clean = total_nll()
    for layer, (_, mlp) in enumerate(mlp_modules(target, "test")):
        h = mlp.register_forward_hook(lambda _m, _i, out, layer=layer: means[layer].expand_as(out))
        try:
            effect = (total_nll() - clean) / n_tokens
        finally:
            h.remove()
        assert effect > 0 and abs(rows[layer]["forget_effect"] - effect) < 1e-3 * max(1.0, effect)


def test_localized_bad_options(micro_models, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="method localized: loss='rmu': must be one of"):
        unlearn(target, tok, data, "localized", {"loss": "rmu"})
    with pytest.raises(ObliviateError,
                       match="method localized: locate='magic': must be one of 'attribution', 'patching'"):
        unlearn(target, tok, data, "localized", {"locate": "magic", "max_steps": 2})
    with pytest.raises(ObliviateError, match=r"n_components must be in 1\.\.2"):
        unlearn(target, tok, data, "localized", {"n_components": 5, "max_steps": 2})
    with pytest.raises(ObliviateError, match=r"method npo: unknown option\(s\) gamma"):
        unlearn(target, tok, data, "localized", {"loss_options": {"gamma": 1}, "max_steps": 2})


# --- Who's Harry Potter --------------------------------------------------------------------------------------

def test_whp_generic_labels_follow_eq_1(micro_models, data):
    """alpha = 0 gives the base model's own argmax; a reinforced model that boosts the answer tokens pushes
    the generic labels away from them."""
    from obliviate.methods.gradient.whp import WHPConfig, generic_labels

    target, _, tok = micro_models
    ex = data.forget[:8]
    enc = [encode(tok, e) for e in ex]
    batch = collate(enc, pad_id(tok))
    with torch.no_grad():
        argmax = target(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
    same = generic_labels(target, target, tok, ex, WHPConfig(alpha=0.0))
    for i, e in enumerate(enc):
        for t, label in enumerate(e["labels"]):
            if label != -100 and t > 0:
                assert same[i, t] == argmax[i, t - 1]
    # a "reinforced" model whose logits rise exactly on the original answer tokens
    original = torch.tensor([e["labels"] + [-100] * (same.shape[1] - len(e["labels"])) for e in enc])
    boosted = generic_labels(target, _Boost(target, original), tok, ex, WHPConfig(alpha=5.0))
    scored = original != -100
    scored[:, 0] = False
    assert (boosted[scored] != original[scored]).all()


class _Boost(torch.nn.Module):
    """Wraps a model and adds +10 to the logit of each position's next original token."""

    def __init__(self, model, labels):
        super().__init__()
        self.model, self.labels = model, labels

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        logits = out.logits.clone()
        nxt = self.labels[:, 1:input_ids.shape[1]]
        for i, t in (nxt != -100).nonzero().tolist():
            logits[i, t, nxt[i, t]] += 10.0
        out.logits = logits
        return out


def test_whp_anchor_terms_relabel_as_if_about_the_generic_subject(micro_models, micro_bench):
    """With anchors {forget person: retain person} and alpha = 0, the label of the first answer token is what
    the base model answers about the retain person."""
    from obliviate.data.format import qa_example
    from obliviate.methods.gradient.whp import WHPConfig, generic_labels, translate

    target, _, tok = micro_models
    f = micro_bench.forget[0]
    r = next(x for x in micro_bench.retain if x.attribute == f.attribute and x.subject != f.subject)
    assert translate(f"{f.subject} was born.", {f.subject: r.subject}) == f"{r.subject} was born."
    ex = qa_example(tok, f.question, f.answer)
    labels = generic_labels(target, target, tok, [ex], WHPConfig(alpha=0.0, anchors={f.subject: r.subject}))
    first = next(t for t, x in enumerate(encode(tok, ex)["labels"]) if x != -100)
    prompt = encode(tok, qa_example(tok, f.question.replace(f.subject, r.subject), r.answer))
    n_prompt = sum(1 for x in prompt["labels"] if x == -100)
    with torch.no_grad():
        logits = target(input_ids=torch.tensor([prompt["input_ids"][:n_prompt]])).logits
    assert labels[0, first] == logits[0, -1].argmax()
    with pytest.raises(ObliviateError, match="method whp: anchors=.*expected a mapping"):
        unlearn(target, tok, UnlearnData(forget=[ex]), "whp", {"anchors": ["x"]})


# --- uoe (Mixture-of-Experts) --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def moe(micro_bench, micro_pair):
    from obliviate import load_model, train_pair

    path = train_pair("micro-moe", micro_bench, roles=("target",), cache=micro_pair["cache"])["target"]
    model, tok = load_model(path)
    return model, tok, UnlearnData.from_benchmark(micro_bench, tok)


def _routing(model, tok, examples, layer):
    """Mean routing probability per expert at ``layer`` over the answer tokens, read from transformers' own
    router_logits output."""
    batch = collate([encode(tok, e) for e in examples], pad_id(tok))
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_router_logits=True)
    keep = (batch["labels"] != -100).reshape(-1)
    return torch.softmax(out.router_logits[layer].float(), -1)[keep].mean(0)


def test_uoe_unlearns_one_expert_and_its_router_only(moe, answer_nll):
    model, tok, d = moe
    before = copy.deepcopy(model.state_dict())
    new, info = unlearn(model, tok, d, "uoe", {"max_steps": 24})
    layer, expert = info["layer"], info["expert"]
    # the chosen expert is the one the router engages most on the forget set (checked through transformers' API)
    best = max(range(model.config.num_hidden_layers), key=lambda i: _routing(model, tok, d.forget, i).max())
    assert layer == best and expert == int(_routing(model, tok, d.forget, layer).argmax())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # input untouched
    prefix = f"model.layers.{layer}.mlp."
    for k, v in new.state_dict().items():
        if k.startswith(prefix + "experts."):
            others = [e for e in range(v.shape[0]) if e != expert]
            assert torch.equal(v[others], before[k][others]), f"{k}: another expert changed"
            assert not torch.equal(v[expert], before[k][expert]), f"{k}: the chosen expert did not change"
        elif k == prefix + "gate.weight":
            assert not torch.equal(v, before[k])  # the router is trained by the anchor loss
        else:
            assert torch.equal(v, before[k]), f"{k} changed"
    (f0, r0), (f1, r1) = [(answer_nll(m, tok, d.forget), answer_nll(m, tok, d.retain)) for m in (model, new)]
    # one expert of a 2-layer MoE, 24 steps: the forget NLL rises several-fold, the retain NLL barely moves
    assert f1 > f0 + 0.25 and r1 - r0 < 0.25 * (f1 - f0), (f0, f1, r0, r1)


def test_uoe_anchor_keeps_the_router_on_the_expert(moe):
    model, tok, d = moe
    with_anchor, info = unlearn(model, tok, d, "uoe", {"max_steps": 24, "anchor_weight": 1.0})
    without, _ = unlearn(model, tok, d, "uoe", {"max_steps": 24, "anchor_weight": 0.0})
    layer, e = info["layer"], info["expert"]
    p0 = _routing(model, tok, d.forget, layer)[e]
    p_anchor, p_free = _routing(with_anchor, tok, d.forget, layer)[e], _routing(without, tok, d.forget, layer)[e]
    assert p_anchor > p_free and p_anchor >= p0, (float(p0), float(p_anchor), float(p_free))


def test_uoe_bad_input(micro_models, moe, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="uoe: LlamaForCausalLM is a dense model"):
        unlearn(target, tok, data, "uoe", {"max_steps": 2})
    model, mtok, d = moe
    with pytest.raises(ObliviateError, match="uoe: LoRA does not apply"):
        unlearn(model, mtok, d, "uoe", {"lora_rank": 4})
    with pytest.raises(ObliviateError, match=r"uoe: layer 7 has no MoE block; MoE layers are \[0, 1\]"):
        unlearn(model, mtok, d, "uoe", {"layer": 7, "max_steps": 2})


def test_swap_alternates_never_use_evaluation_text(micro_bench, data):
    assert len(data.alternates) == len(data.forget)
    for rec, alts in zip(micro_bench.forget, data.alternates):
        assert alts, rec.id
        for a in alts:
            assert rec.value not in a.target
            assert not any(p.strip() == a.target.strip() for p in rec.perturbed_answers)
            assert a.prompt.endswith(rec.question + "\nAnswer:") or rec.question in a.prompt


def test_altpo_prefers_alternates_over_the_forget_answer(micro_models, data, answer_nll):
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "altpo", {"max_steps": 24})
    assert info["alternates_from"]["swap"] == len([e for e in data.forget if e.prompt])
    alts = [a[0] for a in data.alternates if a]
    qa = [e for e in data.forget if e.prompt]
    gap0 = answer_nll(target, tok, alts) - answer_nll(target, tok, qa)
    gap1 = answer_nll(new, tok, alts) - answer_nll(new, tok, qa)
    assert gap0 > 0 and gap1 < 0  # before: the true answer is likelier; after: the alternates are


def test_altpo_sampling_a_memorised_answer_is_a_clear_error(micro_models, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="altpo: every answer sampled .* repeats the forget answer"):
        unlearn(target, tok, data, "altpo", {"max_steps": 24, "alternates": "sample", "temperature": 0.05})


def test_pdu_multiplier_follows_dual_ascent(micro_models, data):
    target, _, tok = micro_models
    _, info = unlearn(target, tok, data, "pdu", {"max_steps": 12, "retain_eps": 0.0, "dual_warmup_epochs": 0,
                                                   "multiplier": 1.0, "dual_step": 0.5})
    lam = info["multiplier_curve"]
    assert lam[0] == 1.0 and all(b > a for a, b in zip(lam, lam[1:]))  # ε = 0 is always violated: λ grows
    _, info = unlearn(target, tok, data, "pdu", {"max_steps": 12, "retain_eps": 100.0, "dual_warmup_epochs": 0,
                                                   "multiplier": 1.0, "dual_step": 0.5})
    assert info["multiplier_curve"][1:] == [0.0] * 11  # always satisfied: λ drops to 0 and stays
    _, info = unlearn(target, tok, data, "pdu", {"max_steps": 12, "retain_eps": 0.0, "dual_warmup_epochs": 100})
    assert set(info["multiplier_curve"]) == {100.0}  # warm-up: the multiplier does not move
