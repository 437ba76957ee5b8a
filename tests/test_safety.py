"""Never lose a user's data: outputs that never replace what obliviate did not write, a cache that verifies what it
hands back, stale temporary folders cleaned, and a one-line error (exit 2, nothing written, no model loaded) for
every bad input."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

import obliviate.models
from obliviate.cli import main
from obliviate.outputs import MARKER


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code, err, match):
    assert code == 2, err
    assert err.startswith("obliviate: error: ") and err.count("\n") == 1, err
    assert match in err, err


class Loaded(Exception):
    """Raised instead of loading a model: the command got past every input check."""


@pytest.fixture()
def no_loading(monkeypatch):
    def sentinel(*a, **k):
        raise Loaded()

    monkeypatch.setattr(obliviate.models, "load_model", sentinel)


@pytest.fixture()
def cache_env(micro_pair, monkeypatch):
    """The session's micro cache as the command's cache (as `--cache` would set it)."""
    monkeypatch.setenv("OBLIVIATE_CACHE", str(micro_pair["cache"]))
    return micro_pair


def _users_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    return out


def _command(kind, micro_pair, out):
    t, o = str(micro_pair["target"]), str(micro_pair["oracle"])
    cache = ["--cache", str(micro_pair["cache"])]
    return {
        "unlearn": ["unlearn", "--model", t, "--set", "max_steps=1", "--out", str(out)],
        "eval": ["eval", "--model", t, "--out", str(out)],
        "attack": ["attack", "--model", t, "--target", t, "--oracle", o, "--attack", "multi_hop", "--out", str(out)],
        "demo": [*cache, "demo", "--model", "micro", "--benchmark", "micro", "--attacks", "none", "--out", str(out)],
        "curve": [*cache, "curve", "sustainability", "--model", "micro", "--benchmark", "micro", "--requests", "2",
                  "--out", str(out)],
    }[kind]


COMMANDS = ["unlearn", "eval", "attack", "demo", "curve"]


@pytest.mark.parametrize("kind", COMMANDS)
def test_an_existing_output_is_never_replaced_unless_obliviate_wrote_it(kind, tmp_path, capsys, cache_env,
                                                                        no_loading):
    mine = _users_folder(tmp_path)
    code, _, err = run(_command(kind, cache_env, mine), capsys)
    one_line_error(code, err, "already exists and is not empty")
    code, _, err = run(_command(kind, cache_env, mine) + ["--overwrite"], capsys)
    one_line_error(code, err, "was not written by obliviate")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    code, _, err = run(_command(kind, cache_env, a_file) + ["--overwrite"], capsys)
    one_line_error(code, err, "is an existing file")
    assert (mine / "thesis.tex").read_text() == "years of work" and a_file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.txt"]  # no temporary folder either


@pytest.mark.parametrize("kind", COMMANDS)
def test_an_output_may_not_hold_or_sit_inside_the_inputs_or_the_cache(kind, tmp_path, capsys, cache_env,
                                                                      no_loading):
    cache = cache_env["cache"]
    code, _, err = run(_command(kind, cache_env, cache / "models" / "mine"), capsys)
    one_line_error(code, err, "lies inside the cache")
    code, _, err = run(_command(kind, cache_env, cache.parent) + ["--overwrite"], capsys)
    one_line_error(code, err, "would contain or replace the")  # the cache (and the cached model in it)
    if kind in ("unlearn", "eval", "attack"):  # the input model is the cached target itself
        code, _, err = run(_command(kind, cache_env, cache_env["target"]) + ["--overwrite"], capsys)
        assert code == 2 and ("would contain or replace the model" in err or "inside the cache" in err), err
    code, _, err = run(_command(kind, cache_env, ".") + ["--overwrite"], capsys)
    one_line_error(code, err, "is the current folder")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run(_command(kind, cache_env, blocker / "out"), capsys)
    one_line_error(code, err, "is a file, not a folder")


def test_overwrite_replaces_an_earlier_obliviate_output_only(tmp_path, capsys, micro_pair):
    out = tmp_path / "e"
    args = ["eval", "--model", str(micro_pair["target"]), "--out", str(out)]
    assert run(args, capsys)[0] == 0 and (out / MARKER).is_file()
    first = json.loads((out / "results.json").read_text())["models"]
    (out / "extra.txt").write_text("from the earlier run")
    assert run(args + ["--overwrite"], capsys)[0] == 0
    assert json.loads((out / "results.json").read_text())["models"] == first and not (out / "extra.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_a_model_folder_inside_the_output_is_an_input_that_cannot_be_replaced(tmp_path, capsys, micro_pair):
    shutil.copytree(micro_pair["target"], tmp_path / "run" / "target")
    (tmp_path / "run" / MARKER).write_text("{}")  # even an obliviate output is not replaced when it holds the input
    code, _, err = run(["unlearn", "--model", str(tmp_path / "run" / "target"), "--set", "max_steps=1",
                        "--out", str(tmp_path / "run"), "--overwrite"], capsys)
    one_line_error(code, err, "would contain or replace the model")
    assert (tmp_path / "run" / "target" / "model.safetensors").is_file()


def test_the_cache_verifies_what_it_hands_back(tmp_path, micro_pair, micro_bench, capsys):
    """A cache entry whose weights were replaced, or that another command wrote, is detected by its manifest and
    trained again; the retrained weights are the recipe's (training is deterministic)."""
    from obliviate import load_model, save_model, train_pair
    from obliviate.models import weights_digest

    cache = tmp_path / "cache"
    shutil.copytree(micro_pair["cache"], cache)
    entry = cache / "models" / micro_pair["target"].name
    good = weights_digest(entry)
    shutil.copy(micro_pair["oracle"] / "model.safetensors", entry / "model.safetensors")  # other weights
    paths = train_pair("micro", micro_bench, roles=("target",), cache=cache)
    assert paths["target"] == entry and weights_digest(entry) == good
    assert "its weights are not the ones it was trained to" in capsys.readouterr().err
    oracle, tok = load_model(micro_pair["oracle"])
    save_model(oracle, tok, entry, {"method": "npo"}, overwrite=True)  # as an unlearning run would write it
    assert train_pair("micro", micro_bench, roles=("target",), cache=cache)["target"] == entry
    assert weights_digest(entry) == good and "its recipe key differs" in capsys.readouterr().err


