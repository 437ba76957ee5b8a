"""Retrain-free editing methods (ssd, rocr, needle) and the intrinsic concept-vector metrics, on `micro`."""
import pytest
import torch

from obliviate import ObliviateError, UnlearnData, unlearn
from obliviate.methods.common import reference_nll


def _nll(model, tok, examples):
    return float(reference_nll(model, tok, examples, 256, reduction="mean").mean())


@pytest.fixture(scope="module")
def data(micro_models, micro_bench):
    _, _, tok = micro_models
    return UnlearnData.from_benchmark(micro_bench, tok)


def _changed(before, after):
    return {k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])}


def test_ssd_dampens_only_forget_specific_parameters(micro_models, data):
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "ssd", {"alpha": 5.0})
    assert 0 < info["dampened_share"] < 0.5 and 0 < info["mean_beta"] < 1
    shrunk, before = 0, dict(target.named_parameters())
    for k, v in new.named_parameters():  # each tensor once (tied embeddings appear twice in a state dict)
        v, old = v.detach(), before[k].detach()
        diff = v != old
        # every changed entry shrinks towards 0 by a factor in (0, 1): same sign, smaller magnitude
        assert torch.all(v[diff].abs() < old[diff].abs()) and torch.all(v[diff] * old[diff] >= 0), k
        shrunk += int(diff.sum())
    assert shrunk == info["dampened_parameters"]
    f0, f1 = _nll(target, tok, data.forget), _nll(new, tok, data.forget)
    r0, r1 = _nll(target, tok, data.retain), _nll(new, tok, data.retain)
    assert f1 - f0 > r1 - r0 > -0.01, (f0, f1, r0, r1)


def test_ssd_at_huge_alpha_changes_nothing(micro_models, data):
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "ssd", {"alpha": 1e9})
    assert info["dampened_parameters"] == 0 and not _changed(target, new)


@pytest.mark.parametrize("positions", ["last", "all"])
def test_rocr_is_a_low_rank_edit_of_one_mlp_that_meets_its_constraints(micro_models, data, positions):
    """W' k* = v* for every constraint (the closed form's promise), rank(ΔW) <= constraints, one tensor changes,
    and the forget NLL rises more than the retain NLL."""
    from obliviate.methods.editing.common import read_mlp
    from obliviate.models.anatomy import down_projs
    from obliviate.methods.editing.rocr import ROCRConfig, _mentions, _renamed

    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "rocr", {"positions": positions})
    assert _changed(target, new) == {info["edited_parameter"]}
    layer = info["layer"]
    assert info["causal_trace"][layer] == max(info["causal_trace"])
    d_old, d_new = down_projs(target, "t")[layer], down_projs(new, "t")[layer]
    delta = (d_new.weight - d_old.weight).double()
    assert torch.linalg.matrix_rank(delta, rtol=1e-6) <= len(info["constraints"])
    assert (len(info["constraints"]) > 2 * len(info["replacements"])) == (positions == "all")
    cfg = ROCRConfig()
    for g in info["constraints"]:
        s, other, j = g["subject"], info["replacements"][g["subject"]], g["offset_from_last"]
        ms = [m for m in _mentions(tok, data, s, cfg) if m.word == g["word"] and j < len(m.positions)]
        renamed = [_renamed(tok, data, m, s, other, 256) for m in ms]
        k, _ = read_mlp(target, d_old, [(m.input_ids, m.positions[-1 - j]) for m in ms])
        _, v = read_mlp(target, d_old, [(ids, pos[max(len(pos) - 1 - j, 0)]) for ids, pos in renamed])
        out = d_new.weight.double() @ k.mean(0).double()
        assert torch.allclose(out, v.mean(0).double(), atol=1e-3 * float(v.mean(0).norm()) + 1e-5)
    f0, f1 = _nll(target, tok, data.forget), _nll(new, tok, data.forget)
    r0, r1 = _nll(target, tok, data.retain), _nll(new, tok, data.retain)
    assert f1 - f0 > 2 * (r1 - r0) and f1 > f0, (f0, f1, r0, r1)


def test_rocr_errors_name_the_missing_piece(micro_models, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="rocr: the forget data names no subjects; give --set subject=NAME"):
        unlearn(target, tok, UnlearnData(forget=data.forget, retain=data.retain), "rocr", {})
    with pytest.raises(ObliviateError, match="rocr: no forget example mentions 'Nobody Here'"):
        unlearn(target, tok, data, "rocr", {"subject": "Nobody Here", "replacement": "Someone Else"})
    with pytest.raises(ObliviateError, match=r"rocr: layer must be in 0\.\.1, got 7"):
        unlearn(target, tok, data, "rocr", {"layer": 7})


def test_needle_trains_only_the_located_vectors(micro_models, data):
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "needle", {"lr": 0.05})
    located = {(r["layer"], r["column"]) for r in info["located"]}
    assert len(located) == len(set(data.subjects["forget"]))  # one concept vector per subject by default
    for name in _changed(target, new):
        assert name in info["updated_parameters"], name
        layer = int(name.split("layers.")[1].split(".")[0])
        diff = (new.state_dict()[name] != target.state_dict()[name]).any(0)
        assert {(layer, int(c)) for c in diff.nonzero().flatten()} <= located
    f0, f1 = _nll(target, tok, data.forget), _nll(new, tok, data.forget)
    r0, r1 = _nll(target, tok, data.retain), _nll(new, tok, data.retain)
    assert f1 - f0 > r1 - r0 and f1 > f0, (f0, f1, r0, r1)


def test_intrinsic_metrics_see_needle_but_not_an_untouched_model(micro_models, data):
    from obliviate.methods.editing.intrinsic import concept_vectors, intrinsic

    target, oracle, tok = micro_models
    vectors = concept_vectors(target, tok, data)
    same = intrinsic(target, target, tok, vectors)["model"]["metrics"]
    assert same["concept_cosine"] == pytest.approx(1.0) and same["concept_jaccard"] == 1.0
    assert same["concept_delta_norm"] == 0.0
    new, _ = unlearn(target, tok, data, "needle", {"lr": 0.05})
    res = intrinsic(new, target, tok, vectors, oracle=oracle)
    moved = res["model"]
    assert moved["metrics"]["concept_cosine"] < 0.9 and moved["metrics"]["concept_relative_delta"] > 0.1
    lo, hi = moved["ci"]["concept_cosine"]
    assert lo <= moved["metrics"]["concept_cosine"] <= hi
    assert "metrics" in res["oracle"]


def test_editing_methods_refuse_moe_models(tmp_path):
    from obliviate import load_benchmark, load_model

    bench = load_benchmark("micro")
    model, tok = load_model("micro-moe")
    d = UnlearnData.from_benchmark(bench, tok)
    for name in ("rocr", "needle"):
        with pytest.raises(ObliviateError, match="has no dense down_proj"):
            unlearn(model, tok, d, name, {})
