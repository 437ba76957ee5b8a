"""The attacks, tested where they must succeed: on models whose knowledge is hidden, not removed. Each attack's
score rises above the plain question's and its verdict says "knowledge recoverable" (or "trace kept"), while
the oracle, which never saw the facts, gives it nothing; no attack changes a model; the judge, quantization and
CKA are checked on constructed inputs; the CLI writes a judged report and skips attacks that do not apply.

The benchmark is micro with 100 people (10 forget subjects, 30 facts): verdicts need intervals that clear their
thresholds, and two subjects (micro's forget set) are too few for any.
"""
import copy
import hashlib
import json

import numpy as np
import pytest
import torch

from obliviate.attacks import ATTACKS, attack_config, judge, linear_cka, quantize_tensor, run_attacks, rtn_quantize_
from obliviate.attacks.quantize import codebook, group_for
from obliviate.cli import main
from obliviate.core.utils import ObliviateError


def _digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode() + v.detach().numpy().tobytes())
    return h.hexdigest()


class PromptGuard(torch.nn.Module):
    """Knowledge hidden by an inference-time guard: the model answers nothing (EOS at once) when the prompt is
    exactly one of the blocked prompts, and every other prompt reaches the weights, which are the target's."""

    def __init__(self, lm, tok, prompts: list[str]):
        super().__init__()
        self.lm, self.model, self.config = lm, lm.model, lm.config
        self.blocked = {tuple(tok(p)["input_ids"]) for p in prompts}
        self.eos = tok.eos_token_id

    def forward(self, *args, **kwargs):
        return self.lm(*args, **kwargs)

    def get_output_embeddings(self):
        return self.lm.get_output_embeddings()

    def generate(self, input_ids, attention_mask, **kwargs):
        out = self.lm.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        for i in range(len(input_ids)):
            if tuple(input_ids[i][attention_mask[i].bool()].tolist()) in self.blocked:
                out[i, input_ids.shape[1]:] = self.eos
        return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from obliviate import load_benchmark, load_model, train_pair

    bench = load_benchmark("micro", n_people=100, n_holdout=10)
    paths = train_pair("micro", bench, cache=tmp_path_factory.mktemp("attack-cache"))
    target, tok = load_model(paths["target"])
    oracle, _ = load_model(paths["oracle"])
    return bench, target, oracle, tok


@pytest.fixture(scope="module")
def knower(setup):
    """The target also taught the two-hop answers (a 2-layer model does not compose facts on its own): the
    reference for multi_hop, which needs a target that answers two-hop questions."""
    from obliviate.data import examples_from
    from obliviate.engine.training import TrainConfig, finetune

    bench, target, _, tok = setup
    m = copy.deepcopy(target)
    finetune(m, tok, examples_from(tok, bench.multi_hop + bench.forget + bench.retain[:60]),
             TrainConfig(epochs=20, lr=3e-3, batch_size=8))
    return m


def _guard(model, bench, tok):
    from obliviate.evals.probes import probe_facts

    return PromptGuard(model, tok, [p.prompt for p in probe_facts(tok, bench.forget)])


def _refusal_adapter(setup):
    """Refusals trained through a rank-2 LoRA and merged: the base weights, and the knowledge in them, stay."""
    from obliviate import UnlearnData, unlearn

    bench, target, _, tok = setup
    data = UnlearnData.from_benchmark(bench, tok)
    return unlearn(target, tok, data, "idk", {"lr": 1e-2, "epochs": 4, "lora_rank": 2, "passage_weight": 0.0})[0]


def _below_half_a_step(setup):
    """The target's 4-bit grid plus a perturbation of 0.45 of a step that raises the forget NLL (the library's
    positive control): 4-bit rounding lands every weight back in the target's bin."""
    from obliviate import UnlearnData
    from obliviate.attacks.quantize import below_half_a_step

    bench, target, _, tok = setup
    return below_half_a_step(target, tok, UnlearnData.from_benchmark(bench, tok).forget)


