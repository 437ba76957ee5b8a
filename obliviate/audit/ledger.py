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

A hash chain proves order, not completeness: dropping the triggers and deleting the *last* rows leaves a valid
chain. So, as transparency logs do (Certificate Transparency's signed tree heads, sigstore Rekor's checkpoints),
every append also writes a **signed checkpoint** beside the ledger (``LEDGER.checkpoint.json``: the ledger's
first link, its length and its head, signed with the owner's Ed25519 key, :mod:`.signing`), and every
certificate carries a copy. A ledger shorter than any checkpoint or certificate that was issued for it, or whose
entry at that length has another hash, has lost entries: :func:`check` and ``obliviate verify`` say so. An append
to a ledger that fails that check is refused.

Evidence (``eval``, ``attack``) is filed under the request that wrote the evaluated folder: the folder names it
(``obliviate-request.json``, written when the request is recorded), else the one request whose output has the
same weights; several such requests (a command run twice writes identical weights) are an error naming them,
settled with ``--request ID``.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from pathlib import Path

from obliviate.core.utils import ObliviateError

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
    """Open (or create) the ledger now, so that a bad ``--ledger``, or one that lost entries below its signed
    checkpoint (appending to it is refused), fails before any model work."""
    con = _connect(Path(path))
    try:
        lost = covers(_rows(con), read_checkpoint(path), f"the checkpoint {checkpoint_path(path)}")
    finally:
        con.close()
    if lost:
        raise ObliviateError(f"{path}: {lost[0]}; obliviate will not append to it (`obliviate ledger` checks it)")
    return Path(path)


def row_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def forget_hashes(examples) -> list[str]:
    """SHA-256 of each forget row (prompt and target joined by a NUL byte)."""
    return [ex.sha256() for ex in examples]


def fingerprint(folder: str | Path | None) -> dict | None:
    """The weight files' SHA-256 (and the guard's, if any) of a model folder; None for a built-in name."""
    if folder is None or not Path(str(folder)).is_dir():
        return None
    from obliviate.models import weights_digest

    return weights_digest(folder)


def checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".checkpoint.json")


def read_checkpoint(path: str | Path) -> dict | None:
    cp = checkpoint_path(path)
    if not cp.is_file():
        return None
    try:
        return json.loads(cp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"unreadable": str(cp)}


def _rows(con) -> list[tuple[int, str, str]]:
    return con.execute("SELECT seq, body, chain FROM entries ORDER BY seq").fetchall()


def covers(rows: list[tuple], checkpoint: dict | None, what: str) -> list[str]:
    """Problems if ``rows`` (``(seq, ..., chain)`` in order) do not contain the state ``checkpoint`` signed: its
    first link, and an entry at its length with its head."""
    if not checkpoint or "state" not in checkpoint:
        return [f"{what} is unreadable"] if checkpoint else []
    st = checkpoint["state"]
    by_seq = {r[0]: r[-1] for r in rows}
    if st["size"] and rows and rows[0][-1] != st["genesis"]:
        return [f"the ledger's first entry is not the one {what} signed (another ledger, or rewritten)"]
    if st["size"] and st["size"] not in by_seq:
        have = rows[-1][0] if rows else 0
        return [f"the ledger ends at entry {have}, but {what} signed {st['size']} entries: entries were removed"]
    if st["size"] and by_seq[st["size"]] != st["head"]:
        return [f"entry {st['size']} has another hash than {what} signed: the ledger was rewritten"]
    return []


