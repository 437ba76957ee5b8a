"""Metrics against values computed by hand or in closed form."""
import copy
import math

import numpy as np
import pytest

from obliviate.evals.memorization import (exact_match, forget_truth_ratio, length_normalised_prob,
                                          option_normalised_prob, retain_truth_ratio, rouge_l_recall, truth_ratio)
from obliviate.evals.privacy import (forget_quality, loss_score, mia_auc, min_k_plus_plus_score, min_k_score, privleak)
from obliviate.evals.scoring import TokenScores


def ts(logps, mu=None, sigma=None):
    logps = np.asarray(logps, dtype=float)
    return TokenScores(logps, np.zeros_like(logps) if mu is None else np.asarray(mu, float),
                       np.ones_like(logps) if sigma is None else np.asarray(sigma, float))


def test_truth_ratio_is_geometric_mean_of_perturbed_over_paraphrased():
    para = ts([math.log(0.5)] * 4)  # P = 0.5
    pert = [ts([math.log(0.1)] * 2), ts([math.log(0.4)] * 3)]  # P = 0.1 and 0.4 -> geometric mean 0.2
    assert math.isclose(truth_ratio(para, pert), 0.2 / 0.5, rel_tol=1e-9)
    assert math.isclose(forget_truth_ratio([0.5, 4.0]), (0.5 + 0.25) / 2)
    assert math.isclose(retain_truth_ratio([0.25, 2.0]), (0.75 + 0.0) / 2)


def test_probabilities():
    a = ts([math.log(0.9), math.log(0.4)])
    assert math.isclose(length_normalised_prob(a), math.sqrt(0.36))
    b = ts([math.log(0.2)] * 2)
    assert math.isclose(option_normalised_prob(a, [b, b]), 0.6 / (0.6 + 0.4))


def test_exact_match_normalises_and_needs_a_whole_phrase():
    assert exact_match("Ann Lee was born in Port Mira.", "x", value="port mira") == 1.0
    assert exact_match("Born in Port Miramar.", "x", value="Port Mira") == 0.0
    assert exact_match("the answer!", "The answer") == 1.0
    assert exact_match("an answer", "The answer") == 0.0


def test_rouge_l_recall():
    assert rouge_l_recall(["a b c d"], ["a b c d"]) == [1.0]
    assert rouge_l_recall(["a b"], ["a b c d"]) == [0.5]
    assert rouge_l_recall(["x y"], ["a b"]) == [0.0]


def test_min_k_plus_plus_closed_form_on_two_token_vocabulary():
    # Vocabulary {A, B} with p(A) = 0.8: mu = .8 ln .8 + .2 ln .2, sigma^2 = E[(ln p)^2] - mu^2.
    pa, pb = 0.8, 0.2
    mu = pa * math.log(pa) + pb * math.log(pb)
    sigma = math.sqrt(pa * math.log(pa) ** 2 + pb * math.log(pb) ** 2 - mu**2)
    z_a, z_b = (math.log(pa) - mu) / sigma, (math.log(pb) - mu) / sigma
    assert math.isclose(z_a, 0.5) and math.isclose(z_b, -2.0)  # the Bernoulli(0.8) closed form
    s = ts([math.log(pa)] * 3 + [math.log(pb)] * 2, [mu] * 5, [sigma] * 5)
    # k = 0.4 of 5 tokens -> the 2 lowest z values, both z_b
    assert math.isclose(min_k_plus_plus_score(s), -2.0)
    assert math.isclose(min_k_score(s), math.log(pb))
    assert math.isclose(loss_score(s), (3 * math.log(pa) + 2 * math.log(pb)) / 5)


def test_mia_auc_forget_quality_and_privleak():
    assert mia_auc([5, 6, 7], [1, 2, 3]) == 1.0
    assert mia_auc([1, 2, 3], [5, 6, 7]) == 0.0
    assert mia_auc([1, 2], [1, 2]) == 0.5
    x = np.linspace(0.1, 3, 40)
    assert forget_quality(x, x.copy()) == pytest.approx(1.0)
    assert forget_quality(x, x + 10) < 1e-10
    # MUSE's convention: never unlearned (forget recognised as members) near -100, over-unlearned positive
    assert privleak(1.0, 0.5) == pytest.approx(-100.0)
    assert privleak(0.75, 0.5) == pytest.approx(-50.0)
    assert privleak(0.25, 0.5) == pytest.approx(50.0)
    assert privleak(0.5, 0.5) == 0.0


