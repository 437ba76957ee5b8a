"""Inference-time guards (GuardedModel, ECO) on `micro`: the weights stay, unflagged prompts run the unguarded
model bit for bit, flagged ones lose the forget answers, the guard saves and loads, and its classifier's rates."""
import json

import pytest
import torch

from obliviate import EvalConfig, ObliviateError, UnlearnData, evaluate, load_model, save_model, unlearn
from obliviate.data.format import format_prompt


@pytest.fixture(scope="module")
def eco(micro_models, data):
    target, _, tok = micro_models
    return unlearn(target, tok, data, "eco", {})


def _batch(tok, prompts):
    enc = tok([format_prompt(tok, q) for q in prompts], return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def test_eco_keeps_the_weights_and_leaves_unflagged_prompts_bit_identical(micro_models, micro_bench, eco):
    target, _, tok = micro_models
    guarded, info = eco
    assert type(guarded).__name__ == "GuardedModel" and info["retained_forget_text"] == []
    for k, v in guarded.inner.state_dict().items():
        assert torch.equal(v, target.state_dict()[k]), k
    ids, mask = _batch(tok, [micro_bench.retain[0].question])
    assert not guarded.guard.flag(guarded.inner, ids, mask, mask.bool()).any()
    assert torch.equal(guarded(input_ids=ids, attention_mask=mask).logits, target(input_ids=ids, attention_mask=mask).logits)
    out_g = guarded.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    out_t = target.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert torch.equal(out_g, out_t)
    ids, mask = _batch(tok, [micro_bench.forget[0].question])
    assert guarded.guard.flag(guarded.inner, ids, mask, mask.bool()).all()
    assert not torch.equal(guarded(input_ids=ids, attention_mask=mask).logits,
                           target(input_ids=ids, attention_mask=mask).logits)


def test_eco_hides_the_forget_answers_and_keeps_retain(micro_models, micro_bench, eco):
    target, _, tok = micro_models
    guarded, info = eco
    t, g = evaluate(target, tok, micro_bench), evaluate(guarded, tok, micro_bench)
    assert t.metrics["forget_exact_match"] - g.metrics["forget_exact_match"] >= 0.5
    assert g.metrics["retain_exact_match"] >= t.metrics["retain_exact_match"] - 0.05
    assert info["classifier"]["train_true_positive_rate"] == 1.0 and info["sigma"] > 0


def test_guarded_model_saves_and_loads_without_pickle(tmp_path, micro_models, micro_bench, eco):
    _, _, tok = micro_models
    guarded, _ = eco
    out = save_model(guarded, tok, tmp_path / "g")
    spec = json.loads((out / "obliviate_guard.json").read_text())
    assert spec["kind"] == "eco" and spec["retained_forget_text"] == [] and spec["sigma"] == guarded.guard.sigma
    again, _ = load_model(out)
    assert type(again).__name__ == "GuardedModel"
    ids, mask = _batch(tok, [micro_bench.forget[0].question, micro_bench.retain[0].question])
    assert torch.equal(again(input_ids=ids, attention_mask=mask).logits,
                       guarded(input_ids=ids, attention_mask=mask).logits)  # same flags, same seeded noise


def test_a_guard_file_that_does_not_fit_is_a_clear_error(tmp_path, micro_models, eco):
    _, _, tok = micro_models
    out = save_model(eco[0], tok, tmp_path / "g")
    spec = json.loads((out / "obliviate_guard.json").read_text())
    (out / "obliviate_guard.json").write_text(json.dumps({**spec, "kind": "magic"}))
    with pytest.raises(ObliviateError, match="obliviate_guard.json: unknown guard kind 'magic'"):
        load_model(out)


def test_eco_corrupts_the_first_embedding_dimension_by_default_as_the_official_code(micro_models, micro_bench, eco):
    """The official code's default corruption is rand_noise_first_n with dims 1; dims=0 corrupts every dimension."""
    target, _, tok = micro_models
    guarded, info = eco
    assert guarded.guard.dims == 1 and info["guard"]["dims"] == 1
    ids, mask = _batch(tok, [micro_bench.forget[0].question])
    clean = target.get_input_embeddings()(ids)
    rows = torch.ones(len(ids), dtype=torch.bool)
    moved = (guarded.guard.corrupt(target, ids, rows, mask.bool()) - clean)[mask.bool()]  # (tokens, H)
    assert moved[:, 0].abs().min() > 0 and moved[:, 1:].abs().max() == 0
    every = type(guarded.guard).from_state({**guarded.guard.state(), "dims": 0})
    every.emb_std.copy_(guarded.guard.emb_std)
    assert (every.corrupt(target, ids, rows, mask.bool()) - clean)[mask.bool()].abs().min() > 0
    assert type(guarded.guard).from_state({k: v for k, v in guarded.guard.state().items() if k != "dims"}).dims == 0


def test_eco_needs_a_sigma_or_calibration_facts(micro_models, data):
    target, _, tok = micro_models
    bare = UnlearnData(forget=data.forget, retain=data.retain)
    with pytest.raises(ObliviateError, match="eco: sigma is unset and its search needs calibration facts"):
        unlearn(target, tok, bare, "eco", {})
    with pytest.raises(ObliviateError, match="sigma_range must be 'LOW,HIGH'"):
        unlearn(target, tok, data, "eco", {"sigma_range": "5,1"})
    guarded, info = unlearn(target, tok, bare, "eco", {"sigma": 3.0})
    assert info["sigma"] == 3.0 and "sigma_search" not in info


def test_classifier_rates_have_intervals_and_see_the_attack_forms(micro_models, micro_bench, eco):
    from obliviate.methods.guards.rates import classifier_rates

    _, _, tok = micro_models
    rates = classifier_rates(eco[0], tok, micro_bench)
    fn, fp = rates["false_negative"], rates["false_positive"]
    assert {"question", "paraphrased_question", "prefix_injection", "role_play"} <= set(fn)
    assert set(fp) == {"retain", "neighbours", "world", "holdout"}
    for r in [*fn.values(), *fp.values()]:
        assert 0 <= r["rate"] <= 1 and r["ci"][0] <= r["rate"] <= r["ci"][1] and r["n"] > 0
    assert fn["question"]["rate"] == 0.0  # the plain forget questions are what it was trained to flag


def test_attacks_run_on_a_guarded_model_and_leave_it_unchanged(micro_models, micro_bench, eco):
    from obliviate.attacks import run_attacks

    target, oracle, tok = micro_models
    res = run_attacks({"eco": eco[0]}, tok, micro_bench, target=target, oracle=oracle,
                      attacks="adversarial_prompts,concept_trace,relearn",
                      configs={"relearn": {"steps": "0,5", "lrs": "1e-3"}})
    att = res["attacks"]
    assert att["concept_trace"]["models"]["eco"]["score"] == att["concept_trace"]["models"]["target"]["score"]
    assert att["adversarial_prompts"]["verdicts"]["eco"]["verdict"]
    # relearning needs the weights, and with them the guard is gone: the held-out facts come back as the target's
    relearned = att["relearn"]["models"]
    assert "guard is dropped" in relearned["eco"]["extra"]["guard"]
    assert relearned["eco"]["score"] >= relearned["target"]["score"] - 0.2


@pytest.fixture(scope="module")
def guard(micro_models, data):
    target, _, tok = micro_models
    return unlearn(target, tok, data, "guard", {})


def test_guard_decodes_around_the_forget_answers_and_lists_what_it_keeps(micro_models, micro_bench, data, guard):
    target, _, tok = micro_models
    guarded, info = guard
    assert info["retained_forget_text"] and len(info["retained_forget_text"]) == len(data.forget)
    assert all(ex.target.strip() in k for ex, k in zip(data.forget, info["retained_forget_text"]))
    ids, mask = _batch(tok, [micro_bench.retain[0].question])  # unflagged: the model's own greedy answer
    assert torch.equal(guarded.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False),
                       target.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False))
    # a wrapper's sequences run whole; the bare model's too here, so that the passes are the same to the last bit
    whole = EvalConfig(share_prompts=False)
    t, g = evaluate(target, tok, micro_bench, whole), evaluate(guarded, tok, micro_bench, whole)
    assert t.metrics["forget_exact_match"] - g.metrics["forget_exact_match"] >= 0.5
    assert g.metrics["retain_exact_match"] == t.metrics["retain_exact_match"]
    assert g.metrics["forget_truth_ratio"] == t.metrics["forget_truth_ratio"]  # decoding only: likelihoods unchanged


