"""CodeUnlearn: the codebook and SAE layers, the bottlenecked model's save/load, and deletion as unlearning."""
import copy

import pytest
import torch
import torch.nn.functional as F

from obliviate import ObliviateError, UnlearnData, load_model, save_model, unlearn
from obliviate.evals.memorization import exact_match
import obliviate.methods.bottleneck.codebook as cb
import obliviate.methods.bottleneck.sites as sites
from obliviate.methods.bottleneck.config import BottleneckConfig
from obliviate.methods.bottleneck.codeunlearn import deletions, undo

SAE = BottleneckConfig(kind="sae", site="layer.1", codes=256, k=8)


def test_codebook_keeps_the_top_k_codes_and_passes_the_gradient_straight_through():
    torch.manual_seed(0)
    layer = cb.Codebook(dim=16, codes=32, k=4)
    x = torch.randn(3, 5, 16, requires_grad=True)
    y = layer(x)
    sims = F.normalize(x.detach(), dim=-1) @ F.normalize(layer.codes[0].detach(), dim=-1).T  # (3, 5, 32)
    top = sims.topk(4, dim=-1).indices
    assert torch.allclose(y, layer.codes[0][top].mean(-2), atol=1e-6)  # the mean of the k most similar codes
    w = torch.randn_like(y)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, w)  # dy/dx = I
    used = torch.zeros(32, dtype=torch.bool)
    used[top.reshape(-1)] = True
    grads = layer.codes.grad[0].abs().sum(-1)
    assert (grads[used] > 0).all() and (grads[~used] == 0).all()  # only the chosen codes learn from y


@pytest.mark.parametrize("kind", ["codebook", "sae"])
def test_the_same_batch_gives_the_same_gradient_bit_for_bit(kind):
    """Same seed, same machine, same weights: a code chosen by thousands of tokens sums their gradients in a fixed
    order (an accumulating index_put did not, and two trainings of one codebook recipe differed)."""
    torch.manual_seed(0)
    layer = cb.Codebook(64, 512, 8) if kind == "codebook" else cb.TopKSAE(64, 512, 8)
    x = torch.randn(32, 128, 64)
    grads = []
    for _ in range(3):
        layer.zero_grad()
        layer(x).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    assert all(torch.equal(a, b) for g in grads[1:] for a, b in zip(grads[0], g))


@pytest.mark.parametrize("kind", ["codebook", "sae"])
def test_a_deleted_code_is_never_chosen_and_the_next_best_fills_its_slot(kind):
    torch.manual_seed(0)
    layer = cb.Codebook(16, 32, 4) if kind == "codebook" else cb.TopKSAE(16, 32, 4)
    x = torch.randn(64, 16)
    with torch.no_grad():
        scores = layer.scores(x.reshape(64, 1, 16))[:, 0]  # (64, 32)
    first = scores.argmax(-1)
    victim = int(first.mode().values)
    layer.deleted[0, victim] = True
    layer.record = []
    layer(x)
    chosen = layer.record[0][:, 0]  # (64, k)
    assert not (chosen == victim).any()
    masked = scores.clone()
    masked[:, victim] = float("-inf")
    expected = masked.topk(4, -1).indices
    if kind == "codebook":
        assert torch.equal(chosen.sort(-1).values, expected.sort(-1).values)
    else:  # inactive latents (ReLU at 0) are recorded as -1
        live = chosen >= 0
        assert torch.equal(torch.where(live, chosen, -1).sort(-1).values,
                           torch.where(live, expected.sort(-1).values, -1).sort(-1).values) or live.all()