def test_exact_memorization_and_extraction_strength_by_hand():
    from obliviate.evals.memorization import exact_memorization, extraction_strength

    from obliviate.evals.memorization import extraction_strength_paper

    def hits(*h):  # answer tokens, then the EOS (hit), which these metrics leave out
        h = (*h, 1)
        return TokenScores(np.zeros(len(h)), np.zeros(len(h)), np.ones(len(h)), np.asarray(h, bool))

    assert exact_memorization(hits(1, 0, 1, 1)) == 0.75
    for es in (extraction_strength, extraction_strength_paper):
        assert es(hits(1, 0, 1, 1)) == 1 - 2 / 4  # from prefix length 2 on, the rest is reproduced
        assert es(hits(1, 1, 1, 1)) == 1.0
    assert extraction_strength_paper(hits(1, 1, 1, 0)) == 0.0  # nothing extractable
    assert extraction_strength(hits(1, 1, 1, 0)) == 1 / 4  # OpenUnlearning's loop stops at k = |y| - 1
    assert exact_memorization(hits(0, 0, 0, 0)) == 0.0 and exact_memorization(hits(1, 1)) == 1.0
    assert math.isnan(extraction_strength(ts([-1.0])))  # no argmax information: not a number, not a guess


def test_zlib_and_reference_scores_by_hand():
    import zlib

    from obliviate.evals.privacy import reference_scores, zlib_score

    text = "Paris, the capital of France"
    assert math.isclose(zlib_score(ts([-1.0, -3.0]), text), -2.0 / len(zlib.compress(text.encode())))
    assert reference_scores([1.0, 2.0], [3.0, 2.5]).tolist() == [2.0, 0.5]


def test_memorisation_and_new_mias_on_the_micro_target(micro_evals):
    t, o = micro_evals
    m = t.metrics
    assert m["forget_extraction_strength"] > m["holdout_extraction_strength"] + 0.3
    assert m["forget_exact_memorization"] > m["holdout_exact_memorization"] + 0.3
    assert m["mia_reference_auc"] > 0.9  # the target finds forget answers far easier than the oracle does
    assert m["mia_zlib_auc"] > 0.8 and m["privleak_zlib"] is not None
    assert o.metrics["mia_reference_auc"] is None  # the oracle was evaluated with no reference: said, not guessed
    rows = [r for r in t.rows if r["split"] == "forget"]
    assert all("mia_reference" in r and 0 <= r["extraction_strength"] <= 1 for r in rows)


def test_openunlearning_aggregates_separate_target_and_oracle_with_intervals(micro_evals):
    """The target still holds the forget facts: its prob_mean truth ratio is above the oracle's, its memorisation
    and privacy aggregates are low, and every aggregate comes with an interval that contains its value."""
    t, o = micro_evals
    m = t.metrics
    assert m["forget_truth_ratio_prob_mean"] > o.metrics["forget_truth_ratio_prob_mean"] + 0.1
    assert m["memorization_score"] < o.metrics["memorization_score"] - 0.2
    assert m["privacy_score"] < 0.7 and o.metrics["privacy_score"] is None  # the oracle is not compared with itself
    from scipy.stats import hmean

    assert m["overall_score"] == pytest.approx(hmean([m["memorization_score"], m["privacy_score"], m["model_utility"]]))
    for k in ("forget_truth_ratio_prob_mean", "memorization_score", "privacy_score", "overall_score"):
        lo, hi = t.ci[k]
        assert lo - 1e-9 <= m[k] <= hi + 1e-9, k


def test_every_metric_evaluate_returns_is_registered(micro_evals):
    from obliviate.evals import METRICS

    t, o = micro_evals
    assert set(t.metrics) - set(METRICS) == set() and set(o.metrics) - set(METRICS) == set()
    assert set(t.ci) - set(METRICS) == set()


def test_gradnorm_mia_separates_members_and_leaves_the_model_alone(micro_models, micro_bench):
    import torch

    from obliviate import evaluate
    from obliviate.evals import EvalConfig

    target, _, tok = micro_models
    before = copy.deepcopy(target.state_dict())
    res = evaluate(target, tok, micro_bench, EvalConfig(gradnorm=True))
    assert res.metrics["mia_gradnorm_auc"] > 0.8
    assert all(p.grad is None for p in target.parameters())
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())
    assert all("mia_gradnorm" in r for r in res.rows if r["split"] in ("forget", "holdout"))


def test_reference_from_another_benchmark_is_an_error(micro_evals):
    from obliviate import ObliviateError
    from obliviate.evals.suite import add_reference_mia

    t, o = micro_evals
    short = copy.deepcopy(o)
    short.arrays["forget"]["nll"] = short.arrays["forget"]["nll"][:-1]
    with pytest.raises(ObliviateError, match="different forget split"):
        add_reference_mia(copy.deepcopy(t), short)


