"""Loss functions against values computed by hand on small tensors."""
import math

import torch

from obliviate.methods.losses import kl_to_ref, mean_token_nll, npo_loss, sequence_nll, token_logprobs


def _toy():
    # B=1, T=3, V=2: logits at positions 0 and 1 predict tokens 1 and 2; the prompt (token 0) is masked.
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, 5.0]]])
    labels = torch.tensor([[-100, 1, 0]])
    return logits, labels


def test_sequence_nll_matches_hand_computation():
    logits, labels = _toy()
    # position 0: uniform -> p(1) = 1/2; position 1: softmax(log 3, 0) -> p(0) = 3/4
    want = -(math.log(0.5) + math.log(0.75))
    assert math.isclose(sequence_nll(logits, labels, "sum").item(), want, rel_tol=1e-6)
    assert math.isclose(sequence_nll(logits, labels, "mean").item(), want / 2, rel_tol=1e-6)
    assert math.isclose(mean_token_nll(logits, labels).item(), want / 2, rel_tol=1e-6)
    logp, mask = token_logprobs(logits, labels)
    assert mask.tolist() == [[True, True]]


def test_masked_tokens_do_not_count():
    logits, labels = _toy()
    only_last = torch.tensor([[-100, -100, 0]])
    assert math.isclose(sequence_nll(logits, only_last).item(), -math.log(0.75), rel_tol=1e-6)


def test_npo_loss_value_and_direction():
    beta = 0.1
    nll, ref = torch.tensor([2.0, 5.0], requires_grad=True), torch.tensor([3.0, 3.0])
    want = -(2 / beta) * sum(math.log(1 / (1 + math.exp(-beta * (a - b)))) for a, b in [(2, 3), (5, 3)]) / 2
    loss = npo_loss(nll, ref, beta)
    assert math.isclose(loss.item(), want, rel_tol=1e-6)
    loss.backward()
    assert (nll.grad < 0).all()  # descending the loss raises the forget NLL: it unlearns
    # at the reference point NPO equals (2/beta)·log 2 and its gradient is GA's, scaled by 1/2 per sample
    at_ref = npo_loss(torch.tensor([3.0]), torch.tensor([3.0]), beta)
    assert math.isclose(at_ref.item(), 2 / beta * math.log(2), rel_tol=1e-6)


def test_kl_to_ref_is_zero_for_identical_and_positive_otherwise():
    logits, labels = _toy()
    assert kl_to_ref(logits, logits.clone(), labels).item() < 1e-7
    other = logits.clone()
    other[0, 0] = torch.tensor([2.0, 0.0])
    p, q = torch.softmax(logits[0, 0], -1), torch.softmax(other[0, 0], -1)
    want = (q * (q.log() - p.log())).sum().item() / 2  # KL(ref || θ) at the first position, mean over 2
    assert math.isclose(kl_to_ref(logits, other, labels).item(), want, rel_tol=1e-5)


def test_simnpo_loss_value_and_direction():
    from obliviate.methods.losses import simnpo_loss

    beta, delta = 4.5, 0.5
    nll = torch.tensor([1.0, 2.0], requires_grad=True)
    want = -(2 / beta) * sum(math.log(1 / (1 + math.exp(-beta * (x - delta)))) for x in (1.0, 2.0)) / 2
    loss = simnpo_loss(nll, beta, delta)
    assert math.isclose(loss.item(), want, rel_tol=1e-6)
    loss.backward()
    assert (nll.grad < 0).all()


def test_dpo_loss_value_prefers_the_winner():
    from obliviate.methods.losses import dpo_loss

    beta = 0.1
    win, lose = torch.tensor([1.0], requires_grad=True), torch.tensor([4.0], requires_grad=True)
    win_ref, lose_ref = torch.tensor([2.0]), torch.tensor([3.0])
    margin = (2.0 - 1.0) - (3.0 - 4.0)  # log-ratio of the winner minus that of the loser
    want = -(2 / beta) * math.log(1 / (1 + math.exp(-beta * margin)))
    loss = dpo_loss(win, win_ref, lose, lose_ref, beta)
    assert math.isclose(loss.item(), want, rel_tol=1e-6)
    loss.backward()
    assert win.grad.item() > 0 and lose.grad.item() < 0  # lower the winner's NLL, raise the loser's


def test_flat_loss_kl_and_tv():
    from obliviate.methods.losses import flat_loss, mean_token_prob

    logits, labels = _toy()
    assert math.isclose(mean_token_prob(logits, labels).item(), (0.5 + 0.75) / 2, rel_tol=1e-6)
    pe, pf = torch.tensor([0.8, 0.6]), torch.tensor([0.3, 0.1])
    kl = ((-0.8 + math.exp(0.3 - 1)) + (-0.6 + math.exp(0.1 - 1))) / 2
    tv = ((-math.tanh(0.8) + math.tanh(0.3)) + (-math.tanh(0.6) + math.tanh(0.1))) / 4
    assert math.isclose(flat_loss(pe, pf, "kl").item(), kl, rel_tol=1e-6)
    assert math.isclose(flat_loss(pe, pf, "tv").item(), tv, rel_tol=1e-6)
