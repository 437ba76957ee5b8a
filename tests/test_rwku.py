"""RWKU-style real-knowledge probes: the loader, the scoring, and the unlearning data they give."""
import json

import pytest

from obliviate import ObliviateError
from obliviate.data.rwku import BUILTIN_PROBES, load_probes
from obliviate.evals.rwku import evaluate_rwku
from obliviate.methods import UnlearnData


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
def test_builtin_probes_are_consistent(model):
    from obliviate.data.rwku import PROBE_SETS

    probes = PROBE_SETS[model]
    assert load_probes(model) is probes
    for t in probes.values():
        assert t.fill or t.qa
        assert all(n in probes and n != t.name for n in t.neighbours)
        assert t.passages


def test_probe_file_errors_name_target_and_field(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"Ada Lovelace": {"qa": [["Who wrote the first program?"]]}}))
    with pytest.raises(ObliviateError, match=r"target 'Ada Lovelace': 'qa' must be a list of \[prompt, answer\]"):
        load_probes(f)
    f.write_text(json.dumps({"Ada Lovelace": {"qa": [["Who?", "Ada"]], "neighbours": ["Babbage"]}}))
    with pytest.raises(ObliviateError, match=r"neighbour\(s\) \['Babbage'\] are not targets"):
        load_probes(f)
    with pytest.raises(ObliviateError, match="unknown probe target 'Nobody'"):
        evaluate_rwku(None, None, "Nobody")


class _Echo:
    """A stand-in scorer whose 'model' answers with a fixed text per prompt."""

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, max_new_tokens):
        return [self.answers.get(p, "I am not sure.") for p in prompts]


def test_accuracy_counts_answers_in_the_generation(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({
        "A": {"fill": [["A lives in", "Rome"]], "qa": [["Where does A live?", "Rome"]], "neighbours": ["B"]},
        "B": {"fill": [["B lives in", "Oslo"], ["B works as a", "baker"]], "neighbours": ["A"]}}))
    probes = load_probes(f)

    class Tok:  # no chat template: questions become "Question: ...\nAnswer:"
        chat_template = None

    echo = _Echo({"A lives in": " rome, Italy", "B lives in": "Oslo.", "B works as a": "teacher"})
    res = evaluate_rwku(None, Tok(), "A", probes, scorer=echo)
    assert res["metrics"] == {"rwku_forget_fill": 1.0, "rwku_forget_qa": 0.0, "rwku_neighbour_fill": 0.5}
    assert len(res["rows"]) == 4


def test_unlearn_data_forgets_the_target_and_retains_neighbours(micro_models):
    _, _, tok = micro_models
    data = UnlearnData.from_probes("Albert Einstein", tok)
    assert len(data.forget) == len(BUILTIN_PROBES["Albert Einstein"].passages)
    assert data.retain and all("Einstein" not in ex.target for ex in data.retain)


def test_cli_unlearns_and_evaluates_a_probe_target(tmp_path, micro_pair, capsys):
    from obliviate.cli import main

    out = tmp_path / "u"
    assert main(["unlearn", "--model", str(micro_pair["target"]), "--rwku", "Harry Potter", "--method", "ga",
                 "--set", "max_steps=2", "--out", str(out)]) == 0
    meta = json.loads((out / "obliviate.json").read_text())
    assert meta["rwku"] == "Harry Potter" and meta["benchmark"]["name"] == "micro-forget10"  # what it was trained on
    assert main(["eval", "--model", str(out), "--benchmark", "micro", "--rwku", "Harry Potter",
                 "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "results.json").read_text())["models"]["u"]["metrics"]
    assert {"rwku_forget_qa", "rwku_neighbour_fill", "rwku_neighbour_qa"} <= set(m)
    assert main(["eval", "--model", str(out), "--benchmark", "micro", "--rwku", "Nobody",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown probe target 'Nobody'" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
def test_builtin_probes_share_no_wording_with_any_passage(model):
    """The probes measure knowledge, not the wording unlearned (forget passages) or kept (neighbour passages): no
    probe (a fill-in prompt with its answer, a question) shares a sentence or a run of seven words with a passage."""
    import re

    from obliviate.data.rwku import PROBE_SETS

    probes = PROBE_SETS[model]

    def words(text):
        return re.findall(r"[a-z0-9²]+", text.lower())

    def grams(text, n=7):
        w = words(text)
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    passages = [p for t in probes.values() for p in t.passages]
    sentences = {" ".join(words(s)) for p in passages for s in re.split(r"(?<=[.;!?])\s+", p) if words(s)}
    passage_grams = set().union(*(grams(p) for p in passages))
    for t in probes.values():
        assert t.passages, t.name
        for text in [f"{p} {a}" for p, a in t.fill] + [q for q, _ in t.qa] + [p for p, _ in t.fill]:
            assert " ".join(words(text)) not in sentences, (t.name, text)
            assert not grams(text) & passage_grams, (t.name, text, grams(text) & passage_grams)


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
def test_builtin_sets_have_the_power_to_separate_methods(model):
    """Enough targets and probes per side that intervals over targets can tell methods apart: at least 20 targets,
    each with at least 5 probes of its own and 5 of its neighbours', every neighbour a target of the set."""
    from obliviate.data.rwku import PROBE_SETS

    probes = PROBE_SETS[model]
    n = {name: len(t.fill) + len(t.qa) for name, t in probes.items()}
    assert len(probes) >= 20 and min(n.values()) >= 5
    for t in probes.values():
        assert t.neighbours and set(t.neighbours) <= set(probes) and t.name not in t.neighbours
        assert sum(n[x] for x in t.neighbours) >= 5, t.name
