"""The command line: the happy path on micro, and one-line errors with exit code 2 for bad input."""
import json
import subprocess
import sys

import pytest

from obliviate.cli import main


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def cache_args(micro_pair):
    return ["--cache", str(micro_pair["cache"])]


def test_train_unlearn_eval_round_trip(tmp_path, capsys, cache_args, micro_pair):
    code, out, _ = run([*cache_args, "train", "--model", "micro", "--benchmark", "micro"], capsys)
    assert code == 0 and json.loads(out) == {"target": str(micro_pair["target"]), "oracle": str(micro_pair["oracle"])}
    code, _, _ = run(["unlearn", "--model", str(micro_pair["target"]), "--method", "graddiff", "--benchmark", "micro",
                      "--out", str(tmp_path / "u"), "--set", "max_steps=5", "--set", "eval_every=2"], capsys)
    assert code == 0 and (tmp_path / "u" / "model.safetensors").is_file()
    meta = json.loads((tmp_path / "u" / "obliviate.json").read_text())
    assert meta["unlearning"]["config"]["max_steps"] == 5
    code, _, _ = run(["eval", "--model", str(tmp_path / "u"), "--oracle", str(micro_pair["oracle"]),
                      "--benchmark", "micro", "--muse", "benchmark", "--out", str(tmp_path / "e")], capsys)
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert code == 0 and set(res["models"]) == {"oracle", "u"}
    assert res["models"]["u"]["metrics"]["forget_quality"] is not None
    assert res["models"]["u"]["metrics"]["muse_privleak"] is not None  # MUSE's criteria beside TOFU's
    assert res["models"]["oracle"]["metrics"]["muse_knowmem_retain"] > 0
    # the probe curve logged while unlearning reaches the report
    assert [r["step"] for r in res["models"]["u"]["unlearning"]["probe"]] == [0, 2, 4, 5]
    assert "Probe during unlearning" in (tmp_path / "e" / "report.html").read_text()


def test_ls_lists_registries(capsys):
    code, out, _ = run(["ls"], capsys)
    assert code == 0 and "npo" in out and "forget_quality" in out and "smollm2-135m" in out


def _bad(args, capsys, match, tmp_path=None):
    code, out, err = run(args, capsys)
    assert code == 2
    assert err.startswith("obliviate: error: ") and err.count("\n") == 1, err
    assert match in err, err
    if tmp_path is not None:
        assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_bad_inputs(tmp_path, capsys, micro_pair):
    out = str(tmp_path / "out")
    target = str(micro_pair["target"])
    _bad(["demo", "--method", "nope", "--out", out], capsys, "unknown method 'nope'", tmp_path)
    _bad(["eval", "--model", "./missing/model", "--benchmark", "micro", "--out", out], capsys,
         "model path ./missing/model does not exist", tmp_path)
    fake = tmp_path / "fake.gguf"
    fake.write_text("hello")
    _bad(["eval", "--model", str(fake), "--benchmark", "micro", "--out", out], capsys, "is not a GGUF file", tmp_path)
    _bad(["eval", "--model", target, "--benchmark", "micro", "--metrics", "forget_quality,vibes", "--out", out],
         capsys, "unknown metric(s) vibes", tmp_path)
    _bad(["eval", "--model", target, "--benchmark", "micro", "--muse", str(tmp_path / "no-muse"), "--out", out],
         capsys, "MUSE folder", tmp_path)
    _bad(["unlearn", "--model", "no-such-model", "--benchmark", "micro", "--out", out], capsys,
         "unknown model 'no-such-model'", tmp_path)
    _bad(["unlearn", "--model", target, "--benchmark", "micro", "--method", "npo", "--set", "betta=1", "--out", out],
         capsys, "unknown option(s) betta", tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    forget = tmp_path / "forget.jsonl"
    forget.write_text(json.dumps({"question": "Who?", "answer": "Me."}) + "\n")
    _bad(["train", "--data", str(empty), "--forget", str(forget)], capsys, "empty.jsonl is empty")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": "a", "answer": "b"},')
    _bad(["train", "--data", str(broken), "--forget", str(forget)], capsys, "broken.json is not valid JSON")
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"question": "Where?", "answer": "There."}) + "\n")
    _bad(["train", "--data", str(data), "--forget", str(forget)], capsys, "overlaps nothing in data")
    _bad(["demo", "--benchmark", "people:forget99", "--out", out], capsys, "unknown forget split", tmp_path)
    _bad(["tune", "--method", "npo", "--model", target, "--benchmark", "micro", "--out", out], capsys,
         "tune --objective forget_quality needs the oracle", tmp_path)
    _bad(["tune", "--method", "retrain", "--model", target, "--benchmark", "micro", "--objective", "holdout_gap",
          "--out", out], capsys, "tune: method retrain has nothing to search", tmp_path)
    _bad(["tune", "--method", "npo", "--model", target, "--benchmark", "micro", "--objective", "oracle_gap",
          "--out", out], capsys, "tune: objective='oracle_gap': must be one of", tmp_path)
    _bad(["unlearn", "--model", target, "--benchmark", "micro", "--calibration", str(forget), "--out", out], capsys,
         "--calibration goes with --data and --forget", tmp_path)


def test_oracle_with_another_tokenizer_is_refused(tmp_path, capsys, micro_pair):
    from obliviate import load_benchmark, load_model, save_model

    other, tok = load_model("micro", corpus=load_benchmark("people").all_text())
    save_model(other, tok, tmp_path / "other")
    _bad(["eval", "--model", str(micro_pair["target"]), "--oracle", str(tmp_path / "other"), "--benchmark", "micro",
          "--out", str(tmp_path / "out")], capsys, "have different tokenizers", tmp_path)


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "obliviate.cli", "demo", "--method", "nope", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown method 'nope'" in proc.stderr and not (tmp_path / "o").exists()