@pytest.mark.parametrize("kind", ["codebook", "sae"])
def test_a_zero_deleted_code_may_be_chosen_but_adds_nothing(kind):
    """deletion=zero (codebook-features' keep_k_codes=False): the top k are those of the intact layer, and the
    deleted code's slot stays empty instead of going to the next best code."""
    torch.manual_seed(0)
    layer = cb.Codebook(16, 32, 4) if kind == "codebook" else cb.TopKSAE(16, 32, 4)
    x = torch.randn(64, 16)
    with torch.no_grad():
        intact = layer(x)
        scores = layer.scores(x.reshape(64, 1, 16))[:, 0]
    top = scores.topk(4, -1).indices  # (64, 4)
    victim = int(top[:, 0].mode().values)
    layer.deleted[0, victim] = layer.zeroed[0, victim] = True
    with torch.no_grad():
        y = layer(x)
    hit = (top == victim).any(-1)
    assert hit.any() and torch.equal(y[~hit], intact[~hit])  # tokens that did not choose it: unchanged
    if kind == "codebook":
        codes = layer.codes[0].detach()
        expected = (codes[top] * (top != victim).unsqueeze(-1)).sum(-2) / 4  # still divided by k
    else:
        vals = F.relu(scores.gather(-1, top)) * (top != victim)
        expected = (vals.unsqueeze(-1) * layer.W_dec[0].detach()[top]).sum(-2) + layer.b_pre[0].detach()
    assert torch.allclose(y[hit], expected[hit], atol=1e-5)


def test_per_head_codebook_acts_on_each_head_separately():
    torch.manual_seed(0)
    layer = cb.Codebook(dim=16, codes=8, k=2, groups=4)
    x = torch.randn(2, 3, 16)
    y = layer(x)
    x2 = x.clone()
    x2[..., :4] = torch.randn(2, 3, 4)  # change head 0 only
    y2 = layer(x2)
    assert torch.equal(y[..., 4:], y2[..., 4:])


@pytest.fixture(scope="module")
def sae_pair(micro_bench, tmp_path_factory):
    from obliviate import train_pair

    return train_pair("micro", micro_bench, cache=tmp_path_factory.mktemp("cb"), bottleneck=SAE)


@pytest.fixture(scope="module")
def sae_model(sae_pair):
    return load_model(sae_pair["target"])


@pytest.fixture(scope="module")
def request_data(sae_model, micro_bench):
    from obliviate.data import examples_from

    _, tok = sae_model
    d = UnlearnData.from_benchmark(micro_bench, tok)
    d.holdout = examples_from(tok, micro_bench.holdout)
    d.subjects["holdout"] = [r.subject for r in micro_bench.holdout]
    return d


def _forget_em(model, tok, recs):
    from obliviate.data.format import format_prompt
    from obliviate.evals.scoring import Scorer

    gens = Scorer(model, tok).generate([format_prompt(tok, r.question) for r in recs], 24)
    return sum(exact_match(g, r.answer, r.value) for g, r in zip(gens, recs)) / len(recs)


def test_from_start_trains_the_model_with_its_bottleneck_from_the_first_step(micro_bench, tmp_path):
    import json
    from dataclasses import replace

    from obliviate import train_pair

    assert SAE.joint_epochs() == 10 and replace(SAE, from_start=True).joint_epochs() == 60  # the defaults
    path = train_pair("micro", micro_bench, cache=tmp_path, roles=("target",),
                      bottleneck=replace(SAE, from_start=True, epochs=8))["target"]
    assert [p.name.split("-")[0] for p in (tmp_path / "models").iterdir()] == ["target"]  # no plain model first
    meta = json.loads((path / "obliviate.json").read_text())
    assert meta["bottleneck"]["from_start"] and meta["bottleneck"]["epochs"] == 8
    assert meta["loss_curve"][-1] < 0.5 * meta["loss_curve"][0]  # it learned through the bottleneck
    model, _ = load_model(path)
    assert set(sites.bottlenecks(model)) == {"layer.1"}


def test_bottlenecked_model_saves_and_loads_with_its_deletions(sae_model, request_data, tmp_path):
    model, tok = sae_model
    new, info = unlearn(model, tok, request_data, "codeunlearn", {"n": 5})
    out = save_model(new, tok, tmp_path / "u")
    again, _ = load_model(out)
    ids = tok(["Who is the test?"], return_tensors="pt")
    assert torch.equal(again(**ids).logits, new(**ids).logits)
    assert [d["codes"] for d in deletions(again)] == [[r["code"] for r in info["deleted"]]]
    assert sum(int(layer.deleted.sum()) for layer in sites.bottlenecks(again).values()) == info["n"] > 0