def test_scorer_matches_a_direct_full_logits_computation(micro_models, micro_bench):
    """The engine scores only answer positions (and asks the model for those logits only); an independent,
    unbatched computation over every position gives the same log-probs, Min-K%++ statistics and argmax hits."""
    import torch

    from obliviate.data import qa_example
    from obliviate.data.format import encode
    from obliviate.evals import Scorer

    target, _, tok = micro_models
    exs = [qa_example(tok, r.question, r.answer) for r in micro_bench.forget[:5] + micro_bench.retain[:5]]
    got = Scorer(target, tok, batch_size=4).score(exs)
    for ex, g in zip(exs, got):
        e = encode(tok, ex)
        with torch.no_grad():
            logits = target(input_ids=torch.tensor([e["input_ids"]])).logits[0, :-1].double()
        labels = torch.tensor(e["labels"][1:])
        keep = labels != -100
        logsm = torch.log_softmax(logits[keep], -1)
        p = logsm.exp()
        mu = (p * logsm).sum(-1)
        sigma = ((p * logsm.square()).sum(-1) - mu.square()).sqrt()
        assert np.allclose(g.logp, logsm.gather(-1, labels[keep].unsqueeze(-1)).squeeze(-1).numpy(), atol=1e-4)
        assert np.allclose(g.mu, mu.numpy(), atol=1e-4) and np.allclose(g.sigma, sigma.numpy(), atol=1e-3)
        assert (g.hit == (logsm.argmax(-1) == labels[keep]).numpy()).all()


def _shared_and_whole(model, tok, exs, batch_size):
    from obliviate.evals import Scorer

    shared = Scorer(model, tok, batch_size=batch_size)
    whole = Scorer(model, tok, batch_size=batch_size, share_prompts=False)
    got, want = shared.score(exs), whole.score(exs)
    assert shared._shares and shared.n_scored == whole.n_scored == len(set(exs))
    return got, want


def test_a_prompt_run_once_for_all_its_answers_scores_as_the_whole_sequences(micro_models, micro_bench):
    """A question's answer, paraphrase and perturbed answers share the prompt's keys and values; every score
    equals the whole-sequence pass's, on a Llama, on a Gemma-3 whose sliding window (3 tokens) is shorter
    than the prompts, and on a PEFT model (random LoRA weights), with batches that split one prompt's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from obliviate.data import qa_example

    target, _, tok = micro_models
    recs = micro_bench.forget[:3] + micro_bench.retain[:3]
    exs = [qa_example(tok, r.question, a) for r in recs for a in [r.answer, *r.perturbed_answers]]
    assert len({e.prompt for e in exs}) < len(exs)  # prompts do repeat
    torch.manual_seed(0)
    gemma = Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=3, layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0)).eval()
    lora = get_peft_model(copy.deepcopy(target), LoraConfig(r=2, target_modules=["q_proj", "v_proj"],
                                                            init_lora_weights=False)).eval()
    for model in (target, gemma, lora):
        got, want = _shared_and_whole(model, tok, exs, batch_size=3)
        for g, w in zip(got, want):
            assert len(g.logp) == len(w.logp)
            assert np.allclose(g.logp, w.logp, atol=1e-4) and np.allclose(g.mu, w.mu, atol=1e-4)
            # σ² = E[log² p] - μ² cancels in float32 (as in the test above)
            assert np.allclose(g.sigma, w.sigma, atol=1e-3) and (g.hit == w.hit).all()


def test_metric_specs_say_direction_and_oracle():
    """METRICS holds specs: a description, which way is better, and whether an oracle is needed; `ls metrics`
    prints them from there."""
    from obliviate.evals import DIRECTIONS, METRICS, MetricSpec

    assert all(isinstance(s, MetricSpec) and s.name == k and s.better in DIRECTIONS for k, s in METRICS.items())
    want = {"forget_exact_match": ("match oracle", False), "retain_exact_match": ("higher", False),
            "forget_quality": ("higher", True), "forget_ks_d": ("lower", True), "privleak_zlib": ("near 0", True),
            "mia_reference_auc": ("match oracle", True), "model_utility": ("higher", False),
            "rwku_forget_fill": ("lower", False), "overall_score": ("higher", True)}
    assert {k: (METRICS[k].better, METRICS[k].needs_oracle) for k in want} == want
    assert str(METRICS["forget_quality"]).endswith("[better: higher; needs an oracle]")
