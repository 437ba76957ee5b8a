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


# ---- the peers' remaining methods (issue 12) ----
from obliviate.methods.losses import (ce_u_loss, dual_ascent, logit_margin_loss, undial_loss, weighted_ascent_loss)


def _soft(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_undial_loss_targets_the_lowered_true_token_and_masks_the_prompt():
    logits, labels = _toy()
    ref = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])
    beta = 3.0
    # position 0 predicts label 1: teacher (2, 0) -> (2, -3); position 1 predicts label 0: teacher (0, 1) -> (-3, 1)
    want = 0.0
    for t, (teach, true) in enumerate([([2.0, 0.0], 1), ([0.0, 1.0], 0)]):
        adj = [v - beta * (i == true) for i, v in enumerate(teach)]
        q, logp = _soft(adj), [math.log(p) for p in _soft(logits[0, t].tolist())]
        want += -sum(a * b for a, b in zip(q, logp))
    assert math.isclose(undial_loss(logits, ref, labels, beta).item(), want / 2, rel_tol=1e-6)
    # a prompt (-100) position neither counts nor gets the offset: masking position 1 leaves position 0's term
    only_first = torch.tensor([[-100, 1, -100]])
    q0 = _soft([2.0, -3.0])
    want0 = -sum(a * math.log(b) for a, b in zip(q0, _soft([0.0, 0.0])))
    assert math.isclose(undial_loss(logits, ref, only_first, beta).item(), want0, rel_tol=1e-6)


def test_undial_gradient_moves_probability_off_the_true_token():
    logits = torch.zeros(1, 2, 3, requires_grad=True)
    labels = torch.tensor([[-100, 2]])
    undial_loss(logits, torch.zeros(1, 2, 3), labels, beta=10.0).backward()
    assert logits.grad[0, 0, 2] > 0 and (logits.grad[0, 0, :2] < 0).all()  # descending lowers z_true
    assert logits.grad[0, 1].abs().sum() == 0  # the last position predicts nothing


def test_wga_and_satimp_weights():
    logits, labels = _toy()  # p = 1/2 and 3/4 at the two answer tokens
    p = [0.5, 0.75]
    nll = [-math.log(x) for x in p]
    wga = -sum(x * n for x, n in zip(p, nll)) / 2  # β = 1: weight p
    assert math.isclose(weighted_ascent_loss(logits, labels, 1.0).item(), wga, rel_tol=1e-6)
    sat = -sum(x ** 5 * (1 - x) * n for x, n in zip(p, nll)) / 2  # β1 = 5, β2 = 1
    assert math.isclose(weighted_ascent_loss(logits, labels, 5.0, 1.0).item(), sat, rel_tol=1e-6)
    # β = 0 is plain gradient ascent
    assert math.isclose(weighted_ascent_loss(logits, labels, 0.0).item(), -mean_token_nll(logits, labels).item(),
                        rel_tol=1e-6)


def test_weighted_ascent_weight_is_not_differentiated():
    logits = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[-100, 0]])
    weighted_ascent_loss(logits, labels, 1.0).backward()
    p = _soft([0.0, 0.0])[0]
    # d/dz0 of -(sg(p)·(-log p)) = sg(p)·(d log p/dz0) = p·(1 - p)
    assert math.isclose(logits.grad[0, 0, 0].item(), p * (1 - p), rel_tol=1e-5)


def test_ce_u_gradient_is_p_minus_q():
    z = torch.tensor([[[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[-100, 1]])  # one answer token, predicted at position 0
    loss = ce_u_loss(z, labels, skip_first=0)
    loss.backward()
    p = torch.softmax(z[0, 0].detach(), -1)
    q = torch.softmax(torch.tensor([1.0, float("-inf"), 0.5]), -1)
    assert torch.allclose(z.grad[0, 0], p - q, atol=1e-6)
    want = -(q * torch.log_softmax(z[0, 0].detach(), -1)).nan_to_num(0.0).sum()
    assert math.isclose(loss.item(), want.item(), rel_tol=1e-6)


def test_ce_u_skips_the_first_answer_token():
    z = torch.randn(1, 4, 5)
    labels = torch.tensor([[-100, 1, 2, 3]])
    full = ce_u_loss(z, torch.tensor([[-100, -100, 2, 3]]), skip_first=0)
    assert math.isclose(ce_u_loss(z, labels, skip_first=1).item(), full.item(), rel_tol=1e-6)


def test_logit_margin_loss_is_zero_for_uniform_and_squared_margin_otherwise():
    logits, labels = _toy()
    # position 0: (0, 0) margin 0; position 1: (log 3, 0): max - mean = log 3 / 2
    assert math.isclose(logit_margin_loss(logits, labels).item(), (math.log(3) / 2) ** 2 / 2, rel_tol=1e-6)
    assert logit_margin_loss(torch.zeros(2, 3, 4), torch.tensor([[-100, 1, 1], [-100, -100, 2]])).item() == 0


def test_dual_ascent_raises_the_multiplier_on_violation_and_floors_it_at_zero():
    assert dual_ascent(1.0, 0.2, 5.0) == 2.0  # retain loss above ε: weight it more
    assert dual_ascent(1.0, -0.1, 5.0) == 0.5  # satisfied: relax
    assert dual_ascent(0.2, -1.0, 5.0) == 0.0  # never negative
