"""A run that breaks the model says so: the input model against the unlearned one on what both should keep, a
warning on stderr, in the ledger request, in its certificate and on the report's first screen; a gentle run that
keeps the retain facts gets none."""
import json

from obliviate.cli import main
from obliviate.audit.ledger import entries


def test_a_collapsing_run_warns_everywhere_a_user_looks(tmp_path, micro_pair, capsys):
    out = tmp_path / "u"
    assert main(["unlearn", "--model", str(micro_pair["target"]), "--method", "ga", "--benchmark", "micro",
                 "--set", "max_steps=30", "--set", "lr=1e-2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "obliviate: warning: retain exact match fell from 1.00 to" in err
    dmg = json.loads((out / "obliviate.json").read_text())["unlearning"]["damage"]
    retain = dmg["splits"]["retain"]
    assert retain["before"] - retain["after"] > 0.1 and retain["interval"][0] > 0.1
    ledger = tmp_path / "obliviate-ledger.sqlite"
    req = entries(ledger)[0]
    assert req["warnings"] and req["warnings"][0].startswith("retain exact match fell")
    assert main(["certify", req["request_id"], "--ledger", str(ledger), "--out", str(tmp_path / "cert")]) == 0
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert cert["warnings"] == req["warnings"] and cert["reasons"][0].startswith("WARNING: retain exact match")
    assert "Warning:</b> retain exact match fell" in (tmp_path / "cert" / "certificate.html").read_text()
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--oracle", str(micro_pair["oracle"]), "--out", str(tmp_path / "e")]) == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert res["input_model"]["path"] == str(micro_pair["target"])  # the input model, evaluated beside it
    assert res["warnings"][0].startswith("retain exact match fell")
    page = (tmp_path / "e" / "report.html").read_text()
    body = page[page.index("<body>"):]
    assert body.index("Warning</b>: retain exact match fell") < body.index("Verdict: u") < body.index("<table>")
    assert "What it cost</b>: retain exact match 1.00 →" in body and "input (before)" in body
    assert "input (before)" in capsys.readouterr().out  # the console table shows it too


def test_a_gentle_run_keeps_quiet(tmp_path, micro_pair, capsys):
    out = tmp_path / "u"
    assert main(["unlearn", "--model", str(micro_pair["target"]), "--method", "graddiff", "--benchmark", "micro",
                 "--set", "max_steps=2", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    dmg = json.loads((out / "obliviate.json").read_text())["unlearning"]["damage"]
    assert dmg["warnings"] == [] and set(dmg["splits"]) >= {"retain"}
    assert "warnings" not in entries(tmp_path / "obliviate-ledger.sqlite")[0]
