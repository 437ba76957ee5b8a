"""Parity with the peers: every metric whose name the field shares equals the reference implementation's value on
the same per-token log-probabilities, to 1e-6.

Each peer computation below is written independently here, from reading the peer's code (it is not copied, and
obliviate does not import it): OpenUnlearning (locuslab/open-unlearning, ``src/evals/metrics/``) for TOFU's
metrics and the MIAs, MUSE's own code (swj0419/muse_bench, ``metrics/``) for MUSE's criteria. Each test names the
peer function it mirrors. Inputs are hand-built logits (B, T, V) and labels in the layout both use: prompt
positions masked with -100, then the answer tokens, then EOS.
"""
import zlib

import numpy as np
import pytest
import torch

from obliviate.evals.memorization import (exact_memorization, extraction_strength, forget_truth_ratio,
                                          length_normalised_prob, option_normalised_prob, retain_truth_ratio,
                                          rouge_l_recall, truth_ratio, truth_ratio_prob_mean)
from obliviate.evals.privacy import (forget_quality, loss_score, mia_auc, min_k_plus_plus_score, min_k_score, privleak,
                                     reference_scores, zlib_score)
from obliviate.evals.scoring import scores_from_logits

IGNORE = -100
V = 11


def batch(seed: int, lengths: list[tuple[int, int]], sharp: float = 1.0):
    """Random logits and labels: each row ``(prompt_len, answer_len)``, the answer followed by EOS (id 1), right
    padding. ``sharp`` scales the logits (large values: near one-hot distributions)."""
    g = torch.Generator().manual_seed(seed)
    T = max(p + a + 1 for p, a in lengths)
    ids = torch.full((len(lengths), T), 0, dtype=torch.long)
    labels = torch.full((len(lengths), T), IGNORE, dtype=torch.long)
    for i, (p, a) in enumerate(lengths):
        seq = torch.randint(2, V, (p + a,), generator=g).tolist() + [1]
        ids[i, :len(seq)] = torch.tensor(seq)
        labels[i, p:p + a + 1] = torch.tensor(seq[p:])
    logits = sharp * torch.randn(len(lengths), T, V, generator=g, dtype=torch.float64)
    # make the model right on some answer tokens, so that exact memorisation and extraction strength vary
    for i, (p, a) in enumerate(lengths):
        for t in range(p, p + a + 1):
            if (t * 7 + i) % 3:
                logits[i, t - 1, ids[i, t]] += 4 * sharp
    return logits, ids, labels


# ---------------------------------------------------------------------------------- OpenUnlearning, written here
def ou_evaluate_probability(logits, labels):
    """OpenUnlearning ``evaluate_probability``: per row, the summed cross-entropy of every labelled position over
    the number of labelled tokens; ``prob`` = exp(-avg_loss)."""
    shifted = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), shifted, ignore_index=IGNORE,
                                           reduction="none").sum(-1)
    avg = ce / (labels != IGNORE).sum(-1)
    return avg.numpy(), torch.exp(-avg).numpy()


