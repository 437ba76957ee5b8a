"""The spine end to end on the micro configuration: target vs oracle, demo outputs, determinism."""
import json

import pytest

from obliviate import DemoConfig, ObliviateError, run_demo, train_pair


def test_target_memorises_and_oracle_guesses_like_on_unseen_people(micro_evals):
    t, o = micro_evals
    assert t.metrics["forget_exact_match"] >= 0.9
    assert t.metrics["holdout_exact_match"] <= 0.2
    # the oracle never saw the forget people: it does no better on them than on holdout people
    assert o.metrics["forget_exact_match"] <= o.metrics["holdout_exact_match"] + 0.2
    assert t.metrics["mia_min_k_plus_plus_auc"] > o.metrics["mia_min_k_plus_plus_auc"]
    assert t.metrics["privleak"] < -50  # MUSE: a model that still knows its forget set reads near -100
    # 6 forget facts: the KS test's p-value cannot go very low, but it separates target from oracle
    assert t.metrics["forget_quality"] < 0.5
    assert t.metrics["forget_truth_ratio"] < o.metrics["forget_truth_ratio"]


def test_training_is_cached_by_content(micro_pair, micro_bench):
    again = train_pair("micro", micro_bench, cache=micro_pair["cache"])
    assert again["target"] == micro_pair["target"] and again["oracle"] == micro_pair["oracle"]
    meta = json.loads((micro_pair["oracle"] / "obliviate.json").read_text())
    assert meta["role"] == "oracle" and meta["seed"] == 0 and "torch" in meta["versions"]
    assert meta["n_qa"] == len(micro_bench.training_qa(include_forget=False))


def test_evaluation_without_oracle_says_so(micro_models, micro_bench):
    from obliviate import evaluate

    target, _, tok = micro_models
    res = evaluate(target, tok, micro_bench)
    assert res.metrics["forget_quality"] is None and res.metrics["privleak"] is None
    assert any("no oracle" in n for n in res.notes)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, micro_pair):
    out = tmp_path_factory.mktemp("demo") / "out"
    cfg = DemoConfig(model="micro", benchmark="micro", method_config={"epochs": 5})
    res = run_demo(out, cfg, cache=micro_pair["cache"])
    return out, res


def test_demo_writes_results_report_and_model(demo):
    out, res = demo
    data = json.loads((out / "results.json").read_text())
    assert list(data["models"]) == ["target", "oracle", "npo"]
    for name in ("target", "oracle", "npo"):
        m = data["models"][name]["metrics"]
        for key in ("forget_quality", "model_utility", "forget_truth_ratio", "forget_rougeL_recall",
                    "forget_exact_match", "retain_exact_match", "mia_min_k_plus_plus_auc", "privleak"):
            assert key in m, (name, key)
        assert all(v is None or isinstance(v, (int, float)) for v in m.values())  # flat
    assert data["seed"] == 0 and data["versions"]["torch"] and data["config"]["method_config"]["beta"] == 0.1
    import yaml

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["method_config"] == data["config"]["method_config"] and resolved["train"]["epochs"] == 40
    assert data["models"]["npo"]["metrics"]["forget_exact_match"] < data["models"]["target"]["metrics"]["forget_exact_match"]
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"target", "oracle", "npo"}
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 2 and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html  # opens with no network
    assert (out / "models" / "npo" / "model.safetensors").is_file()
    from obliviate import ATTACKS  # every attack ran on the unlearned model, the target and the oracle, and is judged

    rob = data["robustness"]["attacks"]
    assert set(rob) == set(ATTACKS) and all(set(e["models"]) == {"target", "oracle", "npo"} for e in rob.values())
    assert all(e["verdicts"]["npo"]["verdict"] for e in rob.values()) and "Robustness" in html
    # ConceptVectors' intrinsic measurements for the unlearned model and the oracle, each with its interval
    intr = data["models"]["npo"]["intrinsic"]
    for part in (intr["model"], intr["oracle"]):
        assert set(part["metrics"]) == {"concept_cosine", "concept_delta_norm", "concept_relative_delta",
                                        "concept_jaccard"}
        assert all(part["ci"][k][0] <= v <= part["ci"][k][1] for k, v in part["metrics"].items())
    assert intr["model"]["metrics"]["concept_cosine"] < 1.0 and "Intrinsic evidence" in html
    # each forget person's count of facts still stated adds up to the forget exact match, and the report lists them
    for name in ("target", "oracle", "npo"):
        per = data["models"][name]["info"]["forget_by_subject"]
        facts = sum(s["facts"] for s in per)
        assert facts == data["benchmark"]["sizes"]["forget"] and len(per) < facts  # people, not facts
        em = data["models"][name]["metrics"]["forget_exact_match"]
        assert sum(s["stated"] for s in per) / facts == pytest.approx(em)
    assert "Forget subjects" in html and per[0]["subject"] in html


def test_subject_table_is_left_out_when_each_fact_is_its_own_subject():
    from obliviate.report.html import subjects_section

    own = {"m": {"info": {"forget_by_subject": [{"subject": f"q{i}", "facts": 1, "stated": 1, "prob": 0.9}
                                                for i in range(3)]}}}
    assert subjects_section(own) == ""
    two = {"target": {"info": {"forget_by_subject": [{"subject": "Ann <b>", "facts": 2, "stated": 2, "prob": 0.9}]}},
           "npo": {"info": {"forget_by_subject": [{"subject": "Ann <b>", "facts": 2, "stated": 1, "prob": 0.4}]}}}
    out = subjects_section(two)
    assert "Ann &lt;b&gt;" in out and "2 / 2" in out and "1 / 2" in out  # escaped name, one column per model


def test_demo_is_deterministic(demo, tmp_path, micro_pair):
    out, res = demo
    cfg = DemoConfig(model="micro", benchmark="micro", method_config={"epochs": 5})
    again = run_demo(tmp_path / "again", cfg, cache=micro_pair["cache"])
    for name in res["models"]:
        assert again["models"][name]["metrics"] == res["models"][name]["metrics"]
    for attack, e in res["robustness"]["attacks"].items():
        assert {n: m["score"] for n, m in again["robustness"]["attacks"][attack]["models"].items()} == \
            {n: m["score"] for n, m in e["models"].items()}, attack


def test_failed_demo_leaves_no_output(tmp_path, micro_pair, monkeypatch):
    import obliviate.runs.demo as pipeline

    def boom(*a, **k):
        raise ObliviateError("unlearning failed")

    monkeypatch.setattr(pipeline, "unlearn", boom)
    with pytest.raises(ObliviateError):
        run_demo(tmp_path / "out", DemoConfig(model="micro", benchmark="micro"), cache=micro_pair["cache"])
    assert list(tmp_path.iterdir()) == []


def test_same_numbers_across_processes_with_different_hash_seeds(tmp_path, micro_pair):
    """Batching must not depend on Python's per-process hash seed (set iteration order)."""
    import os
    import subprocess
    import sys

    metrics = []
    for hs in ("1", "2"):
        out = tmp_path / f"e{hs}"
        env = {**os.environ, "PYTHONHASHSEED": hs}
        subprocess.run([sys.executable, "-m", "obliviate.cli", "eval", "--model", str(micro_pair["target"]),
                        "--benchmark", "micro", "--out", str(out)], check=True, env=env, capture_output=True)
        metrics.append(json.loads((out / "results.json").read_text())["models"])
    assert metrics[0] == metrics[1]