def _checkpoint(path: Path, con, key) -> dict:
    """Sign the ledger's current state and write it beside the ledger (atomically)."""
    from obliviate.audit.signing import sign
    from obliviate.core.utils import write_json_atomic

    rows = _rows(con)
    state = {"ledger": path.name, "size": rows[-1][0] if rows else 0, "head": rows[-1][2] if rows else "",
             "genesis": rows[0][2] if rows else "", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    cp = {"state": state, "signature": sign(state, key)}
    write_json_atomic(checkpoint_path(path), cp)
    return cp


def _append(path: Path, kind: str, request_id: str | None, body: dict) -> dict:
    from obliviate.audit.signing import load_private

    key = load_private(create=True)  # before any write: a bad key file fails with the ledger untouched
    text = json.dumps(body, sort_keys=True, default=str)
    con = _connect(path)
    try:
        lost = covers(_rows(con), read_checkpoint(path), f"the checkpoint {checkpoint_path(path)}")
        if lost:
            raise ObliviateError(f"{path}: {lost[0]}; obliviate will not append to it (`obliviate ledger` checks it)")
        con.execute("BEGIN IMMEDIATE")
        prev = con.execute("SELECT chain FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        chain = row_hash((prev[0] if prev else "") + text)
        when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        con.execute("INSERT INTO entries (kind, request_id, time, body, chain) VALUES (?, ?, ?, ?, ?)",
                    (kind, request_id, when, text, chain))
        con.execute("COMMIT")
        _checkpoint(path, con, key)
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
    entry = _append(Path(path), "request", rid, body)
    if Path(str(output_model)).is_dir():  # the folder names its request, so that later evidence finds it
        from obliviate.core.utils import write_json_atomic

        write_json_atomic(Path(str(output_model)) / REQUEST_FILE, {"request_id": rid, "ledger": str(Path(path).resolve())})
    return entry


REQUEST_FILE = "obliviate-request.json"


def request_for(path: str | Path, model, request_id: str | None = None) -> str | None:
    """The request that wrote ``model`` (see the module docstring): ``request_id`` if given (it must exist),
    else the one the folder names (if its weights are still the request's output), else the only request whose
    output has these weights; None if there is none; an error naming them if several remain."""
    reqs = [e for e in entries(path) if e["kind"] == "request"]
    if request_id is not None:
        if not any(e["request_id"] == request_id for e in reqs):
            raise ObliviateError(f"--request {request_id}: {path} holds no such request")
        return request_id
    fp = fingerprint(model)
    if fp is None:
        return None
    same = [e for e in reqs if e.get("output_fingerprint") == fp]
    link = Path(str(model)) / REQUEST_FILE
    if link.is_file():
        try:
            named = json.loads(link.read_text(encoding="utf-8")).get("request_id")
        except (OSError, ValueError, AttributeError):
            named = None
        if any(e["request_id"] == named for e in same):
            return named
    here = str(Path(str(model)).resolve())
    if len(same) > 1:
        same = [e for e in same if e.get("output_model") == here] or same
    if len(same) > 1:
        raise ObliviateError(f"{model}: {len(same)} requests in {path} wrote these same weights "
                             f"({', '.join(e['request_id'] for e in same)}); name one with --request ID")
    return same[0]["request_id"] if same else None


def record_evidence(path: str | Path, model, evidence: dict, request_id: str | None = None) -> dict | None:
    """Append evaluation or attack evidence about ``model`` (a folder), filed under the request that wrote it
    (:func:`request_for`)."""
    rid = request_for(path, model, request_id)
    return _append(Path(path), "evidence", rid, {"model": str(Path(str(model)).resolve()),
                                                  "fingerprint": fingerprint(model), "evidence": evidence})


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


def check(path: str | Path, public_key: str | Path | None = None) -> list[str]:
    """Problems with the ledger (empty: sound): a failed SQLite integrity check, a broken hash chain, a missing,
    forged or untrusted checkpoint (the trusted key: ``public_key``, else the local signing key), or fewer or
    other entries than the checkpoint signed."""
    from obliviate.audit.signing import check as check_signature
    from obliviate.audit.signing import trusted_key_id

    path = Path(path)
    problems = []
    con = _connect(path)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = _rows(con)
    finally:
        con.close()
    if ok != "ok":
        problems.append(f"{path}: SQLite integrity check: {ok}")
    prev = ""
    for seq, body, chain in rows:
        if row_hash(prev + body) != chain:
            problems.append(f"{path}: entry {seq} does not match its hash chain (edited, or an entry before it was)")
        prev = chain
    cp = read_checkpoint(path)
    where = f"the checkpoint {checkpoint_path(path)}"
    if cp is None:
        if rows:
            problems.append(f"{path}: no signed checkpoint beside it, so removed entries cannot be ruled out (a "
                            "ledger from before checkpoints gets one at its next append)")
        return problems
    bad = check_signature(cp.get("state"), cp.get("signature"))
    if bad:
        return problems + [f"{where}: {bad}"]
    trusted, source = trusted_key_id(public_key)
    if trusted is None:
        problems.append(f"{where}: cannot tell who signed it: {source}")
    elif cp["signature"]["key_id"] != trusted:
        problems.append(f"{where}: signed by key {cp['signature']['key_id'][:16]}, not by the trusted key "
                        f"{trusted[:16]} ({source})")
    return problems + [f"{path}: {p}" for p in covers(rows, cp, where)]


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