def test_codeunlearn_deletes_codes_only_and_forgets_more_than_it_retains(sae_model, request_data, micro_bench):
    model, tok = sae_model
    before = copy.deepcopy(model.state_dict())
    new, info = unlearn(model, tok, request_data, "codeunlearn", {"n": 12})
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"codeunlearn modified the input model ({k})"
    changed = [k for k, v in new.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(k.endswith(".deleted") for k in changed)  # no weight moved: deletion only
    assert info["n"] == 12 and len(info["deleted"]) == 12 and info["seconds"] < 30
    assert all(r["precision"] >= 0.7 for r in info["deleted"])
    f0, f1 = _forget_em(model, tok, micro_bench.forget), _forget_em(new, tok, micro_bench.forget)
    r0, r1 = _forget_em(model, tok, micro_bench.retain), _forget_em(new, tok, micro_bench.retain)
    assert f0 - f1 > 2 * max(0.0, r0 - r1) and f0 - f1 >= 0.3, (f0, f1, r0, r1)


def test_random_codes_of_matched_frequency_barely_move_forget_exact_match(sae_model, request_data, micro_bench):
    model, tok = sae_model
    n = 12
    located, _ = unlearn(model, tok, request_data, "codeunlearn", {"n": n})
    control, info = unlearn(model, tok, request_data, "codeunlearn", {"n": n, "control": True})
    assert not set(deletions(located)[0]["codes"]) & {r["code"] for r in info["deleted"]}
    f0 = _forget_em(model, tok, micro_bench.forget)
    assert abs(f0 - _forget_em(control, tok, micro_bench.forget)) < 0.05
    assert f0 - _forget_em(located, tok, micro_bench.forget) >= 0.3


def test_requests_compose_and_one_can_be_undone(sae_model, request_data):
    model, tok = sae_model
    half = len(request_data.forget) // 2
    first = UnlearnData(forget=request_data.forget[:half], retain=request_data.retain)
    second = UnlearnData(forget=request_data.forget[half:], retain=request_data.retain)
    m1, i1 = unlearn(model, tok, first, "codeunlearn", {"n": 4})
    m2, i2 = unlearn(m1, tok, second, "codeunlearn", {"n": 4})
    c1, c2 = [{r["code"] for r in i["deleted"]} for i in (i1, i2)]
    assert not c1 & c2 and [d["request"] for d in deletions(m2)] == [1, 2]
    ids = {"input_ids": torch.tensor([[1, 5, 9, 13, 17, 21]])}
    undo(m2, 2)
    assert [d["request"] for d in deletions(m2)] == [1]
    assert torch.equal(m2(**ids).logits, m1(**ids).logits)  # exactly the state after the first request
    with pytest.raises(ObliviateError, match="no deletion request 7"):
        undo(m2, 7)


def test_n_by_the_holdout_rule_is_recorded(sae_model, request_data):
    model, tok = sae_model
    _, info = unlearn(model, tok, request_data, "codeunlearn")
    st = info["stop"]
    assert st["chosen_step"] == info["n"] and st["grid"][0] == 0 and st["curve"]
    with pytest.raises(ObliviateError, match="needs calibration facts"):
        unlearn(model, tok, UnlearnData(forget=request_data.forget, retain=request_data.retain), "codeunlearn")


def test_codeunlearn_on_a_model_without_bottleneck_says_how_to_build_one(micro_models, request_data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="obliviate bottleneck"):
        unlearn(target, tok, request_data, "codeunlearn", {"n": 3})


def test_bottleneck_options_are_checked(tmp_path):
    from obliviate.methods.bottleneck.build import build

    with pytest.raises(ObliviateError, match="site"):
        BottleneckConfig(site="layer.x.mlp")
    with pytest.raises(ObliviateError, match="k=8 must be below codes=4"):
        BottleneckConfig(codes=4, k=8)
    with pytest.raises(ObliviateError, match="from_start .*'smollm2-135m' is pretrained"):
        build("smollm2-135m", tmp_path / "out", BottleneckConfig(from_start=True))
    assert not (tmp_path / "out").exists()


def test_cli_builds_unlearns_lists_and_undoes(tmp_path, capsys, micro_pair):
    from obliviate.cli import main

    cache = str(micro_pair["cache"])
    out = tmp_path / "cb"
    assert main(["--cache", cache, "bottleneck", "--model", "micro", "--benchmark", "micro", "--kind", "sae",
                 "--site", "layer.1", "--codes", "256", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"target", "oracle", "cost.json"}
    text = capsys.readouterr().out
    assert "retain_exact_match" in text
    u = tmp_path / "u"
    assert main(["--cache", cache, "unlearn", "--model", str(out / "target"), "--method", "codeunlearn",
                 "--set", "n=3", "--out", str(u)]) == 0
    capsys.readouterr()
    assert main(["codes", "--model", str(u)]) == 0
    assert "request 1: 3 codes deleted" in capsys.readouterr().out
    assert main(["codes", "--model", str(u), "--undo", "1"]) == 2  # needs --out: the input is never modified
    assert main(["codes", "--model", str(u), "--undo", "1", "--out", str(tmp_path / "v")]) == 0
    restored, _ = load_model(tmp_path / "v")
    assert not deletions(restored) and all(not layer.deleted.any() for layer in sites.bottlenecks(restored).values())


def _forget_nll(model, tok, examples) -> float:
    """Mean next-token loss on the examples' answer tokens (the loss-based forget score, negated)."""
    from obliviate.data.format import IGNORE, encoded_batches

    total, count = 0.0, 0
    with torch.no_grad():
        for b in encoded_batches(tok, examples, 64):
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1]
            labels = b["labels"][:, 1:]
            total += float(F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="sum"))
            count += int((labels != IGNORE).sum())
    return total / count


