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
from obliviate.audit.ledger import check, entries, record_evidence, record_request, request

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
from obliviate.audit.ledger import record_request
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
    from obliviate.audit.certificate import certify

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out,
                       evidence=_evidence(ci, verdicts))
    cert = certify(path, e["request_id"], tmp_path / "cert")
    assert cert["conclusion"].startswith(conclusion)
    assert (tmp_path / "cert" / "certificate.html").read_text().count(cert["conclusion"]) == 1


def test_later_evidence_is_matched_by_fingerprint(tmp_path):
    from obliviate.audit.certificate import certify

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out)
    ev = record_evidence(path, out, _evidence([0.0, 0.05], {"relearn": "knowledge recoverable"}))
    assert ev["request_id"] == e["request_id"]
    assert certify(path, e["request_id"], tmp_path / "c")["conclusion"].startswith("NOT forgotten")
    with pytest.raises(Exception, match="no request 'nope'"):
        request(path, "nope")


def test_verify_fails_loudly_when_a_weight_file_or_the_certificate_changes(tmp_path):
    from obliviate.audit.certificate import certify, verify

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
    assert any("signature does not match the content" in p for p in verify(tmp_path / "cert"))


def _forge(cert_dir):
    """What a forger can do without the key: change the conclusion and recompute every hash in the file."""
    from obliviate.audit.certificate import _self_hash

    cert = json.loads((cert_dir / "certificate.json").read_text())
    cert["conclusion"] = "forgotten by the recorded evidence"
    cert["certificate_sha256"] = _self_hash(cert)
    (cert_dir / "certificate.json").write_text(json.dumps(cert))
    return cert


def test_a_forged_certificate_fails_verify_whatever_hash_it_carries(tmp_path, capsys):
    from obliviate.audit.certificate import certify
    from obliviate.cli import main
    from obliviate.audit.signing import keygen

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out)
    certify(path, e["request_id"], tmp_path / "cert")
    assert main(["verify", str(tmp_path / "cert")]) == 0
    text = capsys.readouterr().out
    assert "holds: signature: valid" in text and "holds: ledger:" in text
    assert "it concludes: not shown forgotten" in text  # what holds is the record, not "forgotten"
    _forge(tmp_path / "cert")  # the attack of the review: edit, recompute the SHA-256
    assert main(["verify", str(tmp_path / "cert")]) == 1
    assert "signature does not match the content" in capsys.readouterr().err
    # re-signed with the forger's own key: valid signature, wrong signer
    other, _ = keygen(tmp_path / "forger" / "key.pem")
    certify(path, e["request_id"], tmp_path / "cert2", key=other)
    assert main(["verify", str(tmp_path / "cert2")]) == 1
    assert "not by the trusted key" in capsys.readouterr().err
    # trusting the forger's key instead: the signature checks, but the ledger's checkpoints are the owner's
    assert main(["verify", str(tmp_path / "cert2"), "--public-key", f"{other}.pub"]) == 1
    out_err = capsys.readouterr()
    assert "holds: signature: valid" in out_err.out and "checkpoint" in out_err.err and "not by the trusted" in out_err.err


def _drop_last(path, n: int = 1):
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER entries_no_delete")
    con.execute(f"DELETE FROM entries WHERE seq > (SELECT MAX(seq) - {n} FROM entries)")
    con.commit()
    con.close()


def test_a_truncated_ledger_fails_ledger_and_verify(tmp_path, capsys):
    from obliviate.audit.certificate import certify, verify
    from obliviate.cli import main
    from obliviate.audit.ledger import checkpoint_path

    out = _model(tmp_path)
    path = tmp_path / "ledger.sqlite"
    e = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=out)
    record_evidence(path, out, _evidence([0.0, 0.05], {"relearn": "knowledge recoverable"}))
    certify(path, e["request_id"], tmp_path / "cert")
    old_checkpoint = checkpoint_path(path).read_text()
    record_evidence(path, out, _evidence([0.0, 0.05], {"paraphrase": "knowledge recoverable"}))
    _drop_last(path)  # the final evidence row goes: the hash chain alone stays valid
    assert main(["ledger", str(path)]) == 1
    assert "entries were removed" in capsys.readouterr().err
    with pytest.raises(Exception, match="entries were removed"):  # nothing is appended on top of a truncation
        record_evidence(path, out, _evidence([0.0, 0.05], {}))
    # the forger also puts back the checkpoint of before the append, and drops the certified evidence row:
    checkpoint_path(path).write_text(old_checkpoint)
    _drop_last(path)
    problems = verify(tmp_path / "cert", ledger=path)
    assert any("entry 2 (evidence) that the certificate cites is missing" in p for p in problems)
    assert any("the certificate's checkpoint" in p and "removed" in p for p in problems)
    checkpoint_path(path).unlink()
    assert any("no signed checkpoint" in p for p in check(path))


