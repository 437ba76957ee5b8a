"""The lm-evaluation-harness bridge, on a local multiple-choice task (no dataset hub): the accuracy lm-eval
reports for the in-memory model equals an independent log-likelihood computation, the target beats the
oracle on its forget facts, and bad task names fail before any model work."""
import json
import os
import random

import pytest
import torch

pytest.importorskip("lm_eval", reason="lm-evaluation-harness is an optional extra: pip install 'obliviate[lm-eval]'")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from obliviate.cli import main  # noqa: E402

@pytest.fixture(scope="module")
def task_dir(tmp_path_factory, micro_bench):
    """A multiple-choice task over the forget facts: the true paraphrased answer among the perturbed ones."""
    d = tmp_path_factory.mktemp("tasks")
    docs = []
    for r in micro_bench.forget:
        choices = [r.paraphrased_answer, *r.perturbed_answers]
        random.Random(r.id).shuffle(choices)
        docs.append({"question": r.question, "choices": choices, "label": choices.index(r.paraphrased_answer)})
    from obliviate.evals.lm_eval import write_multiple_choice_task

    write_multiple_choice_task(d, "forget_mc", docs)
    return d, docs


@torch.no_grad()
def _accuracy(model, tok, docs) -> float:
    """argmax over choices of Σ log p(" " + choice | question), computed directly from the model's logits."""
    right = 0
    for doc in docs:
        ctx = tok(doc["question"], add_special_tokens=False)["input_ids"]
        scores = []
        for c in doc["choices"]:
            whole = tok(doc["question"] + " " + c, add_special_tokens=False)["input_ids"]
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0, :-1].float(), -1)
            cont = torch.tensor(whole[len(ctx):])
            scores.append(float(logp[len(ctx) - 1:].gather(-1, cont[:, None]).sum()))
        right += int(max(range(len(scores)), key=scores.__getitem__) == doc["label"])
    return right / len(docs)


def test_lm_eval_task_on_model_and_oracle(tmp_path, capsys, task_dir, micro_pair, micro_models):
    d, docs = task_dir
    target, oracle, tok = micro_models
    code = main(["eval", "--model", str(micro_pair["target"]), "--oracle", str(micro_pair["oracle"]),
                 "--benchmark", "micro", "--lm-eval", "forget_mc", "--lm-eval-include", str(d),
                 "--out", str(tmp_path / "e")])
    capsys.readouterr()
    assert code == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    got = {n: m["metrics"]["lm_eval_forget_mc_acc"] for n, m in res["models"].items()}
    assert got[micro_pair["target"].name] == pytest.approx(_accuracy(target, tok, docs))
    assert got["oracle"] == pytest.approx(_accuracy(oracle, tok, docs))
    assert got[micro_pair["target"].name] > got["oracle"] + 0.2  # the target knows its forget facts
    assert res["config"]["lm_eval"]["tasks"] == ["forget_mc"]
    assert "lm_eval_forget_mc_acc" in (tmp_path / "e" / "report.html").read_text()


def test_lm_eval_bad_task_fails_before_model_work(tmp_path, capsys, task_dir, micro_pair, monkeypatch):
    import obliviate.models

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded before the task names were checked")

    monkeypatch.setattr(obliviate.models, "load_model", no_loading)
    d, _ = task_dir
    target = str(micro_pair["target"])
    code = main(["eval", "--model", target, "--benchmark", "micro", "--lm-eval", "forget_mc,nope_task",
                 "--lm-eval-include", str(d), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2 and "nope_task" in err and "forget_mc" not in err.split("unknown task(s)")[1].split("(")[0]
    assert not (tmp_path / "e").exists()
    code = main(["eval", "--model", target, "--benchmark", "micro", "--lm-eval", "forget_mc",
                 "--lm-eval-include", str(tmp_path / "missing"), "--out", str(tmp_path / "e")])
    assert code == 2 and "missing" in capsys.readouterr().err
