import json

import pytest

from obliviate import ObliviateError, benchmark_from_files, load_benchmark
from obliviate.data import PeopleConfig, generate_people, load_qa_file


def test_generator_is_deterministic_in_the_seed():
    a, b, c = generate_people(PeopleConfig(seed=3)), generate_people(PeopleConfig(seed=3)), generate_people(PeopleConfig(seed=4))
    assert a.forget == b.forget and a.retain == b.retain and a.texts == b.texts
    assert a.forget != c.forget


def test_splits_are_disjoint_people_and_nested_forget_sizes():
    sizes = {}
    people = {}
    for split, pct in (("forget01", 1), ("forget05", 5), ("forget10", 10)):
        bench = load_benchmark(f"people:{split}")
        f = {r.subject for r in bench.forget}
        r = {x.subject for x in bench.retain}
        h = {x.subject for x in bench.holdout}
        assert not (f & r) and not (f & h) and not (r & h)
        assert len(f) == pct  # 100 trained people
        assert len(f) + len(r) == 100
        sizes[split], people[split] = len(bench.forget), f
    assert people["forget01"] <= people["forget05"] <= people["forget10"]
    assert sizes == {"forget01": 6, "forget05": 30, "forget10": 60}


def test_records_carry_paraphrases_perturbations_and_two_hop_questions():
    bench = load_benchmark("people")
    for r in bench.forget + bench.retain:
        assert r.value in r.answer and r.value in r.paraphrased_answer
        assert len(r.perturbed_answers) == 3 and r.paraphrased_answer not in r.perturbed_answers
        assert len({r.paraphrased_answer, *r.perturbed_answers}) == 4  # three distinct false answers
        assert r.paraphrased_question and r.paraphrased_question != r.question
    hops = bench.multi_hop
    assert len(hops) == 2 * len(bench.texts["forget"])
    assert any(h.question.startswith("Where was the author of") for h in hops)
    # each biography states every value of its person, in forms of its own
    bio = bench.texts["forget"][0]
    facts = [r for r in bench.forget if r.subject == bio.subject]
    assert all(r.value in bio.text for r in facts)


@pytest.mark.parametrize("name", ["people", "micro"])
def test_no_evaluation_text_is_trained_on(name):
    """People v2: no paraphrased answer and no false answer appears verbatim in any training text (the target's
    QA answers and biographies), and names and titles used as false answers are never anyone's true value, so a
    model that never saw a person finds the true and the false answers equally unfamiliar."""
    bench = load_benchmark(name)
    training = [r.answer for r in bench.training_qa(include_forget=True)] + [t.text for t in bench.training_texts()]
    blob = "\n".join(training)
    people = bench.forget + bench.retain + bench.holdout
    assert not [r.paraphrased_answer for r in people if r.paraphrased_answer in blob]
    assert not [p for r in people for p in r.perturbed_answers if p in blob]
    true = {r.value for r in people if r.attribute in ("book", "mother", "father")}
    false = {p for r in people if r.attribute in ("book", "mother", "father") for p in r.perturbed_answers}
    assert not {v for v in true if any(v in p for p in false)}
    fathers = [r for r in people if r.attribute == "father"]
    assert all(p.split()[1] == r.value.split()[-1] for r in fathers for p in r.perturbed_answers)  # same surname


def test_utility_facts_are_never_retain_data(micro_bench):
    """World and neighbour facts measure utility: they are in no retain loss (TOFU), though the built-in models
    learn them with the rest of their training data; a user's --world file is evaluation-only altogether."""
    from obliviate import UnlearnData
    from obliviate.models import load_model

    _, tok = load_model("micro", corpus=micro_bench.all_text())
    data = UnlearnData.from_benchmark(micro_bench, tok)
    utility = {f" {r.answer}" for r in micro_bench.world + micro_bench.neighbours}
    assert not utility & {e.target for e in data.retain}
    assert utility <= {e.target for e in data.retrain_set}  # exact retraining reproduces the oracle's data
    assert set(micro_bench.world) <= set(micro_bench.training_qa(include_forget=False))
    # a pretrained model knows the real world facts already: it is fine-tuned on the invented neighbours only
    pretrained = micro_bench.training_qa(include_forget=True, pretrained=True)
    assert not set(micro_bench.world) & set(pretrained) and set(micro_bench.neighbours) <= set(pretrained)
    assert {e.target for e in data.retrain_world} == {f" {r.answer}" for r in micro_bench.world}


