"""S3T exact unlearning on `micro`: a deletion cuts orderings and never serves (or keeps) a LoRA group that saw a
deleted row; what is served, and what is retrained, equals training from scratch without the rows, bit for bit."""
import copy
from dataclasses import asdict

import pytest
import torch

from obliviate import ObliviateError, UnlearnData, load_model, unlearn
from obliviate.data.format import examples_from
from obliviate.methods.exact.s3t import S3TConfig, layer_groups, orderings, train_s3t
from obliviate.methods.exact.sisa import _key
from obliviate.engine.training import TrainConfig, base_model

TRAIN = asdict(TrainConfig(epochs=2, lr=3e-3, batch_size=8))
CFG = S3TConfig(shards=2, slices=2, rank=4)


@pytest.fixture(scope="module")
def setup(micro_bench):
    base, tok = base_model("micro", micro_bench, 0)
    rows = examples_from(tok, micro_bench.training_qa(True), micro_bench.training_texts(True))
    ens = train_s3t(copy.deepcopy(base), tok, rows, CFG, TRAIN)
    return base, tok, rows, UnlearnData.from_benchmark(micro_bench, tok), ens


def _group(ens, s, o, g):
    return {k.replace(f".s{s}o{o}.", ".X."): v for k, v in ens.lora_params(f"s{s}o{o}", g).items()}


def _tainted(order, slices, gone, g):
    """Whether group g of this ordering was trained on a slice (in the table before the deletion) holding a
    deleted row: group g sees the slices order[0..g]."""
    return any(k in gone for r in order[:g + 1] for k in slices[r])


def test_a_deletion_cuts_orderings_without_retraining_and_serves_only_untouched_groups(setup):
    base, tok, rows, data, ens = setup
    req = UnlearnData(forget=data.forget[:1])
    gone = {_key(e) for e in req.forget}
    before = copy.deepcopy(ens.slices)
    new, info = unlearn(ens, tok, req, "s3t", {})
    ex = info["exact"]
    assert ex["forget_rows_found"] == 1 and ex["row_passes_retrained"] == 0 and not ex["shards_retrained"]
    assert ex["orderings_cut"]  # the row's slice is first in one of the L rotations: that one is cut to depth 0
    ref = train_s3t(copy.deepcopy(base), tok, [e for e in rows if _key(e) not in gone], CFG, TRAIN)
    L = len(ens.groups)
    for s, served in enumerate(new.served()):
        assert served is not None
        o, d = served
        assert not any(_tainted(new.order[s][o], before[s], gone, g) for g in range(d))  # never serves a tainted group
        for g in range(d):  # what is served equals training from scratch without the row, bit for bit
            a, b = _group(new, s, o, g), _group(ref, s, o, g)
            assert all(torch.equal(a[k], b[k]) for k in a)
    for s in range(len(new.order)):  # no weight that saw the row is kept anywhere, served or not
        for o, perm in enumerate(new.order[s]):
            for g in range(L):
                params = new.lora_params(f"s{s}o{o}", g)
                if _tainted(perm, before[s], gone, g):
                    assert new.depth[s][o] <= g
                    assert all(torch.equal(p, new.init[f"s{s}o{o}"][k]) for k, p in params.items())
                    assert all(not p.any() for k, p in params.items() if "lora_B" in k)  # adds exactly nothing
                else:
                    assert new.depth[s][o] > g
    assert ens.depth == [[L] * L for _ in range(CFG.shards)]  # the input ensemble is untouched


def test_a_shard_left_without_a_deep_enough_ordering_is_retrained_exactly(setup):
    base, tok, rows, data, ens = setup
    gone = {_key(e) for e in data.forget}
    new, info = unlearn(ens, tok, data, "s3t", {"min_depth": 2})
    ex = info["exact"]
    assert ex["shards_retrained"] and 0 < ex["row_passes_retrained"] < ex["row_passes_full_retraining"]
    ref = train_s3t(copy.deepcopy(base), tok, [e for e in rows if _key(e) not in gone], CFG, TRAIN)
    for w in ex["shards_retrained"]:
        s, o = w["shard"], w["ordering"]
        assert new.served()[s] == (o, 2)
        for g in range(2):
            a, b = _group(new, s, o, g), _group(ref, s, o, g)
            assert all(torch.equal(a[k], b[k]) for k in a)
    ids = tok(["Question: Where was it?\nAnswer:"], return_tensors="pt")["input_ids"]
    assert torch.isfinite(new(input_ids=ids).logits).all()


def test_save_load_keeps_what_is_served(setup, tmp_path):
    from obliviate.models import save_model

    _, tok, _, data, ens = setup
    new, _ = unlearn(ens, tok, UnlearnData(forget=data.forget[:1]), "s3t", {})
    save_model(new, tok, tmp_path / "m", {"role": "s3t"})
    again, _ = load_model(tmp_path / "m")
    assert type(again).__name__ == "S3TEnsemble" and again.depth == new.depth and again.served() == new.served()
    ids = tok(["Question: Where was it?\nAnswer:"], return_tensors="pt")["input_ids"]
    assert torch.equal(again(input_ids=ids).logits, new(input_ids=ids).logits)


def test_orderings_groups_and_errors(micro_models, setup):
    for L, B in ((3, 3), (3, 6), (4, 10)):
        got = orderings(L, B)
        assert len({tuple(p) for p in got}) == B and all(sorted(p) == list(range(L)) for p in got)
    assert orderings(3, 3) == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]  # the cyclic rotations
    assert layer_groups(4, 2) == [[3, 2], [1, 0]]  # group 0: the top layers
    with pytest.raises(ObliviateError, match="budget=7 exceeds the 6 orderings"):
        orderings(3, 7)
    with pytest.raises(ObliviateError, match="slices=3 needs at least 3 decoder layers"):
        layer_groups(2, 3)
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="s3t: the model is not an S3T ensemble"):
        unlearn(target, tok, setup[3], "s3t", {})
    with pytest.raises(ObliviateError, match="min_depth=3 exceeds"):
        unlearn(setup[4], tok, setup[3], "s3t", {"min_depth": 3})


def test_cli_trains_an_s3t_ensemble_and_unlearns(tmp_path):
    from obliviate.cli import main
    from obliviate.audit.ledger import entries

    ens_dir, out = tmp_path / "ens", tmp_path / "u"
    assert main(["train", "--model", "micro", "--benchmark", "micro", "--sharded", "2", "--slices", "2", "--s3t",
                 "--epochs", "1", "--out", str(ens_dir), "--cache", str(tmp_path / "c")]) == 0
    loaded, _ = load_model(ens_dir)
    assert type(loaded).__name__ == "S3TEnsemble" and len(loaded.order) == 2
    assert main(["unlearn", "--model", str(ens_dir), "--method", "s3t", "--out", str(out)]) == 0
    req = entries(tmp_path / "obliviate-ledger.sqlite")[0]
    assert req["exact"]["forget_rows_found"] > 0 and req["exact"]["orderings_cut"]
    assert any(k.startswith("adapters/") for k in req["output_fingerprint"])
    assert main(["certify", req["request_id"], "--ledger", str(tmp_path / "obliviate-ledger.sqlite"),
                 "--out", str(tmp_path / "cert")]) == 0
    page = (tmp_path / "cert" / "certificate.html").read_text()
    assert "Exact unlearning (S3T)" in page and "reset to their initial weights" in page
