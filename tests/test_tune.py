"""obliviate tune: the search space, the Pareto front, and a study that survives kill -9."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from obliviate import ObliviateError
from obliviate.runs.tune import pareto_front, search_space


def test_pareto_front_keeps_only_non_dominated_points():
    pts = [(0.1, 0.9), (0.5, 0.5), (0.4, 0.4), (0.9, 0.1), (0.5, 0.5)]
    assert pareto_front(pts) == [0, 1, 3, 4]


def test_search_space_is_declared_and_fixed_options_leave_it():
    space = search_space("npo", {})
    assert set(space) == {"lr", "epochs", "beta", "retain_weight"}
    assert set(search_space("npo", {"beta": "0.1", "max_steps": "8"})) == {"lr", "retain_weight"}
    with pytest.raises(ObliviateError, match="tune: method retrain has nothing to search"):
        search_space("retrain", {})
    # RMU searches its c relative to the model's activations, and rates up to 100x its default
    assert search_space("rmu", {})["adaptive_scale"][0] == "log" and "steering_coeff" not in search_space("rmu", {})
    assert search_space("rmu", {})["lr"] == ("lr", 0.1, 100.0)


def _cmd(cache, out, study):
    return [sys.executable, "-m", "obliviate.cli", "tune", "--method", "ga", "--trials", "3", "--model", "micro",
            "--benchmark", "micro", "--set", "max_steps=4", "--cache", str(cache),
            "--study", str(study), "--out", str(out)]


def _running(study):
    if not study.exists():
        return 0
    with sqlite3.connect(study) as db:
        try:
            return db.execute("select count(*) from trials where state = 'RUNNING'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def _completed(study):
    if not study.exists():
        return []
    with sqlite3.connect(study) as db:
        try:
            rows = db.execute("select trial_id, number, state from trials").fetchall()
            params = db.execute("select trial_id, param_name, param_value from trial_params").fetchall()
        except sqlite3.OperationalError:  # tables not made yet
            return []
    done = {tid: n for tid, n, state in rows if state == "COMPLETE"}
    return sorted((done[t], name, v) for t, name, v in params if t in done)


def test_tune_resumes_after_kill_9(micro_pair, tmp_path):
    env = {**os.environ, "OBLIVIATE_QUIET": "1"}
    cache = micro_pair["cache"]
    # the uninterrupted run: what the resumed study must reproduce
    ref = subprocess.run(_cmd(cache, tmp_path / "ref", tmp_path / "ref.db"), env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    want = json.loads((tmp_path / "ref" / "results.json").read_text())["tune"]["trials"]
    assert len(want) == 3

    study, out = tmp_path / "killed.db", tmp_path / "killed"
    proc = subprocess.Popen(_cmd(cache, out, study), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (_completed(study) and _running(study)):
        time.sleep(0.1)
    assert proc.poll() is None, "the tune finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _completed(study)
    assert before and _running(study) == 1 and not out.exists()  # killed mid-trial; no output half-written

    again = subprocess.run(_cmd(cache, out, study), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    got = json.loads((out / "results.json").read_text())["tune"]
    assert len(got["trials"]) == 3 and len(got["resumed_trials"]) == 1
    assert _completed(study)[:len(before)] == before  # the trials done before the kill were kept, not re-run
    # the same options as the uninterrupted study, trial by trial (a killed trial re-runs its own options)
    assert [t["params"] for t in got["trials"]] == [t["params"] for t in want]
    assert [round(t["forget_quality"], 12) for t in got["trials"]] == [round(t["forget_quality"], 12) for t in want]


def test_a_retain_sample_scores_every_trial_and_the_reference_on_the_same_facts(micro_pair, micro_models, micro_bench,
                                                                                micro_evals, tmp_path):
    from obliviate import EvalConfig, evaluate
    from obliviate.runs.tune import TuneConfig, Tuner

    target, _, tok = micro_models
    _, oracle_res = micro_evals
    n = len(micro_bench.retain) // 3
    cfg = TuneConfig(trials=1, retain_eval_size=n)
    tuner = Tuner("ga", target, tok, micro_bench, cfg, {"max_steps": "2"}, oracle_res, study=tmp_path / "s.db")
    sampled = evaluate(target, tok, micro_bench, EvalConfig(retain_eval_size=n), oracle=oracle_res)
    full = evaluate(target, tok, micro_bench, oracle=oracle_res)
    assert tuner.reference["utility"] == sampled.metrics["model_utility"] != full.metrics["model_utility"]
    trial = tuner.score({"lr": 1e-3})
    assert trial["ratio"] == pytest.approx(trial["model_utility"] / sampled.metrics["model_utility"])
    assert tuner.key["retain_eval_size"] == n  # a study of the full split is not resumed as this one
    with pytest.raises(ObliviateError, match="retain_eval_size"):
        Tuner("ga", target, tok, micro_bench, cfg, {"max_steps": "2"}, oracle_res, study=tmp_path / "t.db",
              reference={"utility": full.metrics["model_utility"]})
    with pytest.raises(ObliviateError, match="retain_eval_size samples"):
        Tuner("ga", target, tok, micro_bench, TuneConfig(objective="holdout_gap", retain_eval_size=n),
              {"max_steps": "2"}, study=tmp_path / "u.db")
