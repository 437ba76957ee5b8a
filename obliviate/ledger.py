"""The audit trail: an append-only ledger of unlearning requests, and a certificate per request.

Every ``obliviate unlearn`` and ``obliviate demo`` run appends one *request* to a SQLite ledger (stdlib
``sqlite3``) beside the model it wrote (``obliviate-ledger.sqlite`` in the output's parent folder, or ``--ledger``):
request id, time, method and resolved config, the SHA-256 of each forget row (never the text, unless the owner
opts in with ``--ledger-text``), the input and output models with their weight fingerprints, and the evidence at
hand (the demo's oracle comparison and attack verdicts). ``obliviate eval`` and ``obliviate attack`` append
*evidence* rows for a model later; :func:`evidence_for` collects them by the output's fingerprint.

Append-only is enforced by triggers (an UPDATE or DELETE aborts), and each row carries ``chain``: the SHA-256 of
its own content and the previous row's chain, so an edited or removed row breaks every later link
(:func:`check`). Each append is one transaction (SQLite's rollback journal): a process killed mid-write leaves
the ledger as it was before that append.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from pathlib import Path

from .utils import ObliviateError

LEDGER_NAME = "obliviate-ledger.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,              -- request | evidence
  request_id TEXT,                 -- requests: their id; evidence: the request it was matched to (or NULL)
  time TEXT NOT NULL,
  body TEXT NOT NULL,              -- JSON
  chain TEXT NOT NULL              -- sha256(previous chain + body)
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'the obliviate ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'the obliviate ledger is append-only'); END;
"""


def default_path(out: str | Path) -> Path:
    """The ledger beside a model folder: in its parent folder."""
    return Path(out).resolve().parent / LEDGER_NAME


def _connect(path: Path) -> sqlite3.Connection:
    path = Path(path)
    if path.is_dir():
        raise ObliviateError(f"--ledger {path}: a folder, not a ledger file")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        con.execute("PRAGMA synchronous=FULL")
        con.executescript(SCHEMA)
    except sqlite3.DatabaseError as e:
        raise ObliviateError(f"--ledger {path}: not an obliviate ledger ({e}); it was left as it is") from None
    return con


def ensure(path: str | Path) -> Path:
    """Open (or create) the ledger now, so that a bad ``--ledger`` fails before any model work."""
    _connect(Path(path)).close()
    return Path(path)


def row_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def forget_hashes(examples) -> list[str]:
    """SHA-256 of each forget row (prompt and target joined by a NUL byte)."""
    return [row_hash(f"{ex.prompt}\0{ex.target}") for ex in examples]


def fingerprint(folder: str | Path | None) -> dict | None:
    """The weight files' SHA-256 (and the guard's, if any) of a model folder; None for a built-in name."""
    if folder is None or not Path(str(folder)).is_dir():
        return None
    from .models import weights_digest

    return weights_digest(folder)


def _append(path: Path, kind: str, request_id: str | None, body: dict) -> dict:
    text = json.dumps(body, sort_keys=True, default=str)
    con = _connect(path)
    try:
        con.execute("BEGIN IMMEDIATE")
        prev = con.execute("SELECT chain FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        chain = row_hash((prev[0] if prev else "") + text)
        when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        con.execute("INSERT INTO entries (kind, request_id, time, body, chain) VALUES (?, ?, ?, ?, ?)",
                    (kind, request_id, when, text, chain))
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return {"kind": kind, "request_id": request_id, "time": when, "chain": chain, **body}


def record_request(path: str | Path, *, method: str, config: dict, forget, input_model, output_model,
                   evidence: dict | None = None, keep_text: bool = False, extra: dict | None = None) -> dict:
    """Append one unlearning request; returns the entry (with its ``request_id``)."""
    rid = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
    body = {"method": method, "config": config, "forget_rows": len(forget), "forget_sha256": forget_hashes(forget),
            "input_model": str(input_model), "input_fingerprint": fingerprint(input_model),
            "output_model": str(Path(output_model).resolve()), "output_fingerprint": fingerprint(output_model),
            "evidence": evidence, **(extra or {})}
    if keep_text:
        body["forget_text"] = [{"prompt": ex.prompt, "target": ex.target} for ex in forget]
    return _append(Path(path), "request", rid, body)


def record_evidence(path: str | Path, model, evidence: dict) -> dict | None:
    """Append evaluation or attack evidence about ``model`` (a folder), matched to the request that wrote it."""
    fp = fingerprint(model)
    rid = next((e["request_id"] for e in reversed(entries(path)) if e["kind"] == "request"
                and fp is not None and e.get("output_fingerprint") == fp), None)
    return _append(Path(path), "evidence", rid, {"model": str(Path(str(model)).resolve()), "fingerprint": fp,
                                                  "evidence": evidence})


def entries(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    con = _connect(path)
    try:
        rows = con.execute("SELECT seq, kind, request_id, time, body, chain FROM entries ORDER BY seq").fetchall()
    finally:
        con.close()
    return [{"seq": s, "kind": k, "request_id": r, "time": t, "chain": c, **json.loads(b)} for s, k, r, t, b, c in rows]


def check(path: str | Path) -> list[str]:
    """Problems with the ledger: a failed SQLite integrity check or a broken hash chain (empty: sound)."""
    path = Path(path)
    problems = []
    con = _connect(path)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = con.execute("SELECT seq, body, chain FROM entries ORDER BY seq").fetchall()
    finally:
        con.close()
    if ok != "ok":
        problems.append(f"{path}: SQLite integrity check: {ok}")
    prev = ""
    for seq, body, chain in rows:
        if row_hash(prev + body) != chain:
            problems.append(f"{path}: entry {seq} does not match its hash chain (edited, or an entry before it was)")
        prev = chain
    return problems


def request(path: str | Path, request_id: str) -> dict:
    for e in entries(path):
        if e["kind"] == "request" and e["request_id"] == request_id:
            return e
    known = [e["request_id"] for e in entries(path) if e["kind"] == "request"]
    raise ObliviateError(f"{path}: no request {request_id!r}; the ledger holds {len(known)} request(s)"
                         + (f", e.g. {known[-1]}" if known else ""))


def evidence_for(path: str | Path, req: dict) -> list[dict]:
    """The request's own evidence, then every evidence row recorded later for its output model."""
    out = [req["evidence"]] if req.get("evidence") else []
    out += [e["evidence"] for e in entries(path) if e["kind"] == "evidence" and e["request_id"] == req["request_id"]]
    return out
