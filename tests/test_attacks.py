"""The attacks: each reports high recovery on a target that knows the forget facts and low recovery on the
oracle that never saw them; none changes the model it is given; the verdict logic, RTN quantization and CKA
are checked on constructed inputs; the CLI writes a judged robustness report."""
import copy
import hashlib
import json

import numpy as np
import pytest
import torch

from obliviate.attacks import ATTACKS, attack_config, linear_cka, run_attacks, rtn_quantize_, verdict
from obliviate.cli import main
from obliviate.utils import ObliviateError

FAST = {"relearn": {"steps": "0,10"}}  # fewer checkpoints on micro; the logic is the same


def _digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode() + v.detach().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def knower(micro_models, micro_bench):
    """The micro target, also taught the two-hop answers (tiny models do not compose facts on their own), so that
    every attack has a model that knows what it asks."""
    from obliviate.data import examples_from
    from obliviate.train import TrainConfig, finetune

    target, _, tok = micro_models
    m = copy.deepcopy(target)
    finetune(m, tok, examples_from(tok, micro_bench.multi_hop + micro_bench.forget), TrainConfig(epochs=30, lr=3e-3,
                                                                                                  batch_size=8))
    return m


@pytest.fixture(scope="module")
def probe_setup(tmp_path_factory):
    """The probe needs forget values that retain facts share, and enough of them: 100 people with one fact
    (birthplace, 4 cities), 10 of them forgotten, trained to memorise every fact."""
    from obliviate import TrainConfig, load_benchmark, load_model, train_pair

    bench = load_benchmark("micro", n_people=100, n_attributes=1, n_cities=4)
    paths = train_pair("micro", bench, TrainConfig(epochs=100, include_texts=False),
                       cache=tmp_path_factory.mktemp("probe"))
    target, tok = load_model(paths["target"])
    oracle, _ = load_model(paths["oracle"])
    return target, oracle, tok, bench


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_separates_knower_from_oracle_and_leaves_models_alone(name, knower, micro_models, micro_bench,
                                                                     request):
    target, oracle, tok = micro_models
    if name == "probe":  # micro's 2 forget people give the probe too few facts to read; see probe_setup
        target, oracle, tok, micro_bench = request.getfixturevalue("probe_setup")
        knower = target
    before = {n: _digest(m) for n, m in (("knower", knower), ("target", target), ("oracle", oracle))}
    res = run_attacks({"knower": knower}, tok, micro_bench, target=target, oracle=oracle, attacks=[name],
                      configs=FAST)
    e = res["attacks"][name]
    scores = {n: v["score"] for n, v in e["models"].items()}
    if name == "concept_trace":  # a share of top-k tokens, not an accuracy: the knower's is twice the oracle's
        assert scores["knower"] >= max(2 * scores["oracle"], scores["oracle"] + 0.1), scores
    else:  # high recovery where the facts are known, little on the oracle (the probe's chance is 1/4, on 10 facts)
        assert scores["knower"] >= scores["oracle"] + 0.2, scores
        assert scores["oracle"] <= (0.5 if name == "probe" else 0.35), scores
    assert {n: _digest(m) for n, m in (("knower", knower), ("target", target), ("oracle", oracle))} == before
    assert e["models"]["knower"]["curve"] and res["rows"]["knower"]
    assert all(r["attack"] == name for r in res["rows"]["knower"])
    assert e["verdicts"]["knower"]["verdict"].startswith(("knowledge recoverable", "partly recoverable", "uninformative"))


def test_verdict_logic_on_constructed_scores():
    assert verdict(0.9, 1.0, 0.0)["verdict"] == "knowledge recoverable"
    assert verdict(0.05, 1.0, 0.0)["verdict"] == "indistinguishable from the oracle"
    assert verdict(0.3, 1.0, 0.0)["verdict"] == "partly recoverable"
    assert verdict(0.3, 1.0, 0.0)["recovered_share"] == pytest.approx(0.3)
    assert verdict(0.6, 0.55, 0.5)["verdict"].startswith("uninformative")
    assert verdict(0.4, 1.0, 0.6)["verdict"] == "below the oracle"
    assert verdict(0.4, None, 0.1)["verdict"].startswith("no oracle")


def test_rtn_quantization_is_round_to_nearest():
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 8)
    w = lin.weight.detach().clone()
    model = torch.nn.Sequential(lin)
    model.get_output_embeddings = lambda: None
    assert rtn_quantize_(model, 4, group_size=128) == 1
    q = lin.weight.detach()
    for g in range(2):
        cols = slice(128 * g, 128 * (g + 1))
        scale = w[:, cols].abs().amax(1, keepdim=True) / 7
        assert ((q[:, cols] - w[:, cols]).abs() <= scale / 2 + 1e-6).all()  # within half a step
        assert all(len(torch.unique(torch.round(q[i, cols] / scale[i]))) <= 16 for i in range(8))
    with pytest.raises(ObliviateError, match="bits"):
        rtn_quantize_(model, 1)


def test_linear_cka_by_hand():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8))
    rot, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rot) == pytest.approx(1.0)  # invariant to rotation and isotropic scaling
    assert linear_cka(x, rng.normal(size=(50, 8))) < 0.5


def test_bad_attack_options():
    with pytest.raises(ObliviateError, match="unknown attack"):
        attack_config("nope")
    with pytest.raises(ObliviateError, match="unknown option"):
        attack_config("relearn", {"stepz": 3})


def test_attack_cli_writes_a_judged_report(tmp_path, capsys, micro_pair):
    t, o = str(micro_pair["target"]), str(micro_pair["oracle"])
    code = main(["attack", "--model", t, "--target", t, "--oracle", o, "--benchmark", "micro",
                 "--attack", "quantize,in_context", "--set", "quantize.bits=4", "--out", str(tmp_path / "a")])
    capsys.readouterr()
    assert code == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    e = res["robustness"]["attacks"]["quantize"]
    assert [c["strength"] for c in e["models"]["oracle"]["curve"]] == ["full", "4-bit"]
    name = micro_pair["target"].name
    # the target itself keeps its knowledge, and the verdict says it was never removed
    assert e["verdicts"][name]["verdict"] == "knowledge recoverable (never removed: the plain question recovers it too)"
    assert res["robustness"]["plain"]["models"]["oracle"] < res["robustness"]["plain"]["models"][name]
    assert "Robustness" in (tmp_path / "a" / "report.html").read_text()
    rows = [json.loads(x) for x in (tmp_path / "a" / "examples.jsonl").read_text().splitlines()]
    assert {r["attack"] for r in rows} == {"quantize", "in_context"}
    code = main(["attack", "--model", t, "--benchmark", "micro", "--attack", "quantize", "--set", "relearn.steps=3",
                 "--out", str(tmp_path / "b")])
    assert code == 2 and "ATTACK.OPTION" in capsys.readouterr().err and not (tmp_path / "b").exists()