def test_evidence_goes_to_the_request_that_wrote_the_folder_even_with_identical_weights(tmp_path, capsys):
    """Re-running a command writes identical weights: the folder names its request, so evidence is filed under
    it; without that link, several matching requests are an error naming them, settled with --request."""
    from obliviate.audit.certificate import certify
    from obliviate.audit.ledger import REQUEST_FILE, request_for

    path = tmp_path / "ledger.sqlite"
    u1, u2 = _model(tmp_path, "u1"), _model(tmp_path, "u2")  # the same bytes
    r1 = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=u1)
    r2 = record_request(path, method="npo", config={}, forget=FORGET, input_model="tiny", output_model=u2)
    ev = record_evidence(path, u1, _evidence([0.0, 0.05], {"relearn": "knowledge recoverable"}))
    assert ev["request_id"] == r1["request_id"]
    assert certify(path, r1["request_id"], tmp_path / "c1")["conclusion"].startswith("NOT forgotten")
    assert "no evaluation recorded" in " ".join(certify(path, r2["request_id"], tmp_path / "c2")["reasons"])
    (u1 / REQUEST_FILE).unlink()
    u3 = _model(tmp_path, "u3")  # a copy nobody recorded: two requests wrote these weights elsewhere
    with pytest.raises(Exception, match=f"2 requests .* wrote these same weights .*{r1['request_id']}.*--request"):
        request_for(path, u3)
    assert request_for(path, u3, r2["request_id"]) == r2["request_id"]
    assert request_for(path, u1) == r1["request_id"]  # the recorded output path settles it


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


def test_cli_files_evidence_under_the_request_of_the_evaluated_folder(tmp_path, micro_pair, capsys):
    """The review's case: the same command run twice writes identical weights; `eval --model u1 --oracle` must
    be evidence for u1's request, and `certify` for u1 must find it."""
    from obliviate.cli import main

    args = ["unlearn", "--model", str(micro_pair["target"]), "--method", "ga", "--benchmark", "micro", "--set",
            "max_steps=2", "--ledger", str(tmp_path / "ledger.sqlite")]
    assert main([*args, "--out", str(tmp_path / "u1")]) == 0 and main([*args, "--out", str(tmp_path / "u2")]) == 0
    r1, r2 = [e["request_id"] for e in entries(tmp_path / "ledger.sqlite")]
    assert r1 != r2
    assert main(["eval", "--model", str(tmp_path / "u1"), "--oracle", str(micro_pair["oracle"]),
                 "--out", str(tmp_path / "e1")]) == 0
    assert f"evidence for request {r1}" in capsys.readouterr().err
    assert main(["certify", r1, "--ledger", str(tmp_path / "ledger.sqlite"), "--out", str(tmp_path / "c")]) == 0
    assert "no evaluation recorded" not in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "u2"), "--out", str(tmp_path / "e2"), "--request", "nope"]) == 2
    assert "--request nope" in capsys.readouterr().err and not (tmp_path / "e2").exists()


def test_unlearn_refuses_a_truncated_ledger_before_any_work(tmp_path, micro_pair, capsys):
    from obliviate.cli import main

    args = ["unlearn", "--model", str(micro_pair["target"]), "--method", "ga", "--benchmark", "micro", "--set",
            "max_steps=2"]
    assert main([*args, "--out", str(tmp_path / "u1")]) == 0
    assert main([*args, "--out", str(tmp_path / "u2")]) == 0
    _drop_last(tmp_path / "obliviate-ledger.sqlite")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "u3")]) == 2
    assert "entries were removed" in capsys.readouterr().err and not (tmp_path / "u3").exists()
