"""The request ledger (append-only, hash-chained, crash-safe) and the certificate (honest conclusions, verified
against the model files)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from obliviate.data.format import Example
from obliviate.ledger import check, entries, record_evidence, record_request, request

FORGET = [Example("Question: Where was Ann Lee born?\nAnswer:", " Ann Lee was born in Oslo."),
          Example("", "Ann Lee wrote The Long Night.")]


def _model(tmp_path, name="m", content=b"weights"):
    d = tmp_path / name
    d.mkdir()
    (d / "model.safetensors").write_bytes(content)
    return d


def test_requests_keep_hashes_not_text_and_the_ledger_refuses_edits(tmp_path):
    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={"beta": 0.1}, forget=FORGET, input_model="tiny", output_model=out)
    assert e["forget_rows"] == 2 and len(e["forget_sha256"]) == 2 and "forget_text" not in e
    assert "Oslo" not in path.read_bytes().decode("latin-1")  # only hashes are stored
    assert e["output_fingerprint"] == {"model.safetensors": __import__("hashlib").sha256(b"weights").hexdigest()}
    con = sqlite3.connect(path)
    for sql in ("UPDATE entries SET body = '{}'", "DELETE FROM entries"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    con.close()
    kept = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out,
                          keep_text=True)
    assert kept["forget_text"][0]["target"] == " Ann Lee was born in Oslo."
    assert check(path) == [] and [x["request_id"] for x in entries(path)] == [e["request_id"], kept["request_id"]]


def test_a_row_edited_behind_the_triggers_breaks_the_chain(tmp_path):
    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    for _ in range(3):
        record_request(path, method="ga", config={}, forget=FORGET, input_model="tiny", output_model=out)
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER entries_no_update")
    con.execute("UPDATE entries SET body = replace(body, '\"ga\"', '\"npo\"') WHERE seq = 2")
    con.commit()
    con.close()
    problems = check(path)
    assert len(problems) == 1 and "entry 2 does not match its hash chain" in problems[0]


WRITER = """
import sys
from obliviate.data.format import Example
from obliviate.ledger import record_request
for i in range(100000):
    record_request(sys.argv[1], method="npo", config={"i": i, "pad": "x" * 20000},
                   forget=[Example("q", "a %d" % i)] * 50, input_model="tiny", output_model=sys.argv[2])
    print(i, flush=True)
"""


def test_kill_9_during_writes_leaves_a_sound_ledger_up_to_the_last_finished_request(tmp_path):
    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(out)], stdout=subprocess.PIPE, text=True)
    done = -1
    deadline = time.time() + 60
    while done < 20 and time.time() < deadline:  # let it finish some appends, then kill it mid-stream
        done = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert check(path) == []
    rows = entries(path)
    assert [r["config"]["i"] for r in rows] == list(range(len(rows)))  # no gap, no half-written entry
    assert len(rows) >= done + 1  # every request it reported finished is there


def _evidence(forget_em_ci, verdicts):
    return {"source": "test", "metrics": {"forget_exact_match": 0.0}, "ci": {"forget_exact_match": forget_em_ci},
            "oracle_metrics": {"forget_exact_match": 0.0}, "oracle_ci": {"forget_exact_match": [0.0, 0.05]},
            "attacks": {a: {"verdict": v, "gain_over_oracle": 0.0, "interval": [0, 0]} for a, v in verdicts.items()}}


@pytest.mark.parametrize("ci, verdicts, conclusion", [
    ([0.0, 0.05], {"relearn": "indistinguishable from the oracle"}, "forgotten by the recorded evidence"),
    ([0.0, 0.05], {"relearn": "knowledge recoverable"}, "NOT forgotten"),
    ([0.0, 0.05], {"probe": "partly recoverable"}, "NOT forgotten"),
    ([0.0, 0.05], {"relearn": "inconclusive (too few facts)"}, "not shown forgotten"),
    ([0.0, 0.90], {"relearn": "indistinguishable from the oracle"}, "not shown forgotten"),
    ([0.0, 0.05], {}, "not shown forgotten"),
])
def test_the_certificate_never_says_forgotten_when_an_attack_recovers(tmp_path, ci, verdicts, conclusion):
    from obliviate.certificate import certify

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out,
                       evidence=_evidence(ci, verdicts))
    cert = certify(path, e["request_id"], tmp_path / "cert")
    assert cert["conclusion"].startswith(conclusion)
    assert (tmp_path / "cert" / "certificate.html").read_text().count(cert["conclusion"]) == 1


def test_later_evidence_is_matched_by_fingerprint(tmp_path):
    from obliviate.certificate import certify

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out)
    ev = record_evidence(path, out, _evidence([0.0, 0.05], {"relearn": "knowledge recoverable"}))
    assert ev["request_id"] == e["request_id"]
    assert certify(path, e["request_id"], tmp_path / "c")["conclusion"].startswith("NOT forgotten")
    with pytest.raises(Exception, match="no request 'nope'"):
        request(path, "nope")


def test_verify_fails_loudly_when_a_weight_file_or_the_certificate_changes(tmp_path):
    from obliviate.certificate import certify, verify

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out)
    certify(path, e["request_id"], tmp_path / "cert")
    assert verify(tmp_path / "cert") == []
    (out / "model.safetensors").write_bytes(b"weightz")
    problems = verify(tmp_path / "cert")
    assert len(problems) == 1 and "model.safetensors" in problems[0]
    (out / "model.safetensors").write_bytes(b"weights")
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    cert["conclusion"] = "forgotten by the recorded evidence"
    (tmp_path / "cert" / "certificate.json").write_text(json.dumps(cert))
    assert any("own hash" in p for p in verify(tmp_path / "cert"))


def test_cli_unlearn_records_certify_and_verify(tmp_path, micro_pair, capsys):
    from obliviate.cli import main

    out = tmp_path / "u"
    assert main(["unlearn", "--model", str(micro_pair["target"]), "--method", "ga", "--benchmark", "micro",
                 "--set", "max_steps=2", "--out", str(out)]) == 0
    ledger = tmp_path / "obliviate-ledger.sqlite"
    rid = entries(ledger)[0]["request_id"]
    capsys.readouterr()
    assert main(["ledger", str(ledger)]) == 0 and rid in capsys.readouterr().out
    assert main(["certify", rid, "--ledger", str(ledger), "--out", str(tmp_path / "cert")]) == 0
    assert "not shown forgotten" in capsys.readouterr().out  # nothing was evaluated or attacked
    assert main(["verify", str(tmp_path / "cert")]) == 0
    with open(out / "model.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "cert")]) == 1
    assert "verify FAILED" in capsys.readouterr().err


def test_a_file_that_is_not_a_ledger_is_a_clear_error_before_any_work_and_is_left_alone(tmp_path, micro_pair, capsys):
    from obliviate.cli import main

    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes, not a database\n" * 50)
    code = main(["unlearn", "--model", str(micro_pair["target"]), "--method", "ga", "--benchmark", "micro",
                 "--set", "max_steps=2", "--out", str(tmp_path / "u"), "--ledger", str(notes)])
    err = capsys.readouterr().err
    assert code == 2 and "notes.txt: not an obliviate ledger" in err and err.count("\n") == 1
    assert notes.read_text() == "my own notes, not a database\n" * 50 and not (tmp_path / "u").exists()