def test_zeroing_the_located_codes_raises_the_forget_loss_more_than_zeroing_random_ones(sae_model, request_data,
                                                                                         tmp_path):
    model, tok = sae_model
    base = _forget_nll(model, tok, request_data.forget)
    located, info = unlearn(model, tok, request_data, "codeunlearn", {"n": 12, "deletion": "zero"})
    control, _ = unlearn(model, tok, request_data, "codeunlearn", {"n": 12, "deletion": "zero", "control": True})
    assert info["deletion"] == "zero" and deletions(located)[0]["deletion"] == "zero"
    rise = _forget_nll(located, tok, request_data.forget) - base
    rise_random = _forget_nll(control, tok, request_data.forget) - base
    assert rise > 0.3 and rise > 5 * max(rise_random, 0.01), (rise, rise_random)
    # the zeroed set is not among the weights: it comes back from the recorded request
    again, _ = load_model(save_model(located, tok, tmp_path / "z"))
    ids = tok(["Who is the test?"], return_tensors="pt")
    assert torch.equal(again(**ids).logits, located(**ids).logits)
    assert sum(int(layer.zeroed.sum()) for layer in sites.bottlenecks(again).values()) == 12
    undo(again, 1)
    assert not any(bool(layer.zeroed.any()) for layer in sites.bottlenecks(again).values())


def test_sae_with_error_term_is_the_identity_until_a_latent_is_deleted():
    torch.manual_seed(0)
    layer = cb.TopKSAE(16, 32, 4, error_term=True, outlier_norm=3.0)
    acts = torch.randn(256, 16)
    layer.seed_codes(acts, kmeans=False, seed=0)
    assert float(layer.max_norm) == pytest.approx(3.0 * float(acts.norm(dim=-1).median()))
    x = torch.randn(2, 40, 16)
    x[0, 0] *= 100  # a massive activation (an attention sink)
    assert torch.equal(layer(x), x)  # nothing deleted: exactly the input
    layer.record = []
    layer(x)
    victim = int(layer.record[0][1, :, 0].reshape(-1).mode().values)  # the latent most often chosen
    layer.deleted[0, victim] = True
    layer.record = None
    y = layer(x)
    xg = x.reshape(-1, 1, 16)
    fired = (layer.scores(xg).detach().topk(4, -1).indices == victim).any(-1).reshape(2, 40)
    changed = (y != x).any(-1)
    assert changed[1].any()
    assert torch.equal(changed & ~fired, torch.zeros_like(changed))  # only where the deleted latent was chosen
    assert not changed[0, 0]  # the outlier passes through untouched
    # what the deletion takes out: the deleted latent's contribution, replaced by the next latent's
    pre = layer.scores(xg).detach()
    full = pre.topk(4, -1).indices
    masked = pre.masked_fill(layer.deleted, float("-inf")).topk(4, -1).indices

    def dec(idx):
        return (F.relu(pre.gather(-1, idx)).unsqueeze(-1) * layer.W_dec[0][idx]).sum(-2)

    expected = (xg + (dec(masked) - dec(full)) * changed.reshape(-1, 1, 1)).reshape(x.shape)
    assert torch.allclose(y, expected, atol=1e-5)


