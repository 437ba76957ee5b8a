"""Inputs that used to give a traceback or a wrong message: one line naming the file or option, exit 2, nothing
written; a terminated run leaves nothing behind; stdout stays machine-readable."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from obliviate.cli import main


def _one_line(capsys, needle: str) -> None:
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


def test_a_damaged_weight_file_is_one_line_naming_it(tmp_path, micro_pair, capsys):
    bad = tmp_path / "m"
    shutil.copytree(micro_pair["target"], bad)
    f = bad / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    assert main(["eval", "--model", str(bad), "--benchmark", "micro", "--out", str(tmp_path / "e")]) == 2
    _one_line(capsys, f"{f}: not a readable safetensors file")
    assert not (tmp_path / "e").exists()


def test_a_folder_without_its_tokenizer_says_so(tmp_path, micro_pair, capsys):
    bare = tmp_path / "m"
    shutil.copytree(micro_pair["target"], bare)
    for p in bare.iterdir():
        if p.name.startswith(("tokenizer", "special_tokens", "vocab", "merges")):
            p.unlink()
    assert main(["eval", "--model", str(bare), "--benchmark", "micro", "--out", str(tmp_path / "e")]) == 2
    _one_line(capsys, f"no tokenizer in {bare}")


def test_an_absurd_step_count_is_refused_before_it_starts(tmp_path, micro_pair, capsys):
    assert main(["unlearn", "--model", str(micro_pair["target"]), "--benchmark", "micro", "--method", "npo",
                 "--set", "epochs=1e9", "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert "optimiser steps (1,000,000,000 epochs x" in err and "step_ceiling=100,000" in err and err.count("\n") == 1
    assert not (tmp_path / "u").exists()


def test_duplicate_rows_are_counted_in_a_warning(tmp_path, capsys):
    from obliviate import benchmark_from_files

    rows = [{"question": f"Who wrote book {i}?", "answer": f"Author {i}.", "subject": f"A{i // 2}"} for i in range(8)]
    (tmp_path / "data.json").write_text(json.dumps(rows + rows[5:7]))
    (tmp_path / "forget.json").write_text(json.dumps(rows[:2]))
    b = benchmark_from_files(tmp_path / "data.json", tmp_path / "forget.json")
    assert any("2 duplicate row(s) in retain" in w for w in b.meta["warnings"])
    main(["train", "--model", "micro", "--data", str(tmp_path / "data.json"), "--forget", str(tmp_path / "forget.json"),
          "--epochs", "1", "--cache", str(tmp_path / "cache")])
    assert "obliviate: warning: benchmark data-forget: 2 duplicate row(s) in retain" in capsys.readouterr().err


def test_sigterm_during_the_demo_leaves_nothing_behind(tmp_path):
    env = {**os.environ, "OBLIVIATE_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "obliviate.cli", "demo", "--model", "micro", "--benchmark", "micro",
                             "--attacks", "none", "--out", "out", "--cache", str(tmp_path / "cache")], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".out.tmp-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.tmp-*")), "the demo never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and b"terminated; no output was written" in err
    assert not list(tmp_path.glob(".out*")) and not (tmp_path / "out").exists()


def test_a_sigterm_whose_exception_was_lost_still_writes_nothing(tmp_path, monkeypatch):
    """Python drops an exception a signal handler raises inside a finaliser ("Exception ignored in ..."): the run
    then goes on, and the output it would have written must still not appear."""
    import gc

    from obliviate.core import outputs

    monkeypatch.setattr(outputs, "_termination_requested", False)

    class Finaliser:
        def __del__(self):
            outputs.request_termination()  # what the CLI's handler does when SIGTERM lands here

    try:
        with outputs.atomic_dir(tmp_path / "out") as tmp:
            (tmp / "results.json").write_text("{}")
            Finaliser()  # its __del__ raises, and Python only prints that it ignored it
            gc.collect()
        raise AssertionError("the block's output was moved into place after a SIGTERM")
    except outputs.Terminated:
        pass
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_train_prints_valid_json_with_deepspeed_installed(tmp_path):
    import importlib.util

    assert importlib.util.find_spec("deepspeed"), "the test extra installs DeepSpeed, whose import printed to stdout"
    env = {k: v for k, v in os.environ.items() if k != "DS_ACCELERATOR"}
    out = subprocess.run([sys.executable, "-m", "obliviate.cli", "train", "--model", "micro", "--benchmark", "micro",
                          "--cache", str(tmp_path / "cache")], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    paths = json.loads(out.stdout)
    assert set(paths) >= {"target", "oracle"}