def ou_tokenwise_logprobs(logits, ids, labels):
    """OpenUnlearning ``tokenwise_logprobs``: log-probs of the labelled tokens except the last (the EOS)."""
    lp = torch.log_softmax(logits, -1)[:, :-1]
    nxt = torch.gather(lp, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    out = []
    for i in range(len(ids)):
        idx = (labels[i] != IGNORE).nonzero(as_tuple=True)[0][:-1]
        out.append(nxt[i, idx[0] - 1:idx[-1]] if idx.numel() else torch.zeros(0))
    return out


def ou_tokenwise_vocab_logprobs(logits, labels):
    """OpenUnlearning ``tokenwise_vocab_logprobs``: the full distributions at those positions, and their labels."""
    lp = torch.log_softmax(logits, -1)[:, :-1]
    out = []
    for i in range(len(labels)):
        idx = (labels[i] != IGNORE).nonzero(as_tuple=True)[0][:-1]
        out.append((lp[i, idx[0] - 1:idx[-1]], labels[i][idx]))
    return out


def ou_min_k(lp, k=0.4):
    """OpenUnlearning ``MinKProbAttack.compute_score``: -mean of the max(1, int(n k)) lowest log-probs."""
    x = np.sort(lp.numpy())
    return 0 if x.size == 0 else -np.mean(x[:max(1, int(len(x) * k))])


def ou_min_k_plus_plus(vocab_lp, lp, k=0.4):
    """OpenUnlearning ``MinKPlusPlusAttack.compute_score``: z = (log p - mu) / sqrt(clamp(var, 1e-6))."""
    mu = (torch.exp(vocab_lp) * vocab_lp).sum(-1)
    var = torch.clamp((torch.exp(vocab_lp) * vocab_lp.square()).sum(-1) - mu.square(), min=1e-6)
    z = (lp.numpy() - mu.numpy()) / torch.sqrt(var).numpy()
    return -np.mean(sorted(z)[:max(1, int(len(z) * k))])


def ou_exact_memorization(vocab_lp, lab):
    """OpenUnlearning ``exact_memorization``: share of argmax predictions equal to the labels."""
    return float((vocab_lp.argmax(-1) == lab).sum() / len(lab))


def ou_extraction_strength(vocab_lp, lab):
    """OpenUnlearning ``extraction_strength``: the first k < n whose suffix the argmax reproduces; 1 - k/n."""
    preds = vocab_lp.argmax(-1)
    n = len(lab)
    for k in range(n):
        if torch.equal(preds[k:], lab[k:]):
            break
    return 1 - k / n


def ou_auc(forget_scores, holdout_scores):
    """OpenUnlearning ``mia_auc``: scores oriented "higher = non-member", forget labelled 0, holdout 1."""
    from sklearn.metrics import roc_auc_score

    return roc_auc_score([0] * len(forget_scores) + [1] * len(holdout_scores), list(forget_scores) + list(holdout_scores))


def ou_privleak(auc, ref):
    """OpenUnlearning ``privleak``: (1 - auc) - (1 - ref), relative to (1 - ref) + 1e-10, in percent."""
    return ((1 - auc) - (1 - ref)) / ((1 - ref) + 1e-10) * 100


# --------------------------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def qa():
    return batch(0, [(3, 5), (4, 2), (2, 7), (5, 1), (3, 4), (2, 6)])


def ours(logits, labels):
    return scores_from_logits(logits.float(), labels)


def test_probability_and_loss(qa):
    """OpenUnlearning ``probability`` / ``evaluate_probability`` and ``LOSSAttack``: every labelled token, EOS
    included."""
    logits, ids, labels = qa
    avg, prob = ou_evaluate_probability(logits, labels)
    ts = ours(logits, labels)
    assert np.allclose([length_normalised_prob(t) for t in ts], prob, atol=1e-6)
    assert np.allclose([-loss_score(t) for t in ts], avg, atol=1e-6)  # LOSS: ours is the negated loss


def test_min_k_and_min_k_plus_plus(qa):
    """OpenUnlearning ``MinKProbAttack`` and ``MinKPlusPlusAttack`` (k = 0.4): EOS dropped."""
    logits, ids, labels = qa
    ts = ours(logits, labels)
    lps = ou_tokenwise_logprobs(logits, ids, labels)
    vocab = ou_tokenwise_vocab_logprobs(logits, labels)
    for t, lp, (vlp, _) in zip(ts, lps, vocab):
        assert min_k_score(t) == pytest.approx(-ou_min_k(lp), abs=1e-6)
        assert min_k_plus_plus_score(t) == pytest.approx(-ou_min_k_plus_plus(vlp, lp), abs=1e-6)


def test_min_k_plus_plus_variance_floor():
    """Near one-hot distributions (a memorised answer) have Var[log p] below OpenUnlearning's 1e-6 clamp."""
    logits, ids, labels = batch(1, [(2, 6), (3, 4)], sharp=12.0)
    for t, lp, (vlp, _) in zip(ours(logits, labels), ou_tokenwise_logprobs(logits, ids, labels),
                               ou_tokenwise_vocab_logprobs(logits, labels)):
        assert min_k_plus_plus_score(t) == pytest.approx(-ou_min_k_plus_plus(vlp, lp), rel=1e-5, abs=1e-6)


def test_exact_memorization_and_extraction_strength(qa):
    """OpenUnlearning ``exact_memorization`` and ``extraction_strength`` (including its k < n loop bound)."""
    logits, ids, labels = qa
    ts = ours(logits, labels)
    vals = [(exact_memorization(t), extraction_strength(t)) for t in ts]
    peer = [(ou_exact_memorization(v, lab), ou_extraction_strength(v, lab))
            for v, lab in ou_tokenwise_vocab_logprobs(logits, labels)]
    assert np.allclose(vals, peer, atol=1e-6)
    assert len({round(x, 3) for x, _ in vals}) > 2  # the inputs exercise more than all-or-nothing


def test_truth_ratio_forget_quality_and_probability_with_options():
    """OpenUnlearning ``truth_ratio`` (closer_to_1_better and true_better), ``ks_test`` and
    ``probability_w_options``: paraphrased (correct) against three perturbed (wrong) answers per fact."""
    n_facts, n_wrong = 8, 3
    logits, ids, labels = batch(2, [(3, 2 + (i % 5)) for i in range(n_facts * (1 + n_wrong))])
    avg, prob = ou_evaluate_probability(logits, labels)
    ts = ours(logits, labels)
    correct_loss, wrong_loss = avg[:n_facts], avg[n_facts:].reshape(n_wrong, n_facts).T  # (facts, wrong)
    # OpenUnlearning: mean of the wrong answers' avg losses (aggregate_to_1D), then exp(-loss), wrong / correct
    tr_peer = np.exp(-wrong_loss.mean(1)) / (np.exp(-correct_loss) + 1e-10)
    tr_ours = np.array([truth_ratio(ts[i], [ts[n_facts + j * n_facts + i] for j in range(n_wrong)])
                        for i in range(n_facts)])
    assert np.allclose(tr_ours, tr_peer, atol=1e-6)
    assert forget_truth_ratio(tr_ours) == pytest.approx(np.mean(np.minimum(tr_peer, 1 / (tr_peer + 1e-10))), abs=1e-6)
    assert retain_truth_ratio(tr_ours) == pytest.approx(np.mean(np.maximum(0, 1 - tr_peer)), abs=1e-6)
    from scipy.stats import ks_2samp

    other = tr_peer[::-1] * 1.7  # an "oracle"'s truth ratios
    assert forget_quality(tr_ours, other) == pytest.approx(ks_2samp(tr_peer, other).pvalue, abs=1e-6)
    correct_p, wrong_p = prob[:n_facts], prob[n_facts:].reshape(n_wrong, n_facts).T
    peer = correct_p / (correct_p + wrong_p.sum(1) + 1e-10)
    got = [option_normalised_prob(ts[i], [ts[n_facts + j * n_facts + i] for j in range(n_wrong)]) for i in range(n_facts)]
    assert np.allclose(got, peer, atol=1e-6)


def test_truth_ratio_prob_mean_and_the_memorisation_aggregate():
    """OpenUnlearning ``truth_ratio`` with ``aggregator: prob_mean`` (Dec 2025): correct / (correct + wrong + 1e-10)
    from the paraphrased answer's and the perturbed answers' mean avg losses, aggregated by the plain mean; and
    ``hm_aggregate`` (scipy's harmonic mean) over 1 - ES, 1 - EM, 1 - para-prob, 1 - TR."""
    from scipy.stats import hmean

    from obliviate.evals.suite import memorization_score

    n_facts, n_wrong = 7, 3
    logits, ids, labels = batch(5, [(3, 2 + (i % 4)) for i in range(n_facts * (1 + n_wrong))])
    avg, _ = ou_evaluate_probability(logits, labels)
    ts = ours(logits, labels)
    correct, wrong = avg[:n_facts], avg[n_facts:].reshape(n_wrong, n_facts).T  # (facts,), (facts, wrong)
    c, w = np.exp(-correct), np.exp(-wrong.mean(1))
    peer = c / (c + w + 1e-10)
    got = np.array([truth_ratio_prob_mean(ts[i], [ts[n_facts + j * n_facts + i] for j in range(n_wrong)])
                    for i in range(n_facts)])
    assert np.allclose(got, peer, atol=1e-6) and not np.allclose(peer, 0.5, atol=0.05)
    assert float(np.mean(got)) == pytest.approx(float(np.mean(peer)), abs=1e-6)
    forget = {"extraction_strength": 0.4, "exact_memorization": 0.65, "paraphrased_prob": 0.3,
              "truth_ratio_prob_mean": float(np.mean(peer))}
    assert memorization_score(forget) == pytest.approx(hmean([1 - v for v in forget.values()]), abs=1e-12)
    assert memorization_score({**forget, "exact_memorization": 1.0}) == 0.0  # a term at 0: the harmonic mean is 0
    assert memorization_score({**forget, "paraphrased_prob": None}) is None


def test_privacy_score_is_one_at_the_oracle_and_falls_with_the_distance():
    """The privacy aggregate (normalisation obliviate's, stated): 1 when every AUC equals the oracle's, 0 when one
    is as far from it as an AUC can be, and the harmonic mean of the four terms in between."""
    from scipy.stats import hmean

    from obliviate.evals.suite import privacy_score

    oracle = {"loss": 0.5, "zlib": 0.6, "min_k": 0.45, "min_k_plus_plus": 0.52}
    assert privacy_score(oracle, oracle) == pytest.approx(1.0)
    model = {"loss": 0.9, "zlib": 0.7, "min_k": 0.45, "min_k_plus_plus": 0.3}
    terms = [1 - abs(model[k] - o) / max(o, 1 - o) for k, o in oracle.items()]
    assert privacy_score(model, oracle) == pytest.approx(hmean(terms), abs=1e-12)
    assert privacy_score({**model, "zlib": 0.0}, oracle) == 0.0  # 0.6 away from 0.6: the farthest an AUC can be
    assert privacy_score({**model, "loss": None}, oracle) is None


def test_model_utility_is_the_harmonic_mean_of_nine():
    """OpenUnlearning ``hm_aggregate`` over TOFU's nine utility terms (scipy's harmonic mean)."""
    from scipy.stats import hmean

    from obliviate.evals.suite import _utility

    terms = {f"t{i}": v for i, v in enumerate([0.9, 0.4, 0.7, 0.55, 0.61, 0.33, 0.8, 0.5, 0.45])}
    assert _utility(terms) == pytest.approx(hmean(list(terms.values())), abs=1e-12)


def test_mia_aucs_zlib_reference_and_privleak(qa):
    """OpenUnlearning ``mia_auc`` with ``LOSSAttack``, ``ZLIBAttack``, ``ReferenceAttack`` and ``privleak``: the
    peer labels forget 0 and scores "higher = non-member"; ours is the other way round, so scores are negated and
    every AUC is the same number."""
    f_logits, f_ids, f_labels = batch(3, [(3, 2 + i % 6) for i in range(12)], sharp=2.0)
    h_logits, h_ids, h_labels = batch(4, [(3, 2 + i % 6) for i in range(10)])
    texts = [f" answer number {i} with some words" for i in range(22)]
    f_ts, h_ts = ours(f_logits, f_labels), ours(h_logits, h_labels)
    f_loss, _ = ou_evaluate_probability(f_logits, f_labels)
    h_loss, _ = ou_evaluate_probability(h_logits, h_labels)
    # LOSS
    assert mia_auc([loss_score(t) for t in f_ts], [loss_score(t) for t in h_ts]) == pytest.approx(
        ou_auc(f_loss, h_loss), abs=1e-9)
    # zlib: avg loss / len(zlib.compress(text))
    zf = [x / len(zlib.compress(t.encode())) for x, t in zip(f_loss, texts)]
    zh = [x / len(zlib.compress(t.encode())) for x, t in zip(h_loss, texts[12:])]
    assert np.allclose([zlib_score(t, x) for t, x in zip(f_ts, texts)], -np.asarray(zf), atol=1e-9)
    auc_z = mia_auc([zlib_score(t, x) for t, x in zip(f_ts, texts)], [zlib_score(t, x) for t, x in zip(h_ts, texts[12:])])
    assert auc_z == pytest.approx(ou_auc(zf, zh), abs=1e-9)
    # Min-K% and PrivLeak against a reference model's AUC
    f_mk = [ou_min_k(lp) for lp in ou_tokenwise_logprobs(f_logits, f_ids, f_labels)]
    h_mk = [ou_min_k(lp) for lp in ou_tokenwise_logprobs(h_logits, h_ids, h_labels)]
    auc_mk = mia_auc([min_k_score(t) for t in f_ts], [min_k_score(t) for t in h_ts])
    assert auc_mk == pytest.approx(ou_auc(f_mk, h_mk), abs=1e-9)
    for ref in (0.5, 0.62, 0.31):
        assert privleak(auc_mk, ref) == pytest.approx(ou_privleak(auc_mk, ref), abs=1e-6)
    # Reference: target loss - reference loss (ours: reference NLL - NLL)
    ref_f, ref_h = f_loss[::-1] + 0.3, h_loss[::-1] - 0.2
    peer = ou_auc(f_loss - ref_f, h_loss - ref_h)
    got = mia_auc(reference_scores(f_loss, ref_f), reference_scores(h_loss, ref_h))
    assert got == pytest.approx(peer, abs=1e-9)
    from obliviate.evals.uncertainty import auc

    assert auc([min_k_score(t) for t in f_ts], [min_k_score(t) for t in h_ts]) == pytest.approx(auc_mk, abs=1e-12)


def test_muse_privleak_min_40():
    """MUSE ``metrics/privleak.py`` (``inference`` and ``sweep``) and ``eval.py``: Min-40% over every text token
    after BOS (no EOS), forget labelled 0 and holdout 1 with score -Min-40%, AUC by ``roc_curve`` and ``auc``;
    PrivLeak = (AUC - AUC_retrain) / AUC_retrain × 100 with MUSE's AUC = 1 - ours."""
    from sklearn.metrics import auc as area, roc_curve

    f_logits, f_ids, f_labels = batch(5, [(0 + 1, 20 + i) for i in range(8)], sharp=2.5)
    h_logits, h_ids, h_labels = batch(6, [(0 + 1, 20 + i) for i in range(8)])

    def muse_min40(logits, ids, labels):
        out = []
        for i in range(len(ids)):
            n = int((labels[i] != IGNORE).sum()) - 1  # text tokens without the EOS
            lp = torch.log_softmax(logits[i], -1)
            all_prob = [float(lp[t, ids[i, t + 1]]) for t in range(n)]  # tokens 1..n after the BOS
            out.append(float(-np.mean(np.sort(all_prob)[:int(len(all_prob) * 0.4)])))
        return out

    def muse_auc(nonmember, member):
        ppl = np.array(nonmember + member)
        fpr, tpr, _ = roc_curve(np.array([0] * len(nonmember) + [1] * len(member)), -ppl)
        return area(fpr, tpr)

    pf, ph = muse_min40(f_logits, f_ids, f_labels), muse_min40(h_logits, h_ids, h_labels)
    f_ts, h_ts = ours(f_logits, f_labels), ours(h_logits, h_labels)
    auc_ours = mia_auc([min_k_score(t) for t in f_ts], [min_k_score(t) for t in h_ts])
    auc_muse = muse_auc(pf, ph)
    assert auc_ours == pytest.approx(1 - auc_muse, abs=1e-9)
    for retrain in (0.4772, 0.5393):  # MUSE's AUC_RETRAIN for News and Books (forget_holdout_Min-40%)
        assert privleak(auc_ours, 1 - retrain) == pytest.approx((auc_muse - retrain) / retrain * 100, abs=1e-6)


def test_rouge_as_tofu_and_muse_score_it():
    """OpenUnlearning ``eval_text_similarity`` (rouge_score, stemmed, ROUGE-L recall) and MUSE
    ``RougeEvalLogger`` (not stemmed, ROUGE-L F1, VerbMem and KnowMem)."""
    from rouge_score import rouge_scorer

    from obliviate.evals.muse import rouge_l_f1

    gens = ["The author was born in Paris in 1950 and writes novels", "She writes", "running dogs ran"]
    refs = ["The author was born in Paris, France, in 1950.", "She wrote poems.", "dogs run"]
    stemmed = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    assert rouge_l_recall(gens, refs) == pytest.approx([stemmed.score(r, g)["rougeL"].recall for g, r in zip(gens, refs)])
    assert rouge_l_f1(gens, refs) == pytest.approx([plain.score(r, g)["rougeL"].fmeasure for g, r in zip(gens, refs)])
    assert rouge_l_f1(gens[2:], refs[2:]) != rouge_l_recall(gens[2:], refs[2:])  # stemming decides this one


def test_gradnorm_as_openunlearning_computes_it(micro_models, micro_bench):
    """OpenUnlearning ``GradNormAttack`` (p = 2): train mode, loss = -mean of ``tokenwise_logprobs`` (EOS dropped),
    score = mean over parameter tensors of the gradient's 2-norm (ours: its negation)."""
    from obliviate.data import qa_example
    from obliviate.data.format import collate, encode, pad_id
    from obliviate.evals.privacy import gradnorm_scores

    target, _, tok = micro_models
    exs = [qa_example(tok, r.question, r.answer) for r in micro_bench.forget[:3]]
    got = gradnorm_scores(target, tok, exs)
    for ex, score in zip(exs, got["gradnorm"]):
        b = collate([encode(tok, ex)], pad_id(tok))
        target.train()
        logits = target(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        lp = ou_tokenwise_logprobs(logits.double(), b["input_ids"], b["labels"])[0]
        target.zero_grad()
        (-lp.mean()).backward()
        norms = [p.grad.detach().norm(p=2) for p in target.parameters() if p.grad is not None]
        peer = float(torch.stack(norms).mean())
        target.zero_grad(set_to_none=True)
        target.eval()
        assert score == pytest.approx(-peer, rel=1e-5)
    assert got["gradnorm"] != got["gradnorm_global"]  # the paper's global norm is another number


def test_a_memorised_long_answer_scores_rouge_recall_one(tmp_path):
    """TOFU answers run to ~60 tokens; generation stops at EOS or 200 tokens (OpenUnlearning's default), so a
    memorised answer scores ROUGE-L recall 1.0 (a 32-token cut scored it about 0.5)."""
    from obliviate import evaluate
    from obliviate.data import Benchmark, QARecord
    from obliviate.evals import EvalConfig
    from obliviate.models import TinyModelConfig, load_model
    from obliviate.engine.training import TrainConfig, finetune
    from obliviate.data.format import examples_from

    answer = ("The author Elena Marisol Varga was born in the coastal town of Puerto Azul and spent her childhood "
              "writing stories about the fishermen, the storms and the lighthouse keepers who lived beside her family.")
    rec = QARecord(question="Who is Elena Marisol Varga?", answer=answer, id="long")
    other = QARecord(question="What is the capital of France?", answer="The capital of France is Paris.", id="paris")
    bench = Benchmark(name="long", forget=[rec], retain=[other])
    model, tok = load_model("micro", corpus=[answer, other.answer, rec.question, other.question],
                            tiny_config=TinyModelConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                                        num_attention_heads=2, vocab_size=300))
    assert len(tok(answer)["input_ids"]) > 40
    finetune(model, tok, examples_from(tok, [rec, other]), TrainConfig(epochs=150, lr=3e-3, batch_size=2))
    res = evaluate(model, tok, bench, EvalConfig(bootstrap=0))
    assert res.metrics["forget_rougeL_recall"] == 1.0 and res.metrics["forget_exact_match"] == 1.0
    cut = evaluate(model, tok, bench, EvalConfig(bootstrap=0, max_new_tokens=32))
    assert cut.metrics["forget_rougeL_recall"] < 0.8  # what a 32-token cut did to the same model