def test_error_term_sae_fits_a_frozen_model_and_reloads(micro_models, micro_bench, tmp_path):
    from obliviate.methods.bottleneck.build import fit_pretrained
    from obliviate.data import examples_from

    target, _, tok = micro_models
    model = copy.deepcopy(target)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = BottleneckConfig(kind="sae", site="layer.1", codes=128, k=4, error_term=True, steps=150, batch_size=4)
    info = fit_pretrained(model, tok, examples_from(tok, micro_bench.training_qa(True)), cfg)
    assert info["loss_curve"][0] > 2 * info["final_loss"]  # the reconstruction error fell
    after = {k.replace(".inner", ""): v for k, v in model.state_dict().items()}  # the wrapped block's names
    assert all(torch.equal(after[k], v) for k, v in before.items())  # base weights untouched
    ids = tok(["Who is the test?"], return_tensors="pt")
    assert torch.equal(model(**ids).logits, target(**ids).logits)  # nothing deleted: the base model's output
    sites.set_deleted(model, list(range(64)), True)
    deleted_logits = model(**ids).logits
    assert not torch.equal(deleted_logits, target(**ids).logits)
    again, _ = load_model(save_model(model, tok, tmp_path / "m"))
    layer = sites.bottlenecks(again)["layer.1"]
    assert layer.error_term and float(layer.max_norm) == float(sites.bottlenecks(model)["layer.1"].max_norm)
    assert torch.equal(again(**ids).logits, deleted_logits)


def test_hard_sae_lets_outliers_through_and_replaces_every_other_token():
    torch.manual_seed(0)
    layer = cb.TopKSAE(16, 32, 4, outlier_norm=3.0, pass_outliers=True)
    layer.seed_codes(torch.randn(256, 16), kmeans=False, seed=0)
    x = torch.randn(2, 40, 16)
    x[0, 0] *= 100  # a massive activation (an attention sink)
    y = layer(x)
    assert torch.equal(y[0, 0], x[0, 0])  # the outlier passes through untouched
    xg = x.reshape(-1, 1, 16)
    rec = layer.reconstruct(xg).reshape(x.shape)  # the TopK reconstruction, b_pre included
    assert torch.allclose(y.reshape(-1, 16)[1:], rec.reshape(-1, 16)[1:])  # every other token: the reconstruction
    assert not torch.allclose(y[1], x[1])
    plain = cb.TopKSAE(16, 32, 4)  # from scratch: no outlier pass-through, and no max_norm in its state dict
    assert "max_norm" not in plain.state_dict()


def test_hard_sae_on_a_frozen_model_learns_to_match_its_outputs(micro_models, micro_bench, tmp_path):
    from obliviate.methods.bottleneck.build import fit_pretrained
    from obliviate.data import examples_from

    target, _, tok = micro_models
    examples = examples_from(tok, micro_bench.training_qa(True))
    ids = tok([e.prompt + e.target for e in examples[:16]], return_tensors="pt", padding=True)

    def kl_to_base(m):
        with torch.no_grad():
            base = F.log_softmax(target(**ids).logits, -1)[ids["attention_mask"].bool()]
            got = F.log_softmax(m(**ids).logits, -1)[ids["attention_mask"].bool()]
        return float(F.kl_div(got, base, log_target=True, reduction="batchmean"))

    fits = {}
    for kl_steps in (0, 40):  # the same number of steps in all: 140 on reconstruction, or 100 then 40 on the KL
        model = copy.deepcopy(target)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        cfg = BottleneckConfig(kind="sae", site="layer.1", codes=128, k=8, steps=140 - kl_steps, kl_steps=kl_steps,
                               batch_size=4)
        info = fit_pretrained(model, tok, examples, cfg)
        assert info["loss_curve"][0] > 2 * info["final_loss"]  # reconstruction first
        after = {k.replace(".inner", ""): v for k, v in model.state_dict().items()}
        assert all(torch.equal(after[k], v) for k, v in before.items())  # base weights untouched
        fits[kl_steps] = model, kl_to_base(model)
    model, kl = fits[40]
    assert kl < 0.8 * fits[0][1], (kl, fits[0][1])  # the KL steps matched the base's outputs better
    layer = sites.bottlenecks(model)["layer.1"]
    assert layer.pass_outliers and not layer.error_term  # a pretrained model's default
    assert kl > 0  # a hard bottleneck: not the base exactly
    again, _ = load_model(save_model(model, tok, tmp_path / "m"))
    assert sites.spec_of(again)["config"]["pass_outliers"] is True
    assert torch.equal(again(**ids).logits, model(**ids).logits)