def test_bad_generator_options():
    with pytest.raises(ObliviateError, match="forget split"):
        load_benchmark("people:forget50")
    with pytest.raises(ObliviateError, match="unknown benchmark 'nope'"):
        load_benchmark("nope")
    with pytest.raises(ObliviateError, match=r"benchmark people: unknown option\(s\) colour"):
        load_benchmark("people", colour=1)


def _write(path, rows, jsonl=True):
    path.write_text("\n".join(json.dumps(r) for r in rows) if jsonl else json.dumps(rows))
    return path


ROWS = [{"question": f"Q{i}?", "answer": f"A{i}.", "paraphrased_answer": f"P{i}.",
         "perturbed_answer": [f"X{i}.", f"Y{i}."]} for i in range(5)]


@pytest.mark.parametrize("jsonl", [True, False])
def test_tofu_format_loads_from_json_and_jsonl(tmp_path, jsonl):
    recs = load_qa_file(_write(tmp_path / "d.json", ROWS, jsonl))
    assert [r.question for r in recs] == [f"Q{i}?" for i in range(5)]
    assert recs[2].perturbed_answers == ("X2.", "Y2.") and recs[2].paraphrased_answer == "P2."


def test_bad_data_files_name_file_row_and_field(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ObliviateError, match=r"empty\.jsonl is empty"):
        load_qa_file(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\n{"question": "c", "answer": \n')
    with pytest.raises(ObliviateError, match=r"bad\.jsonl line 2 is not valid JSON"):
        load_qa_file(bad)
    missing = _write(tmp_path / "missing.jsonl", [ROWS[0], {"question": "q"}])
    with pytest.raises(ObliviateError, match=r"missing\.jsonl row 2: missing or empty field 'answer'"):
        load_qa_file(missing)
    pert = _write(tmp_path / "pert.jsonl", [{"question": "q", "answer": "a", "perturbed_answer": [1]}])
    with pytest.raises(ObliviateError, match="'perturbed_answer' must be a list of strings"):
        load_qa_file(pert)
    uneven = _write(tmp_path / "uneven.json", [{"question": "q1", "answer": "a", "perturbed_answer": ["x", "y"]},
                                               {"question": "q2", "answer": "b", "perturbed_answer": ["z"]}])
    with pytest.raises(ObliviateError, match="uneven.json row 2: 1 perturbed answers, but earlier rows have 2"):
        load_qa_file(uneven)
    with pytest.raises(ObliviateError, match="does not exist"):
        load_qa_file(tmp_path / "nothere.jsonl")


def test_forget_set_must_overlap_the_data(tmp_path):
    data = _write(tmp_path / "data.jsonl", ROWS)
    forget = _write(tmp_path / "forget.jsonl", ROWS[:2])
    bench = benchmark_from_files(data, forget)
    assert [r.question for r in bench.retain] == ["Q2?", "Q3?", "Q4?"]
    stranger = _write(tmp_path / "stranger.jsonl", [{"question": "Who?", "answer": "Nobody."}])
    with pytest.raises(ObliviateError, match=r"forget set .*stranger\.jsonl overlaps nothing in data .*data\.jsonl"):
        benchmark_from_files(data, stranger)


def test_a_users_world_file_is_not_trained_on(tmp_path):
    data = _write(tmp_path / "d.jsonl", [{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(4)])
    forget = _write(tmp_path / "f.jsonl", [{"question": "Q1?", "answer": "A1."}])
    world = _write(tmp_path / "w.jsonl", [{"question": "Capital of France?", "answer": "Paris."}])
    bench = benchmark_from_files(data, forget, world=world)
    assert bench.world and not set(bench.world) & set(bench.training_qa(include_forget=True))


def test_a_calibration_file_must_hold_facts_never_trained_or_evaluated(tmp_path):
    from obliviate.data.loaders import rebuild

    data = _write(tmp_path / "data.jsonl", ROWS)
    forget = _write(tmp_path / "forget.jsonl", ROWS[:2])
    holdout = _write(tmp_path / "holdout.jsonl", [{"question": "H?", "answer": "h."}])
    cal = _write(tmp_path / "cal.jsonl", [{"question": "C1?", "answer": "c."}, {"question": "C2?", "answer": "d."}])
    bench = benchmark_from_files(data, forget, holdout, calibration=cal)
    assert [r.question for r in bench.calibration] == ["C1?", "C2?"]
    assert rebuild(bench.source).calibration == bench.calibration  # a model folder's record brings it back
    assert not {r.question for r in bench.calibration} & {r.question for r in bench.training_qa()}
    trained = _write(tmp_path / "trained.jsonl", [{"question": "C1?", "answer": "c."}, ROWS[3]])
    with pytest.raises(ObliviateError, match=r"calibration file .*trained\.jsonl row 2: its question is in the "
                                             r"training data"):
        benchmark_from_files(data, forget, holdout, calibration=trained)
    scored = _write(tmp_path / "scored.jsonl", [{"question": "H?", "answer": "h."}])
    with pytest.raises(ObliviateError, match=r"scored\.jsonl row 1: its question is in the holdout file"):
        benchmark_from_files(data, forget, holdout, calibration=scored)


def _tofu_layout(tmp_path, authors: int = 4, per: int = 20):
    """Rows in TOFU's layout: ``per`` consecutive questions per fictitious author, no author field; the forget
    request is the second author's rows."""
    rows = [{"question": f"Q{a}-{i}: what did author {a} write as work {i}?", "answer": f"Book {a}.{i}.",
             "paraphrased_answer": f"The book {a}.{i}.", "perturbed_answer": [f"Book {a}.{i + 1}."]}
            for a in range(authors) for i in range(per)]
    (tmp_path / "data.json").write_text(json.dumps(rows))
    (tmp_path / "forget.json").write_text(json.dumps(rows[per:2 * per]))
    return rows


def test_tofu_rows_are_grouped_by_author(tmp_path):
    """TOFU's files carry no author: --group tofu gives each block of 20 consecutive rows one subject, and the
    forget rows take the subject their data rows have; intervals then resample authors, not facts."""
    _tofu_layout(tmp_path)
    b = benchmark_from_files(tmp_path / "data.json", tmp_path / "forget.json", group="tofu")
    assert {r.subject for r in b.forget} == {"data rows 21-40"}
    assert len({r.subject for r in b.retain}) == 3 and len(b.retain) == 60
    assert "warnings" not in b.meta and b.meta["grouping"] == "tofu"
    (tmp_path / "dir").mkdir()  # the folder form takes the same rules
    (tmp_path / "dir" / "forget.json").write_text((tmp_path / "forget.json").read_text())
    (tmp_path / "dir" / "retain.json").write_text(json.dumps(json.loads((tmp_path / "data.json").read_text())[40:]))
    d = load_benchmark(str(tmp_path / "dir"), group="rows:10")
    assert len({r.subject for r in d.forget}) == 2 and len({r.subject for r in d.retain}) == 4
    # a subject field wins over the rule; field:NAME reads another field
    rows = [{**r, "author": f"A{i // 5}"} for i, r in enumerate(json.loads((tmp_path / "data.json").read_text()))]
    (tmp_path / "named.json").write_text(json.dumps(rows))
    assert len({r.subject for r in load_qa_file(tmp_path / "named.json", "field:author")}) == 16
    rows[0]["subject"] = "Someone"
    (tmp_path / "named.json").write_text(json.dumps(rows))
    assert load_qa_file(tmp_path / "named.json", "tofu")[0].subject == "Someone"


def test_rows_without_subjects_are_warned_about_and_bad_rules_named(tmp_path, capsys):
    from obliviate.cli import main

    _tofu_layout(tmp_path, authors=2)
    b = benchmark_from_files(tmp_path / "data.json", tmp_path / "forget.json")
    assert any("name no subject" in w and "--group" in w for w in b.meta["warnings"])
    assert "warnings" not in benchmark_from_files(tmp_path / "data.json", tmp_path / "forget.json", group="fact").meta
    with pytest.raises(ObliviateError, match="--group: unknown grouping 'authors'"):
        benchmark_from_files(tmp_path / "data.json", tmp_path / "forget.json", group="authors")
    with pytest.raises(ObliviateError, match=r"row 1: missing field 'author'"):
        load_qa_file(tmp_path / "data.json", "field:author")
    assert main(["train", "--model", "micro", "--benchmark", "micro", "--group", "tofu"]) == 2
    assert "--group applies to data files" in capsys.readouterr().err
