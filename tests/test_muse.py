"""MUSE six-way evaluation: loaders on files in MUSE's public format, the four per-model criteria, and the
scalability / sustainability drivers."""
import json

import pytest

from obliviate import ObliviateError, UnlearnData, unlearn
from obliviate.evals.muse import MuseData, evaluate_muse, load_muse, rouge_l_f1, scalability, sustainability


@pytest.fixture(scope="module")
def muse_dir(tmp_path_factory, micro_bench):
    return MuseData.from_benchmark(micro_bench).write(tmp_path_factory.mktemp("muse") / "people")


def test_loader_reads_the_public_format(muse_dir, micro_bench):
    data = load_muse(muse_dir)
    assert len(data.knowmem_forget) == len(micro_bench.forget) and data.verbmem
    # privleak files may also be plain lists of strings, and any file JSON lines
    (muse_dir / "privleak" / "holdout.json").write_text(json.dumps(["a text", "another"]))
    rows = json.loads((muse_dir / "knowmem" / "retain_qa.json").read_text())
    (muse_dir / "knowmem" / "retain_qa.json").unlink()
    (muse_dir / "knowmem" / "retain_qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    again = load_muse(muse_dir)
    assert again.privleak["holdout"] == ["a text", "another"] and again.knowmem_retain == data.knowmem_retain
    (muse_dir / "knowmem" / "retain_qa.jsonl").unlink()
    (muse_dir / "knowmem" / "retain_qa.json").write_text(json.dumps(rows))
    MuseData.from_benchmark(micro_bench).write(muse_dir, overwrite=True)  # restore


def test_loader_errors_name_the_file_row_and_field(tmp_path, micro_bench):
    d = MuseData.from_benchmark(micro_bench).write(tmp_path / "m")
    rows = json.loads((d / "verbmem" / "forget.json").read_text())
    del rows[1]["gt"]
    (d / "verbmem" / "forget.json").write_text(json.dumps(rows))
    with pytest.raises(ObliviateError, match=r"verbmem/forget.json row 2: missing or empty field 'gt'"):
        load_muse(d)
    d = MuseData.from_benchmark(micro_bench).write(tmp_path / "m", overwrite=True)
    (d / "knowmem" / "forget_qa.json").unlink()
    with pytest.raises(ObliviateError, match=r"lacks knowmem/forget_qa.json"):
        load_muse(d)
    with pytest.raises(ObliviateError, match="MUSE folder .* does not exist"):
        load_muse(tmp_path / "nothing")


def test_rouge_l_f1_by_hand():
    # reference "the cat sat on the mat" (6 tokens), prediction "the cat sat" (3): LCS 3, P 1, R 0.5 -> F1 2/3
    assert rouge_l_f1(["the cat sat"], ["the cat sat on the mat"])[0] == pytest.approx(2 / 3)


def test_target_remembers_oracle_does_not(micro_models, muse_dir):
    target, oracle, tok = micro_models
    data = load_muse(muse_dir)
    o = evaluate_muse(oracle, tok, data)
    t = evaluate_muse(target, tok, data, oracle=o)
    assert o.metrics["muse_privleak"] is None and any("no oracle" in n for n in o.notes)
    assert t.metrics["muse_verbmem_forget"] > o.metrics["muse_verbmem_forget"] + 0.2
    # MUSE's prompt ends "Answer: " with a space, which a byte-level BPE model trained on "Answer:" + " X" reads as
    # a stray token, so the target answers less well than to its own format, but still far better than the oracle
    assert t.metrics["muse_knowmem_forget"] > o.metrics["muse_knowmem_forget"] + 0.2
    assert t.metrics["muse_utility"] > 0.4 and o.metrics["muse_utility"] > 0.4  # both know the retain facts
    assert t.metrics["muse_privleak"] < -50  # MUSE's sign: the target still marks forget texts as members
    assert {r["split"] for r in t.rows} >= {"verbmem_forget", "knowmem_forget", "knowmem_retain", "privleak_forget"}


def test_scalability_and_sustainability(micro_models, micro_bench):
    target, _, tok = micro_models
    data = UnlearnData.from_benchmark(micro_bench, tok)
    muse = MuseData.from_benchmark(micro_bench)
    calls = []

    def run(model, forget):
        calls.append(len(forget))
        return unlearn(model, tok, UnlearnData(forget=forget, retain=data.retain), "npo", {"max_steps": 6})[0]

    def metrics(model, forget):
        return {"knowmem_forget": evaluate_muse(model, tok, muse).metrics["muse_knowmem_forget"]}

    half = data.forget[: len(data.forget) // 2]
    scal = scalability(target, tok, run, [half, data.forget], metrics)
    assert [r["forget_size"] for r in scal] == [len(half), len(data.forget)] and calls == [len(half), len(data.forget)]
    sust = sustainability(target, tok, run, [half, data.forget[len(half):]], metrics)
    assert [r["request"] for r in sust] == [0, 1, 2]
    assert sust[2]["knowmem_forget"] < sust[0]["knowmem_forget"]  # both requests together forget the set
    with pytest.raises(ObliviateError, match="request 2 is empty"):
        sustainability(target, tok, run, [half, []], metrics)


def test_curve_cli_sustainability(tmp_path, capsys, micro_pair):
    """`obliviate curve sustainability`: one row per request, the cumulative forget set grows, and the first
    request's NPO run lowers forget accuracy below the target's; the report shows the curve."""
    import json

    from obliviate.cli import main

    code = main(["--cache", str(micro_pair["cache"]), "curve", "sustainability", "--model", "micro", "--benchmark",
                 "micro", "--requests", "2", "--out", str(tmp_path / "c")])
    capsys.readouterr()
    assert code == 0
    res = json.loads((tmp_path / "c" / "results.json").read_text())
    rows = res["curves"][0]["rows"]
    assert [r["request"] for r in rows] == [0, 1, 2]
    assert rows[0]["forget_total"] == rows[1]["forget_total"] < rows[2]["forget_total"]
    assert rows[1]["forget_exact_match"] < rows[0]["forget_exact_match"]
    assert all(r["forget_ks_d"] is not None for r in rows) and "forget_quality" not in rows[0]  # D, not p: n-free
    assert "MUSE C6 sustainability" in (tmp_path / "c" / "report.html").read_text()
    code = main(["--cache", str(micro_pair["cache"]), "curve", "scalability", "--model", "micro", "--benchmark",
                 "micro", "--fractions", "1,0.5", "--out", str(tmp_path / "d")])
    assert code == 2 and "increasing fractions" in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_muse_as_published_file_names_few_shot_and_a_row_limit(tmp_path, micro_bench):
    """MUSE News names its retain QA ``retain2_qa.json`` and ships few-shot files; a row limit keeps the first N."""
    from obliviate.evals.muse import knowmem_prompt

    d = MuseData.from_benchmark(micro_bench, shots=3).write(tmp_path / "news")
    (d / "knowmem" / "retain_qa.json").rename(d / "knowmem" / "retain2_qa.json")
    (d / "knowmem" / "retain_qa_icl.json").rename(d / "knowmem" / "retain2_qa_icl.json")
    data = load_muse(d, limit=2)
    assert len(data.knowmem_retain) == 2 and len(data.verbmem) == 2 and len(data.privleak["forget"]) == 2
    assert data.icl_retain and data.icl_forget  # the few-shot examples are read with their QA file
    shots = [("Q1?", "A1."), ("Q2?", "A2.")]
    assert knowmem_prompt("Q?", shots) == "Question: Q1?\nAnswer: A1.\n\nQuestion: Q2?\nAnswer: A2.\n\nQuestion: Q?\nAnswer: "


def test_eval_runs_muse_alone_on_a_model_with_no_benchmark(tmp_path, micro_pair, micro_bench, capsys):
    """A pretrained model evaluated on MUSE files needs no QA benchmark (the micro target's folder is copied
    without its benchmark record, as a model from elsewhere would be)."""
    import shutil

    from obliviate.cli import main

    model = tmp_path / "plain"
    shutil.copytree(micro_pair["target"], model)
    meta = json.loads((model / "obliviate.json").read_text())
    del meta["benchmark"]
    (model / "obliviate.json").write_text(json.dumps(meta))
    d = MuseData.from_benchmark(micro_bench).write(tmp_path / "muse")
    assert main(["eval", "--model", str(model), "--muse", str(d), "--muse-limit", "3", "--out", str(tmp_path / "e")]) == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    m = res["models"]["plain"]["metrics"]
    assert "muse_verbmem_forget" in m and "forget_exact_match" not in m and res["config"]["muse_limit"] == 3
    # the numbers that were computed reach the console, each with its interval, and MUSE's time is measured
    ci = res["models"]["plain"]["metrics_ci"]
    assert all(ci[k] and ci[k][0] <= m[k] <= ci[k][1] for k in ("muse_verbmem_forget", "muse_knowmem_forget",
                                                                "muse_knowmem_retain", "muse_mia_min_k_auc"))
    assert res["timings"]["muse_plain"] > 1e-3
    table = capsys.readouterr().out
    assert f"{m['muse_verbmem_forget']:.3g} [" in table and "muse_mia_min_k_auc" in table
    assert main(["eval", "--model", str(model), "--out", str(tmp_path / "x")]) == 2  # nothing to evaluate
    assert "records no benchmark" in capsys.readouterr().err