def test_guard_never_emits_a_forbidden_span(micro_models, micro_bench, guard):
    _, _, tok = micro_models
    guarded, _ = guard
    g = guarded.guard
    for r in micro_bench.forget:
        prompt = format_prompt(tok, r.question)
        ids, mask = _batch(tok, [r.question])
        out = guarded.generate(input_ids=ids, attention_mask=mask, max_new_tokens=16, do_sample=False,
                               eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, ids.shape[1]:].tolist()
        for seq in g.forbidden_sequences(tok, prompt):
            assert not any(out[i:i + len(seq)] == seq for i in range(len(out))), (r.question, seq, out)


def test_guard_saves_and_loads(tmp_path, micro_models, micro_bench, guard):
    _, _, tok = micro_models
    out = save_model(guard[0], tok, tmp_path / "g")
    spec = json.loads((out / "obliviate_guard.json").read_text())
    assert spec["kind"] == "guard" and spec["retained_forget_text"] == guard[0].guard.keys
    again, _ = load_model(out)
    ids, mask = _batch(tok, [r.question for r in micro_bench.forget[:3]])
    kw = dict(max_new_tokens=12, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    assert torch.equal(again.generate(input_ids=ids, attention_mask=mask, **kw),
                       guard[0].generate(input_ids=ids, attention_mask=mask, **kw))


@pytest.mark.parametrize("mode", ["guardrail", "icul"])
def test_icul_prefixes_every_prompt_and_lines_outputs_up(tmp_path, micro_models, micro_bench, data, mode):
    """The prefix is in every pass (logits differ from the model's), outputs line up with the caller's tokens, the
    context's forget questions are listed as retained text, and the guard saves and loads."""
    target, _, tok = micro_models
    guarded, info = unlearn(target, tok, data, "icul", {"mode": mode})
    assert info["prefix_tokens"] > 0 and (info["retained_forget_text"] != []) == (mode == "icul")
    if mode == "guardrail":
        assert all(s in info["prefix"] for s in set(data.subjects["forget"]))
    else:  # forget questions with a *false* answer: never the true one
        for q in info["retained_forget_text"]:
            true = next(ex.target.strip() for ex in data.forget if ex.prompt == q)
            assert true not in info["prefix"]
    ids, mask = _batch(tok, [micro_bench.retain[0].question])
    out = guarded(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    plain = target(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert out.logits.shape == plain.logits.shape and out.hidden_states[-1].shape == plain.hidden_states[-1].shape
    assert not torch.allclose(out.logits, plain.logits)
    assert guarded.guard.flag(guarded.inner, ids, mask, mask.bool()).all()
    saved = save_model(guarded, tok, tmp_path / mode)
    again, _ = load_model(saved)
    assert torch.equal(again(input_ids=ids, attention_mask=mask).logits, out.logits)
    gen = guarded.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(gen[:, :ids.shape[1]], ids) and gen.shape[1] <= ids.shape[1] + 4


def test_demo_with_a_guard_reports_its_classifier_and_what_it_keeps(tmp_path, micro_pair):
    from obliviate.runs.demo import DemoConfig, run_demo

    cfg = DemoConfig(model="micro", benchmark="micro", method="eco", method_config={"sigma": 3.0}, attacks="none")
    res = run_demo(tmp_path / "out", cfg, cache=micro_pair["cache"])
    entry = res["models"]["eco"]
    assert entry["guard"]["kind"] == "eco" and "weights untouched" in entry["guard"]["note"]
    assert entry["guard"]["classifier_rates"]["false_positive"]["retain"]["rate"] <= 0.1
    assert entry["intrinsic"]["model"]["metrics"]["concept_cosine"] == pytest.approx(1.0)  # the target's weights
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Guard: eco" in html and "weights untouched" in html
    again, _ = load_model(tmp_path / "out" / "models" / "eco")
    assert type(again).__name__ == "GuardedModel"


def test_icul_system_mode_needs_a_chat_template(micro_models, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="icul: mode=system needs a tokenizer with a chat template"):
        unlearn(target, tok, data, "icul", {"mode": "system"})