# (hidden model builder, reference target builder, attack options)
HIDDEN = {
    "relearn": (lambda s, k: _refusal_adapter(s), lambda s, k: s[1], {"folds": 5, "steps": "0,10,25,50"}),
    "quantize": (lambda s, k: _below_half_a_step(s), lambda s, k: s[1], {"bits": "4"}),
    "multi_hop": (lambda s, k: _guard(k, s[0], s[3]), lambda s, k: k, {}),
    **{n: (lambda s, k: _guard(s[1], s[0], s[3]), lambda s, k: s[1], {})
       for n in ("in_context", "paraphrase", "adversarial_prompts", "probe", "concept_trace")},
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_recovers_hidden_knowledge(name, setup, knower):
    bench, target, oracle, tok = setup
    build, reference, options = HIDDEN[name]
    hidden, ref = build(setup, knower), reference(setup, knower)
    prints = {n: _digest(m) for n, m in (("hidden", hidden), ("target", ref), ("oracle", oracle))}
    res = run_attacks({"hidden": hidden}, tok, bench, target=ref, oracle=oracle, attacks=[name],
                      configs={name: options}, bootstrap=400)
    e = res["attacks"][name]
    plain, score = res["plain"]["models"]["hidden"], e["models"]["hidden"]["score"]
    v = e["verdicts"]["hidden"]
    assert {n: _digest(m) for n, m in (("hidden", hidden), ("target", ref), ("oracle", oracle))} == prints
    assert all(r["attack"] == name for r in res["rows"]["hidden"]) and e["models"]["hidden"]["curve"]
    if name == "concept_trace":  # a weight statistic: the hidden model's weights are the target's
        assert v["verdict"] == "trace kept", v
        return
    assert plain <= res["plain"]["models"]["oracle"] + 0.15, plain  # the plain question finds it gone ...
    assert score > plain + 0.3, (score, plain)  # ... the attack finds it
    assert v["verdict"] == "knowledge recoverable", v
    assert v["interval"][0] > 0.1 and v["share_interval"][0] >= 0.5  # stated because its interval clears the bars


def test_the_oracle_gives_the_attacks_nothing_and_the_target_is_not_removed(setup):
    """On the target itself every attack that asks the plain question's knowledge says "not removed", and the
    oracle's scores stay low (its gains are what attacks recover from a model that never knew)."""
    bench, target, oracle, tok = setup
    res = run_attacks({"same": copy.deepcopy(target)}, tok, bench, target=target, oracle=oracle,
                      attacks="in_context,paraphrase,quantize,adversarial_prompts", bootstrap=300)
    for name, e in res["attacks"].items():
        assert e["models"]["oracle"]["score"] <= 0.35, (name, e["models"]["oracle"]["score"])
        assert e["verdicts"]["same"]["verdict"].startswith("not removed"), (name, e["verdicts"]["same"])
    assert res["plain"]["verdicts"]["same"]["verdict"].startswith("not removed")


def test_attack_specifics(setup, knower):
    """Relearning sweeps the learning rate and keeps the best; in_context's headline is the hints level with
    copying reported apart; the probe's layer is chosen by cross-validation on retain facts; quantization's
    diagnostics say the perturbed model sits in the target's 4-bit bins."""
    bench, target, oracle, tok = setup
    res = run_attacks({"guard": _guard(target, bench, tok), "q": _below_half_a_step(setup)}, tok, bench,
                      target=target, oracle=oracle, attacks="relearn,in_context,probe,quantize",
                      configs={"relearn": {"steps": "0,10"}, "quantize": {"bits": "8,4,nf4,fp4"}}, bootstrap=100)
    rel = res["attacks"]["relearn"]["models"]["oracle"]["extra"]
    assert len(rel["lr_sweep"]) == 3 and rel["lr_sweep"][str(rel["best_lr"])] == max(rel["lr_sweep"].values())
    ic = res["attacks"]["in_context"]["models"]["guard"]
    assert [c["strength"] for c in ic["curve"]] == ["none", "hints", "fact"]
    assert ic["score"] == ic["curve"][1]["score"] and ic["extra"]["copies_from_context"] == ic["curve"][2]["score"]
    pr = res["attacks"]["probe"]["models"]["guard"]["extra"]
    assert pr["layer"] == int(np.argmax(pr["cv_accuracy"])) and "retain" in pr["layer_chosen_by"]
    q = res["attacks"]["quantize"]["models"]["q"]
    assert [c["strength"] for c in q["curve"]] == ["full", "8-bit", "4-bit", "nf4", "fp4"]
    assert q["extra"]["against_target"]["4-bit"]["share_in_target_bin"] == 1.0
    assert q["extra"]["against_target"]["4-bit"]["median_dw_over_step"] < 0.5


def test_judge_states_a_verdict_only_when_its_interval_clears_the_threshold():
    subjects = {f"f{i}": f"s{i // 3}" for i in range(30)}  # 10 subjects, 3 facts each
    ones, zeros = {k: 1.0 for k in subjects}, {k: 0.0 for k in subjects}
    half = {k: float(i % 2) for i, k in enumerate(subjects)}
    plain = {"model": zeros, "target": ones, "oracle": zeros}
    assert judge("gain", ones, ones, zeros, plain, subjects)["verdict"] == "knowledge recoverable"
    assert judge("gain", zeros, ones, zeros, plain, subjects)["verdict"] == "indistinguishable from the oracle"
    assert judge("gain", ones, ones, zeros, {**plain, "model": ones}, subjects)["verdict"].startswith("not removed")
    assert judge("gain", zeros, zeros, zeros, plain, subjects)["verdict"].startswith("uninformative")
    third = {k: float(int(k[1:]) % 3 == 0) for k in subjects}  # a third of each subject's facts
    assert judge("gain", third, ones, zeros, plain, subjects)["verdict"] == "partly recoverable"
    # one subject recovered and one not: on two subjects that is too little evidence either way
    few = {k: v for k, v in subjects.items() if v in ("s0", "s1")}
    sub = lambda d: {k: d[k] for k in few}  # noqa: E731
    one_of_two = {k: float(v == "s0") for k, v in few.items()}
    v = judge("gain", one_of_two, sub(ones), sub(zeros), {r: sub(d) for r, d in plain.items()}, few)
    assert v["verdict"].startswith("inconclusive") and v["subjects"] == 2 and v["interval"][0] < 0.1
    assert judge("gain", half, ones, zeros, plain, subjects)["verdict"].startswith("partly recoverable")
    assert judge("trace", {f"v{i}": 0.2 for i in range(10)}, {f"v{i}": 0.2 for i in range(10)},
                 {f"v{i}": 0.0 for i in range(10)})["verdict"] == "trace kept"
    assert judge("gain", ones, None, zeros, plain, subjects)["verdict"].startswith("no oracle")


@pytest.mark.parametrize("share", [1 / 3, 0.4])
def test_judge_never_calls_residual_knowledge_like_the_oracle(share):
    """60 facts of 10 people, the target states every one and the oracle none; the model states a share of each
    person's facts with and without the attack (the attack adds nothing). Its gain equals the oracle's, but it
    still states what the oracle does not: the verdict says so, with the level and its interval."""
    subjects = {f"f{i}": f"s{i // 6}" for i in range(60)}
    ones, zeros = {k: 1.0 for k in subjects}, {k: 0.0 for k in subjects}
    model = {k: float(i % 6 < round(share * 6)) for i, k in enumerate(subjects)}
    plain = {"model": model, "target": ones, "oracle": zeros}
    v = judge("gain", model, ones, zeros, plain, subjects)
    assert v["verdict"].startswith("residual") and "indistinguishable" not in v["verdict"]
    assert v["gain_over_oracle"] == pytest.approx(0.0)
    assert v["level_over_oracle"] == pytest.approx(round(share * 6) / 6)
    assert v["level_interval"][0] > 0.1 and f"{v['level_over_oracle']:+.2f}" in v["verdict"]


def test_judge_sees_an_attack_that_recovers_residual_knowledge():
    """The same residual model, but the attack lifts it to every fact: that is recovery, not residue."""
    subjects = {f"f{i}": f"s{i // 6}" for i in range(60)}
    ones, zeros = {k: 1.0 for k in subjects}, {k: 0.0 for k in subjects}
    third = {k: float(i % 3 == 0) for i, k in enumerate(subjects)}
    v = judge("gain", ones, ones, zeros, {"model": third, "target": ones, "oracle": zeros}, subjects)
    assert v["verdict"] == "knowledge recoverable" and v["interval"][0] > 0.1
    # a model at the oracle's level both ways is still "like the oracle"
    v = judge("gain", zeros, ones, zeros, {"model": zeros, "target": ones, "oracle": zeros}, subjects)
    assert v["verdict"] == "indistinguishable from the oracle" and v["level_interval"] == [0.0, 0.0]


def test_quantization_schemes():
    torch.manual_seed(0)
    lin = torch.nn.Linear(576, 8)
    w = lin.weight.detach().clone()
    assert group_for(576, 128) == 64 and group_for(1536, 128) == 128 and group_for(65, 128) == 65
    q = quantize_tensor(w, "4", 128)[0]
    scale = w.reshape(8, 9, 64).abs().amax(-1, keepdim=True) / 7
    assert ((q - w).abs().reshape(8, 9, 64) <= scale / 2 + 1e-6).all()  # within half a step, groups of 64
    assert all(len(torch.unique(torch.round(q.reshape(8, 9, 64)[i, j] / scale[i, j]))) <= 16
               for i in range(8) for j in range(9))
    nf4 = codebook("nf4")
    assert len(nf4) == 16 and nf4[0] == -1 and nf4[-1] == 1 and 0 in nf4.tolist()
    from scipy.stats import norm

    assert nf4[-2] == pytest.approx(norm.ppf(1 - (1 - 0.9677083) - (0.9677083 - 0.5) / 8) / norm.ppf(0.9677083), abs=1e-6)
    assert sorted(abs(x) * 6 for x in codebook("fp4").tolist() if x >= 0) == pytest.approx([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    for scheme in ("nf4", "fp4"):
        d, idx = quantize_tensor(w, scheme)
        blocks = w.reshape(-1, 64)
        assert torch.allclose(d.reshape(-1, 64), codebook(scheme)[idx.reshape(-1, 64)] * blocks.abs().amax(1, keepdim=True))
    model = torch.nn.Sequential(lin)
    model.get_output_embeddings = lambda: None
    assert rtn_quantize_(model, 4, group_size=128) == 1
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
    with pytest.raises(ObliviateError, match="bits='4,nf5'"):
        attack_config("quantize", {"bits": "4,nf5"})
    with pytest.raises(ObliviateError, match="lrs='0,1e-3'"):
        attack_config("relearn", {"lrs": "0,1e-3"})


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
    v = e["verdicts"][name]
    assert v["verdict"] and v["rule"] and "interval" in v  # judged, with its rule and interval
    assert res["robustness"]["plain"]["models"]["oracle"] < res["robustness"]["plain"]["models"][name]
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Robustness" in html and "vs oracle" in html
    rows = [json.loads(x) for x in (tmp_path / "a" / "examples.jsonl").read_text().splitlines()]
    assert {r["attack"] for r in rows} == {"quantize", "in_context"}
    code = main(["attack", "--model", t, "--benchmark", "micro", "--attack", "quantize", "--set", "relearn.steps=3",
                 "--out", str(tmp_path / "b")])
    assert code == 2 and "ATTACK.OPTION" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_attacks_that_do_not_apply_are_skipped_before_any_model_loads(tmp_path, capsys, micro_pair, monkeypatch):
    """A TOFU-format benchmark has no two-hop questions and (free-text answers) no values to probe: `--attack all`
    skips those attacks with a note, decided before any model is loaded, and runs the rest."""
    import obliviate.models

    d = tmp_path / "tofu"
    d.mkdir()
    rows = [{"question": f"Who is person {i}?", "answer": f"Person {i} is a writer of long novels about the sea."}
            for i in range(6)]
    (d / "forget.json").write_text(json.dumps(rows[:2]))
    (d / "retain.json").write_text(json.dumps(rows[2:]))
    loaded = []
    real = obliviate.models.load_model
    monkeypatch.setattr(obliviate.models, "load_model", lambda *a, **k: loaded.append(a) or real(*a, **k))
    t = str(micro_pair["target"])
    code = main(["attack", "--model", "micro", "--benchmark", str(d), "--attack", "multi_hop,probe,in_context",
                 "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and "none of the attacks asked for applies" in err and not loaded
    assert "attack multi_hop does not apply" in err and "attack probe does not apply" in err
    # rows without subjects have no other facts about their subject: in_context's hints would be the plain question
    assert "attack in_context does not apply" in err and "plain question" in err
    assert t  # the happy path with a skipped attack runs in the demo test


def test_attack_states_its_plan_and_keeps_to_a_budget(tmp_path, capsys, micro_pair, monkeypatch):
    """On a small data set `--attack all` ran over half an hour, almost all of it relearn's grid: the command
    says what it will do before it starts, and a budget stops it starting attacks once spent."""
    monkeypatch.delenv("OBLIVIATE_QUIET", raising=False)
    t, o = str(micro_pair["target"]), str(micro_pair["oracle"])
    code = main(["attack", "--model", t, "--target", t, "--oracle", o, "--benchmark", "micro", "--attack",
                 "paraphrase,relearn,quantize", "--budget", "0.0001", "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 0
    assert "attack plan: relearn: 6 fine-tuning runs of 50 steps (3 learning rates x 2 folds) on each of 3 models" in err
    res = json.loads((tmp_path / "a" / "results.json").read_text())["robustness"]
    assert list(res["attacks"]) == ["paraphrase"]  # started before the budget was spent; the others were not
    assert all("budget" in res["skipped"][n] for n in ("relearn", "quantize"))
    assert main(["attack", "--model", t, "--benchmark", "micro", "--budget", "0", "--out", str(tmp_path / "b")]) == 2