def test_a_killed_run_leaves_a_temporary_folder_that_the_next_run_removes(tmp_path, micro_pair):
    env = {**os.environ, "OBLIVIATE_QUIET": "1"}
    args = [sys.executable, "-m", "obliviate.cli", "eval", "--model", str(micro_pair["target"])]
    proc = subprocess.Popen(args + ["--out", str(tmp_path / "first")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, temp = time.time() + 120, []
    while not temp and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        temp = list(tmp_path.glob(".first.tmp-*"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert temp and temp[0].exists() and (temp[0] / MARKER).is_file()  # what kill -9 leaves behind
    foreign = tmp_path / ".other.tmp-1-abc"  # not ours (no marker): never touched
    foreign.mkdir()
    live = tmp_path / f".live.tmp-{os.getpid()}-abc"  # ours, but its process is alive: never touched
    live.mkdir()
    (live / MARKER).write_text(json.dumps({"host": __import__("socket").gethostname()}))
    subprocess.run(args + ["--out", str(tmp_path / "second")], env=env, check=True, capture_output=True)
    assert not temp[0].exists() and foreign.exists() and live.exists()
    assert not (tmp_path / "first").exists() and (tmp_path / "second" / "results.json").is_file()


def test_disk_space_is_checked_before_the_work_and_a_full_disk_leaves_nothing(tmp_path, capsys, micro_pair,
                                                                                monkeypatch):
    import errno
    from collections import namedtuple

    import obliviate.outputs

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(obliviate.outputs.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    code, _, err = run(["unlearn", "--model", str(micro_pair["target"]), "--out", str(tmp_path / "u")], capsys)
    one_line_error(code, err, "free on")
    monkeypatch.undo()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "u" / "model.safetensors"))

    import transformers

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", full)
    code, _, err = run(["unlearn", "--model", str(micro_pair["target"]), "--set", "max_steps=1",
                        "--out", str(tmp_path / "u")], capsys)
    one_line_error(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_is_an_error_before_any_work(tmp_path, capsys, micro_pair, no_loading, monkeypatch):
    import obliviate.outputs

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: deny as the kernel would for any other user
        real = os.access
        monkeypatch.setattr(obliviate.outputs.os, "access",
                            lambda p, mode: False if str(p) == str(ro) and mode & os.W_OK else real(p, mode))
    code, _, err = run(["unlearn", "--model", str(micro_pair["target"]), "--out", str(ro / "u")], capsys)
    one_line_error(code, err, "permission denied")
    assert list(ro.iterdir()) == []


# ------------------------------------------------------------------------------------- wrong results, exit code 0
BAD_OPTIONS = [  # (command tail, what the error must name)
    (["--set", "epochs=0"], "epochs=0: must be an integer >= 1"),
    (["--set", "epochs=-1"], "epochs=-1"),
    (["--set", "max_steps=-3"], "max_steps=-3"),
    (["--set", "epochs=1.5"], "epochs='1.5': expected an integer"),
    (["--set", "lr=abc"], "lr='abc': expected a number"),
    (["--set", "lr=0"], "lr=0.0: must be a number > 0"),
    (["--set", "lr=-1e-3"], "lr=-0.001"),
    (["--set", "lr=nan"], "expected a finite number"),
    (["--set", "beta=0"], "beta=0.0: must be a number > 0"),
    (["--set", "batch_size=0"], "batch_size=0"),
    (["--set", "keep_best=gap"], "keep_best='gap' needs eval_every > 0"),
    (["--set", "keep_best=best"], "keep_best='best': must be one of 'none', 'gap'"),
    (["--set", "lora_merge=maybe"], "lora_merge='maybe': expected true or false"),
    (["--set", "betta=1"], "unknown option(s) betta"),
    (["--set", "noequals"], "--set expects KEY=VALUE"),
    (["--method", "localized", "--set", "loss=rmu"], "loss='rmu': must be one of"),
    (["--method", "localized", "--set", "loss_options={beta: -1}"], "beta=-1.0: must be a number > 0"),
    (["--method", "retrain", "--set", "lora_rank=4"], "LoRA does not apply"),
    (["--seed", "2", "--set", "seed=3"], "disagree"),
]


@pytest.mark.parametrize("tail,match", BAD_OPTIONS, ids=[" ".join(t) for t, _ in BAD_OPTIONS])
def test_options_that_would_give_wrong_results_are_errors(tail, match, tmp_path, capsys, micro_pair, no_loading):
    code, _, err = run(["unlearn", "--model", str(micro_pair["target"]), "--out", str(tmp_path / "u"), *tail], capsys)
    one_line_error(code, err, match)
    assert list(tmp_path.iterdir()) == []


def test_the_help_example_lr_5e_4_is_a_number(tmp_path, capsys, micro_pair, no_loading):
    from obliviate.methods import method_config

    assert method_config("npo", {"lr": "5e-4"}).lr == 5e-4  # YAML reads 5e-4 as text
    with pytest.raises(Loaded):  # past every check: the command goes on to load the model
        main(["unlearn", "--model", str(micro_pair["target"]), "--set", "lr=5e-4", "--out", str(tmp_path / "u")])


BAD_INPUTS = [  # (argv builder, match); each must fail before any model is loaded
    (lambda t, d: ["train", "--model", "micro", "--benchmark", "micro", "--epochs", "-1"], "epochs=-1"),
    (lambda t, d: ["train", "--model", "micro", "--benchmark", "micro", "--lr", "-0.1"], "lr=-0.1"),
    (lambda t, d: ["train", "--model", "micro", "--benchmark", "micro", "--epochs", "1.5"],
     "argument --epochs: invalid int value: '1.5'"),
    (lambda t, d: ["train", "--data", str(d / "latin1.jsonl"), "--forget", str(d / "forget.jsonl")],
     "latin1.jsonl is not UTF-8 text"),
    (lambda t, d: ["eval", "--model", "nothere/model", "--benchmark", "micro", "--out", str(d / "o")],
     "model path nothere/model does not exist"),
    (lambda t, d: ["eval", "--model", str(d / "broken"), "--benchmark", "micro", "--out", str(d / "o")],
     "config.json is not valid JSON"),
    (lambda t, d: ["eval", "--model", t, "--out", str(d / "latin1.jsonl" / "o")], "is a file, not a folder"),
    (lambda t, d: ["eval", "--model", t, "--seed", "-1", "--out", str(d / "o")], "argument --seed: must be >= 0"),
    (lambda t, d: ["eval", "--model", t, "--lm-eval", "x", "--lm-eval-limit", "-5", "--out", str(d / "o")],
     "argument --lm-eval-limit: must be >= 0"),
    (lambda t, d: ["curve", "sustainability", "--requests", "1", "--out", str(d / "o")], "--requests: between 2"),
    (lambda t, d: ["curve", "scalability", "--fractions", "0.5,0.1", "--out", str(d / "o")], "increasing fractions"),
    (lambda t, d: ["attack", "--model", t, "--set", "relearn.steps=0,ten", "--out", str(d / "o")],
     "steps='0,ten': must be a comma-separated list of integers"),
    (lambda t, d: ["attack", "--model", t, "--set", "quantize.bits=3,32", "--out", str(d / "o")],
     "bits='3,32'"),
    (lambda t, d: ["ls", "nothing"], "unknown table 'nothing'"),
    (lambda t, d: ["demo", "--benchmark-seed", "x"], "argument --benchmark-seed: invalid int value"),
    (lambda t, d: ["eval", "--model", t, "--benchmark-seed", "1", "--out", str(d / "o")],
     "--benchmark-seed needs --benchmark"),
]


@pytest.fixture()
def bad_files(tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    (d / "latin1.jsonl").write_bytes(json.dumps({"question": "Où?", "answer": "Là."}, ensure_ascii=False)
                                     .encode("latin-1") + b"\n")
    (d / "forget.jsonl").write_text(json.dumps({"question": "Où?", "answer": "Là."}) + "\n")
    (d / "broken").mkdir()
    (d / "broken" / "config.json").write_text('{"model_type": "llama",')
    return d


@pytest.mark.parametrize("argv,match", BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_inputs_are_one_line_errors_before_any_model_is_loaded(argv, match, bad_files, capsys, micro_pair,
                                                                  no_loading, monkeypatch):
    import obliviate.train

    monkeypatch.setattr(obliviate.train, "train_pair", lambda *a, **k: (_ for _ in ()).throw(Loaded()))
    code, _, err = run(argv(str(micro_pair["target"]), bad_files), capsys)
    one_line_error(code, err, match)
    assert not (bad_files / "o").exists()


# ------------------------------------------------------------------------------------- the data a model was trained on
def test_seed_seeds_the_run_and_the_recorded_benchmark_is_reused(tmp_path, capsys, micro_pair):
    t = str(micro_pair["target"])
    assert run(["unlearn", "--model", t, "--seed", "1", "--set", "max_steps=2", "--out", str(tmp_path / "u")],
               capsys)[0] == 0
    trained = json.loads((micro_pair["target"] / "obliviate.json").read_text())["benchmark"]
    meta = json.loads((tmp_path / "u" / "obliviate.json").read_text())
    assert meta["benchmark"]["fingerprint"] == trained["fingerprint"]  # the facts the target learned, not others
    assert meta["unlearning"]["config"]["seed"] == 1 and meta["seed"] == 1
    # the unlearned model records its benchmark too: eval needs no --benchmark, and another one is refused
    assert run(["eval", "--model", str(tmp_path / "u"), "--out", str(tmp_path / "e")], capsys)[0] == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert res["benchmark"]["name"] == "micro-forget10" and res["seed"] == 0
    code, _, err = run(["eval", "--model", str(tmp_path / "u"), "--benchmark", "micro", "--benchmark-seed", "1",
                        "--out", str(tmp_path / "x")], capsys)
    one_line_error(code, err, "was trained on benchmark micro-forget10, not micro-forget10-seed1")
    code, _, err = run(["eval", "--model", "micro", "--out", str(tmp_path / "x")], capsys)
    one_line_error(code, err, "records no benchmark; name one with --benchmark")


def test_benchmark_names_identify_the_data():
    from obliviate import load_benchmark

    assert load_benchmark("micro").name == "micro-forget10"
    assert load_benchmark("people:forget05").name == "people-forget05"
    assert load_benchmark("micro", seed=2).name == "micro-forget10-seed2"
    a, b = load_benchmark("people:forget05"), load_benchmark("people:forget10")
    assert a.family() == b.family() and a.fingerprint() != b.fingerprint()  # the same people, another forget split
    assert load_benchmark("micro", seed=2).family() != load_benchmark("micro").family()


def _rows(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_a_forget_request_must_be_part_of_the_data(tmp_path):
    from obliviate import ObliviateError, benchmark_from_files

    data = _rows(tmp_path / "data.jsonl", [{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(5)])
    forget = _rows(tmp_path / "forget.jsonl", [{"question": "Q1?", "answer": "A1."},
                                               {"question": "Never trained?", "answer": "No."}])
    with pytest.raises(ObliviateError, match=r"1 row\(s\) match no question in data .*row 2: 'Never trained\?'"):
        benchmark_from_files(data, forget)
    bench = benchmark_from_files(data, forget, drop_unmatched=True)
    assert [r.question for r in bench.forget] == ["Q1?"] and bench.meta["forget_dropped"] == 1
    # the target is trained on exactly the user's data: nothing from the forget file is added
    assert sorted(r.question for r in bench.training_qa(include_forget=True)) == [f"Q{i}?" for i in range(5)]
    other = _rows(tmp_path / "other.jsonl", [{"question": "Q1?", "answer": "Something else."}])
    with pytest.raises(ObliviateError, match="the answer differs"):
        benchmark_from_files(data, other)


# ------------------------------------------------------------------------------------------- fuzz: --set and rows
_VALUES = ["0", "-1", "1", "2", "1.5", "1e-3", "5e-4", "-0.5", "abc", "", "true", "false", "null", "nan", "inf",
           "[1, 2]", "{a: 1}", "{", "1,2", "0,ten", "none", "gap", "kl", "é", "9" * 30, "1_000", "0x10", "=", "'x'"]


def test_fuzz_set_values_give_a_one_line_error_or_a_valid_config(tmp_path, capsys, micro_pair, no_loading):
    from dataclasses import fields

    from obliviate.methods import METHODS, method_config

    rng = random.Random(0)
    names = sorted(METHODS)
    reached = 0
    for _ in range(400):
        method = rng.choice(names)
        keys = [f.name for f in fields(METHODS[method].config)] + ["nonsense"]
        sets = [f"{rng.choice(keys)}={rng.choice(_VALUES)}" for _ in range(rng.randint(1, 3))]
        argv = ["unlearn", "--model", str(micro_pair["target"]), "--method", method, "--out", str(tmp_path / "u")]
        for s in sets:
            argv += ["--set", s]
        try:
            code = main(argv)
        except Loaded:  # every option was accepted: the config must satisfy every declared constraint
            reached += 1
            cfg = method_config(method, dict(s.split("=", 1) for s in sets))
            assert cfg.epochs >= 1 if hasattr(cfg, "epochs") and cfg.epochs is not None else True
            assert getattr(cfg, "lr", None) is None or cfg.lr > 0
            continue
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("obliviate: error: ") and err.count("\n") == 1, (sets, err)
    assert reached > 20  # the fuzzer also reaches valid configurations
    from obliviate.attacks import ATTACKS

    for _ in range(150):  # attack options likewise
        attack = rng.choice(sorted(ATTACKS))
        keys = [f.name for f in fields(ATTACKS[attack].config)] + ["nonsense"]
        argv = ["attack", "--model", str(micro_pair["target"]), "--attack", attack, "--out", str(tmp_path / "a"),
                "--set", f"{attack}.{rng.choice(keys)}={rng.choice(_VALUES)}"]
        capsys.readouterr()
        try:
            code = main(argv)
        except Loaded:
            continue
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("obliviate: error: ") and err.count("\n") == 1, (argv, err)
    assert list(tmp_path.iterdir()) == []


def test_fuzz_malformed_rows_give_a_one_line_error_or_records(tmp_path, capsys, monkeypatch):
    import obliviate.train

    monkeypatch.setattr(obliviate.train, "train_pair", lambda *a, **k: (_ for _ in ()).throw(Loaded()))
    rng = random.Random(1)
    pieces = [None, 1, 2.5, "", "text", [], ["a"], [1], {}, {"x": 1}, True, "é\u2028"]
    for i in range(150):
        row = {k: rng.choice(pieces) for k in rng.sample(["question", "answer", "perturbed_answer", "value",
                                                         "paraphrased_answer", "id"], rng.randint(0, 6))}
        if rng.random() < 0.5:
            row = {"question": "Q?", "answer": "A.", **row}
        raw = rng.choice([json.dumps([row]), json.dumps(row), json.dumps(row)[:-1], json.dumps([row, 3]), "[]",
                          json.dumps(row) + "\n{"])
        data = tmp_path / f"d{i}.jsonl"
        data.write_text(raw)
        try:
            code = main(["train", "--data", str(data), "--forget", str(data)])
        except Loaded:
            continue
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("obliviate: error: ") and err.count("\n") == 1, (raw, err)


# ------------------------------------------------------------------------------------------------- small things
def test_cache_is_accepted_after_the_command(capsys, micro_pair):
    code, out, _ = run(["train", "--model", "micro", "--benchmark", "micro", "--cache", str(micro_pair["cache"])],
                       capsys)
    assert code == 0 and json.loads(out)["target"] == str(micro_pair["target"])


def test_progress_is_visible_when_output_is_not_a_terminal(capsys, monkeypatch, micro_models, micro_bench):
    from obliviate import run_attacks

    monkeypatch.delenv("OBLIVIATE_QUIET")
    target, oracle, tok = micro_models
    run_attacks({"m": target}, tok, micro_bench, target=target, oracle=oracle, attacks="multi_hop,quantize")
    err = capsys.readouterr().err
    assert "attacks: 0/6 (0 %)" in err and "attacks: 6/6 (100 %)" in err  # plain lines, not a silent bar
    assert "multi_hop on m" in err and "quantize on oracle" in err  # naming the attack and the model


def test_ls_help_lists_every_table_and_ls_prints_a_methods_options(capsys):
    from obliviate.cli import LS_TABLES, build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["ls"].format_help()
    assert all(t in help_text for t in LS_TABLES)
    code, out, _ = run(["ls", "npo"], capsys)
    assert code == 0 and "beta" in out and "a number > 0" in out and "retain_weight" in out
    code, out, _ = run(["ls", "relearn"], capsys)
    assert code == 0 and "steps" in out and "--set relearn.KEY=VALUE" in out


def test_the_final_line_lists_everything_written(tmp_path, capsys, micro_pair):
    code, out, _ = run(["eval", "--model", str(micro_pair["target"]), "--out", str(tmp_path / "e")], capsys)
    last = out.strip().splitlines()[-1]
    assert code == 0 and last.startswith(f"wrote {tmp_path / 'e'}")
    assert all(f in last for f in ("results.json", "examples.jsonl", "report.html", "config.yaml"))
