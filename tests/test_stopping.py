"""When unlearning stops: the probe curve with keep_best, and the calibrated rule stop=holdout (never-trained
facts as the reference for membership AUCs, with a utility guard)."""
import pytest

from obliviate import ObliviateError, UnlearnData, unlearn


def test_probe_curve_and_keep_best_checkpoint(micro_models, data):
    target, _, tok = micro_models
    cfg = {"max_steps": 12, "eval_every": 4, "keep_best": "gap", "lr": 3e-3}
    new, info = unlearn(target, tok, data, "graddiff", cfg)
    steps = [row["step"] for row in info["probe"]]
    assert steps == [0, 4, 8, 12]
    first = info["probe"][0]
    assert first["forget_token_em"] > 0.9 and first["retain_token_em"] > 0.9  # the target knows both
    later = info["probe"][1:]
    assert max(r["forget_nll"] for r in later) > first["forget_nll"]
    best = max(later, key=lambda r: r["retain_token_em"] - r["forget_token_em"])
    assert info["best_step"] == best["step"]
    # the returned model is the best probed one: re-probing it gives that row's numbers
    again, info2 = unlearn(new, tok, data, "graddiff", {**cfg, "max_steps": 4, "keep_best": "none", "lr": 1e-12})
    assert abs(info2["probe"][0]["forget_nll"] - best["forget_nll"]) < 1e-4
    with pytest.raises(ObliviateError, match="keep_best='gap' needs eval_every > 0"):
        unlearn(target, tok, data, "ga", {"max_steps": 2, "keep_best": "gap"})


# ---- calibrated stopping and the peers' remaining methods (issue 12) ----

def _holdout_auc(model, tok, data):
    """The stop rule's two AUCs on a model, computed as the rule computes them."""
    from obliviate.methods.calibrate import HoldoutStop
    from obliviate.methods.gradient.npo import NPOConfig

    probe = HoldoutStop(tok, data, NPOConfig(stop="holdout"), 10)
    probe.probe(0, model)
    return probe.curve[0]


def test_stop_holdout_returns_the_probed_step_closest_to_chance(micro_models, data):
    """Gradient ascent at a high rate over-shoots: forget facts end up less likely than never-seen ones. The rule
    must notice (an AUC interval below 0.5), stop, and hand back the probed checkpoint closest to AUC 0.5."""
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "ga", {"max_steps": 60, "lr": 3e-3, "stop": "holdout", "stop_every": 3})
    stop = info["stop"]
    curve = stop["curve"]
    assert curve[0]["step"] == 0 and curve[0]["loss_auc"] > 0.9  # the target knows its forget set
    assert all(len(r["loss_auc_ci"]) == 2 and len(r["min_k_auc_ci"]) == 2 for r in curve)
    dist = {r["step"]: max(abs(r["loss_auc"] - 0.5), abs(r["min_k_auc"] - 0.5)) for r in curve if r["keeps_utility"]}
    assert stop["reason"].startswith(("indistinguishable", "over-unlearned", "budget spent"))
    if stop["reason"] != "indistinguishable":
        assert dist[stop["chosen_step"]] == min(dist.values())  # the closest among the probes the guard allows
    assert stop["steps_run"] <= 60 and len(info["loss_curve"]) == stop["steps_run"]
    again = _holdout_auc(new, tok, data)  # the returned model is the chosen checkpoint
    chosen = next(r for r in curve if r["step"] == stop["chosen_step"])
    assert abs(again["loss_auc"] - chosen["loss_auc"]) < 1e-9 and abs(again["min_k_auc"] - chosen["min_k_auc"]) < 1e-9


def test_stop_holdout_stops_early_once_indistinguishable(micro_models, data):
    target, _, tok = micro_models
    _, info = unlearn(target, tok, data, "graddiff", {"max_steps": 200, "lr": 3e-4, "stop": "holdout",
                                                        "stop_every": 1, "stop_tolerance": 0.5})
    stop = info["stop"]
    # tolerance 0.5 reduces the rule to "both AUC intervals contain 0.5": it must stop at the first such probe
    first = next((r["step"] for r in stop["curve"] if r["keeps_utility"] and all(
        r[f"{k}_auc_ci"][0] <= 0.5 <= r[f"{k}_auc_ci"][1] for k in ("loss", "min_k"))), None)
    assert first is not None, "GradDiff never reached chance in 200 steps on micro"
    assert stop["reason"] == "indistinguishable" and stop["chosen_step"] == first == stop["steps_run"] < 200


def test_stop_holdout_never_returns_a_probe_that_broke_the_model(micro_models, data):
    """Gradient ascent without a retain term at a high rate wrecks the retain facts on its way to chance: the
    probes that did are never returned, and the summary says how many were excluded and why."""
    target, _, tok = micro_models
    new, info = unlearn(target, tok, data, "ga", {"max_steps": 40, "lr": 1e-2, "stop": "holdout", "stop_every": 2})
    stop, guard = info["stop"], info["stop"]["utility_guard"]
    base = stop["curve"][0]["retain_token_accuracy"]
    assert guard["share"] == 0.9 and guard["input_retain_token_accuracy"] == base > 0.5
    assert guard["probes_excluded"] >= 1 and any(not r["keeps_utility"] for r in stop["curve"])  # the guard acted
    chosen = next(r for r in stop["curve"] if r["step"] == stop["chosen_step"])
    assert chosen["retain_token_accuracy"] >= 0.9 * base
    assert "excluded" in stop["reason"]
    from obliviate.methods.calibrate import retain_token_accuracy

    assert retain_token_accuracy(new, tok, data, 128) == pytest.approx(chosen["retain_token_accuracy"])
    _, off = unlearn(target, tok, data, "ga", {"max_steps": 40, "lr": 1e-2, "stop": "holdout", "stop_every": 2,
                                               "stop_utility": 0.0})
    assert off["stop"]["utility_guard"]["probes_excluded"] == 0
    assert "retain_token_accuracy" not in off["stop"]["curve"][0]


def test_stop_holdout_bad_input(micro_models, data):
    target, _, tok = micro_models
    with pytest.raises(ObliviateError, match="stop=holdout needs facts .* never saw.*--calibration"):
        unlearn(target, tok, UnlearnData(forget=data.forget, retain=data.retain), "npo",
                {"max_steps": 24, "stop": "holdout"})
    with pytest.raises(ObliviateError, match="keep_best and stop=holdout"):
        unlearn(target, tok, data, "npo", {"eval_every": 4, "keep_best": "gap", "stop": "holdout"})
    with pytest.raises(ObliviateError, match="task_vector: stop=holdout does not apply"):
        unlearn(target, tok, data, "task_vector", {"stop": "holdout"})
    with pytest.raises(ObliviateError, match="method npo: stop='oracle': must be one of 'none', 'holdout'"):
        unlearn(target, tok, data, "npo", {"stop": "oracle"})


def test_calibration_facts_are_never_trained_or_evaluated(micro_bench):
    from obliviate import load_benchmark

    bench = load_benchmark("micro", n_calibration=4)
    cal = {r.subject for r in bench.calibration}
    assert cal and len(bench.calibration) == 4 * 3
    seen = {r.subject for s in bench.qa_splits().values() for r in s}
    assert not cal & seen
    assert not cal & {r.subject for r in bench.training_qa()}
    # adding calibration people leaves every other split as it was (they are drawn last)
    assert not micro_bench.calibration and bench.fingerprint() == micro_bench.fingerprint()
