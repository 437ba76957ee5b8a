"""SISA exact unlearning on `micro`: bitwise equality with training from scratch without the forget rows, the
ensemble's aggregation, save/load, the CLI and the certificate's proof obligations."""
from dataclasses import asdict

import pytest
import torch

from obliviate import ObliviateError, UnlearnData, load_model, unlearn
from obliviate.data.format import examples_from
from obliviate.methods.exact.sisa import SisaConfig, _key, train_sisa
from obliviate.engine.training import TrainConfig, base_model

TRAIN = asdict(TrainConfig(epochs=2, lr=3e-3, batch_size=8))


@pytest.fixture(scope="module")
def setup(micro_bench):
    base, tok = base_model("micro", micro_bench, 0)
    rows = examples_from(tok, micro_bench.training_qa(True), micro_bench.training_texts(True))
    return base, tok, rows, UnlearnData.from_benchmark(micro_bench, tok)


def test_retrained_constituents_equal_training_from_scratch_without_the_rows_bit_for_bit(setup):
    base, tok, rows, data = setup
    cfg = SisaConfig(shards=2, slices=3)
    ens = train_sisa(base, tok, rows, cfg, TRAIN)
    new, info = unlearn(ens, tok, data, "sisa", {})
    gone = {_key(e) for e in data.forget}
    ref = train_sisa(base, tok, [e for e in rows if _key(e) not in gone], cfg, TRAIN)
    for a, b in zip(new.constituents, ref.constituents):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ex = info["exact"]
    assert ex["forget_rows_found"] == len(gone) and ex["forget_rows_not_trained_on"] == 0
    assert 0 < ex["row_passes_retrained"] <= ex["row_passes_full_retraining"]
    for w in ex["shards_retrained"]:  # each restart is right before the first slice holding a forget row
        first = w["retrained_slices"][0]
        assert w["restored_from"] == ("initialisation" if first == 0 else f"checkpoint after slice {first - 1}")
        assert not any(k in gone for r in range(first) for k in ens.slices[w["shard"]][r])
        assert any(k in gone for k in ens.slices[w["shard"]][first])
    untouched = {s for s in range(cfg.shards)} - {w["shard"] for w in ex["shards_retrained"]}
    for s in untouched:  # a shard without forget rows is not retrained at all
        before = ens.constituents[s].state_dict()
        assert all(torch.equal(v, before[k]) for k, v in new.constituents[s].state_dict().items())


def test_the_ensemble_averages_the_constituents_log_probabilities(setup):
    base, tok, rows, _ = setup
    ens = train_sisa(base, tok, rows[:20], SisaConfig(shards=2, slices=1), TRAIN)
    ids = tok(["Question: Where was it?\nAnswer:"], return_tensors="pt")["input_ids"]
    want = torch.stack([torch.log_softmax(c(input_ids=ids).logits, -1) for c in ens.constituents]).mean(0)
    assert torch.allclose(ens(input_ids=ids).logits, want)
    out = ens.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3)
    assert out.shape[1] == ids.shape[1] + 3 and torch.equal(out[:, :ids.shape[1]], ids)


def test_sisa_refuses_a_plain_model(micro_models, setup):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="sisa: the model is not a SISA ensemble"):
        unlearn(target, tok, setup[3], "sisa", {})


def test_cli_trains_sharded_unlearns_and_certifies_the_proof_obligations(tmp_path, capsys):
    from obliviate.cli import main
    from obliviate.audit.ledger import entries

    ens_dir, out = tmp_path / "ens", tmp_path / "u"
    assert main(["train", "--model", "micro", "--benchmark", "micro", "--sharded", "2", "--slices", "2",
                 "--epochs", "2", "--out", str(ens_dir), "--cache", str(tmp_path / "c")]) == 0
    loaded, _ = load_model(ens_dir)
    assert type(loaded).__name__ == "SisaEnsemble" and len(loaded.constituents) == 2
    assert main(["unlearn", "--model", str(ens_dir), "--method", "sisa", "--out", str(out)]) == 0
    req = entries(tmp_path / "obliviate-ledger.sqlite")[0]
    assert req["exact"]["forget_rows_found"] > 0 and req["exact"]["shards_retrained"]
    assert any(k.startswith("shard0/") for k in req["output_fingerprint"])  # every constituent is fingerprinted
    assert main(["certify", req["request_id"], "--ledger", str(tmp_path / "obliviate-ledger.sqlite"),
                 "--out", str(tmp_path / "cert")]) == 0
    assert "proof obligations" in (tmp_path / "cert" / "certificate.html").read_text()
    again, _ = load_model(out)
    assert again.slices != loaded.slices  # the forget rows left their slices