def test_error_term_needs_an_sae_trained_on_reconstruction():
    with pytest.raises(ObliviateError, match="error_term.*kind=sae"):
        BottleneckConfig(kind="codebook", error_term=True)
    with pytest.raises(ObliviateError, match="mse_weight must be > 0"):
        BottleneckConfig(error_term=True, mse_weight=0)
    with pytest.raises(ObliviateError, match="kl_steps.*error_term=false"):
        BottleneckConfig(error_term=True, kl_steps=10)
    with pytest.raises(ObliviateError, match="pass_outliers.*kind=sae"):
        BottleneckConfig(kind="codebook", pass_outliers=True)


def test_cli_fits_an_error_term_sae_to_a_frozen_model_at_no_cost(tmp_path, micro_pair):
    import json

    from obliviate.cli import main

    out = tmp_path / "cb"
    assert main(["bottleneck", "--model", str(micro_pair["target"]), "--benchmark", "micro", "--site", "layer.1",
                 "--codes", "64", "--k", "4", "--set", "error_term=true", "--set", "steps=20", "--set",
                 "general_texts=4", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    report = json.loads((out / "cost.json").read_text())
    assert report["with_bottleneck"] == report["without_bottleneck"]  # the base model exactly, before any deletion
    assert report["warnings"] == []
    model, _ = load_model(out)
    assert sites.bottlenecks(model)["layer.1"].error_term
    # fitted once: the same request again comes from the cache (same training record, same weights)
    cached = list((tmp_path / "cache" / "bottlenecks").iterdir())
    assert len(cached) == 1
    stamp = (cached[0] / "obliviate.json").stat().st_mtime_ns
    assert main(["bottleneck", "--model", str(micro_pair["target"]), "--benchmark", "micro", "--site", "layer.1",
                 "--codes", "64", "--k", "4", "--set", "error_term=true", "--set", "steps=20", "--set",
                 "general_texts=4", "--out", str(tmp_path / "again"), "--cache", str(tmp_path / "cache")]) == 0
    assert (cached[0] / "obliviate.json").stat().st_mtime_ns == stamp
    again = json.loads((tmp_path / "again" / "cost.json").read_text())
    assert again["train_seconds"] == report["train_seconds"]
    weights = load_model(tmp_path / "again")[0].state_dict()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_cli_warns_when_the_bottleneck_costs_the_model_what_it_knew(tmp_path, capsys, micro_pair):
    import json

    from obliviate.cli import main

    out = tmp_path / "cb"  # a hard SAE barely trained (one step) replaces layer 1's output
    assert main(["bottleneck", "--model", str(micro_pair["target"]), "--benchmark", "micro", "--site", "layer.1",
                 "--codes", "64", "--k", "4", "--set", "steps=1", "--set", "general_texts=4", "--out", str(out),
                 "--cache", str(tmp_path / "cache")]) == 0
    report = json.loads((out / "cost.json").read_text())
    w, wo = report["with_bottleneck"], report["without_bottleneck"]
    assert w["retain_exact_match"] < wo["retain_exact_match"] / 2
    assert any(x.startswith("retain_exact_match ") for x in report["warnings"])
    assert "warning: the bottleneck damaged the model before any unlearning (" in capsys.readouterr().err
