"""A certificate per unlearning request: the evidence the ledger holds for it, stated, and checkable later.

``obliviate certify REQUEST_ID`` writes ``certificate.json`` and a one-page ``certificate.html``: the request (method,
config, forget-row hashes, model fingerprints), the oracle comparison (or, without an oracle, the holdout
comparison), each attack's verdict with its interval, and a conclusion. The conclusion is "forgotten by the
recorded evidence" only when the forget exact match's whole interval is within 0.10 of the oracle's (without an
oracle: the Min-K%++ membership AUC's interval within 0.5 ± 0.10) **and** every recorded attack is judged like the
oracle; an attack that recovers the knowledge, even in part, makes it "NOT forgotten"; otherwise it says what is
missing or inconclusive (:func:`conclude`). The certificate is signed with the owner's Ed25519 key
(:mod:`.signing`) and carries the ledger's signed checkpoint and the hash of each ledger entry it cites.
``obliviate verify CERT`` checks the signature against the trusted public key, the output model's weight
files, and (given the ledger) that every cited entry is in the chain and nothing after the checkpoint was
removed; it fails loudly on any mismatch and repeats the certificate's conclusion.
"""
from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

from obliviate.audit.ledger import evidence_for, fingerprint, request
from obliviate.core.utils import ObliviateError

RECOVERED = ("knowledge recoverable", "partly recoverable")


def demo_evidence(results: dict, method: str) -> dict:
    """The evidence a demo run holds: the oracle comparison and every attack's verdict on ``method``."""
    m, o = results["models"][method], results["models"]["oracle"]
    keys = ("forget_exact_match", "retain_exact_match", "forget_quality", "model_utility", "privleak",
            "mia_min_k_plus_plus_auc")
    ev = {"source": "demo", "metrics": {k: m["metrics"].get(k) for k in keys},
          "ci": {k: m["metrics_ci"].get(k) for k in keys}, "oracle_metrics": {k: o["metrics"].get(k) for k in keys},
          "oracle_ci": {k: o["metrics_ci"].get(k) for k in keys}}
    rob = results.get("robustness") or {}
    ev["attacks"] = {}
    for a, e in (rob.get("attacks") or {}).items():
        v = e.get("verdicts", {}).get(method)
        if v:
            ev["attacks"][a] = {"verdict": v["verdict"], "gain_over_oracle": v.get("gain_over_oracle"),
                                "interval": v.get("interval")}
    return ev


MARGIN = 0.10  # the attacks' SAME_AS_ORACLE margin: a forget exact match this close to the oracle's counts as equal
SUPPORTING = ("indistinguishable from the oracle", "below the oracle", "trace removed", "uninformative")


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _iv(iv) -> str:
    return f"[{iv[0]:.2f}, {iv[1]:.2f}]" if iv else "[no interval]"


def _within(a, b, margin: float = MARGIN) -> bool:
    """The model's whole interval ``a`` lies within the oracle's interval ``b`` widened by ``margin``."""
    return bool(a and b and a[0] >= b[0] - margin and a[1] <= b[1] + margin)


def conclude(evidence: list[dict]) -> tuple[str, list[str]]:
    """(conclusion, reasons). "forgotten by the recorded evidence" needs the forget exact match's whole 95 %
    interval within 0.10 of the oracle's interval (without an oracle: the Min-K%++ AUC interval, forget vs
    holdout, within 0.5 ± 0.10) and every recorded attack judged indistinguishable from the oracle (or below it,
    or its trace removed, or uninformative); an attack that recovers the knowledge, even in part, makes it
    "NOT forgotten"; anything else is "not shown forgotten"."""
    reasons = []
    with_oracle = [e for e in evidence if e.get("oracle_metrics")]
    attacks = {a: v for e in evidence for a, v in (e.get("attacks") or {}).items()}
    ok_behaviour = False
    if with_oracle:
        e = with_oracle[-1]
        a, b = e["ci"].get("forget_exact_match"), e["oracle_ci"].get("forget_exact_match")
        ok_behaviour = _within(a, b)
        reasons.append(f"forget exact match {_num(e['metrics'].get('forget_exact_match'))} {_iv(a)} against the "
                       f"oracle's {_num(e['oracle_metrics'].get('forget_exact_match'))} {_iv(b)}: "
                       + ("within 0.10 of it" if ok_behaviour else "not shown within 0.10 of it"))
    else:
        holdout = [e for e in evidence if (e.get("ci") or {}).get("mia_min_k_plus_plus_auc")]
        if holdout:
            lo, hi = holdout[-1]["ci"]["mia_min_k_plus_plus_auc"]
            ok_behaviour = 0.5 - MARGIN <= lo and hi <= 0.5 + MARGIN
            reasons.append(f"no oracle: Min-K%++ AUC forget vs holdout [{lo:.2f}, {hi:.2f}] "
                           + ("within 0.5 ± 0.10" if ok_behaviour else "not shown within 0.5 ± 0.10"))
        else:
            reasons.append("no evaluation recorded for this request (run obliviate eval with --oracle, or the demo)")
    recovered = {a: v["verdict"] for a, v in attacks.items() if any(v["verdict"].startswith(r) for r in RECOVERED)}
    unsettled = {a: v["verdict"] for a, v in attacks.items()
                 if a not in recovered and not any(v["verdict"].startswith(r) for r in SUPPORTING)}
    for a, v in {**recovered, **unsettled}.items():
        reasons.append(f"attack {a}: {v}")
    if not attacks:
        reasons.append("no attack recorded for this request")
    if recovered:
        return "NOT forgotten: an attack recovers the knowledge", reasons
    if ok_behaviour and attacks and not unsettled:
        return "forgotten by the recorded evidence", reasons
    return "not shown forgotten: the evidence is missing, inconclusive or does not meet the oracle", reasons


def _self_hash(cert: dict) -> str:
    body = {k: v for k, v in cert.items() if k not in ("certificate_sha256", "signature")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _signed_part(cert: dict) -> dict:
    return {k: v for k, v in cert.items() if k != "signature"}


def certify(ledger: str | Path, request_id: str, out: str | Path, key: str | Path | None = None) -> dict:
    """Write ``out/certificate.json`` and ``out/certificate.html`` for one request (atomically), signed with the
    owner's key (``key``, else the default signing key, made if missing) and carrying the ledger's signed
    checkpoint and the hash of every ledger entry it cites."""
    from obliviate.audit.ledger import entries, read_checkpoint
    from obliviate.core.outputs import atomic_dir
    from obliviate.audit.signing import load_private, sign

    signer = load_private(key, create=key is None)
    req = request(ledger, request_id)
    ev = evidence_for(ledger, req)
    conclusion, reasons = conclude(ev)
    warnings = list(req.get("warnings") or [])
    reasons = [f"WARNING: {w}" for w in warnings] + reasons
    cited = [{"seq": e["seq"], "kind": e["kind"], "chain": e["chain"]} for e in entries(ledger)
             if e["request_id"] == request_id]
    cert = {"obliviate": "certificate", "ledger": str(Path(ledger).resolve()), "request_id": request_id,
            "request": {k: req[k] for k in ("time", "method", "config", "forget_rows", "forget_sha256", "input_model",
                                            "input_fingerprint", "output_model", "output_fingerprint", "chain")},
            "evidence": ev, "conclusion": conclusion, "reasons": reasons, "warnings": warnings, "ledger_entries": cited,
            "checkpoint": read_checkpoint(ledger)}
    if "exact" in req:  # exact unlearning's proof obligations
        cert["request"]["exact"] = req["exact"]
    cert["certificate_sha256"] = _self_hash(cert)
    cert["signature"] = sign(_signed_part(cert), signer)
    with atomic_dir(out) as tmp:
        (tmp / "certificate.json").write_text(json.dumps(cert, indent=1, default=str), encoding="utf-8")
        (tmp / "certificate.html").write_text(render(cert), encoding="utf-8")
    return cert


def verify_details(cert_path: str | Path, model: str | Path | None = None, ledger: str | Path | None = None,
                   public_key: str | Path | None = None) -> dict:
    """Check a certificate: ``{"problems": [...], "held": [what was checked and holds], "conclusion": ...}``.

    - signature: valid, and by the trusted key (``public_key``, else the local signing key);
    - files: the certified output model's weight files are unchanged (``model`` overrides the recorded path);
    - ledger (``ledger``, else the recorded path if it exists): sound (:func:`obliviate.audit.ledger.check`), holding
      every entry the certificate cites with the same hash, and at least as long as the checkpoint the
      certificate carries (so entries removed after it was issued are seen, even if the ledger's own checkpoint
      was replaced)."""
    from obliviate.audit.ledger import check, covers
    from obliviate.audit.signing import check as check_signature
    from obliviate.audit.signing import trusted_key_id

    p = Path(cert_path)
    p = p / "certificate.json" if p.is_dir() else p
    try:
        cert = json.loads(p.read_text(encoding="utf-8"))
        cert["request"]["output_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ObliviateError(f"{p}: not a readable certificate ({e})")
    problems, held = [], []
    bad = check_signature(_signed_part(cert), cert.get("signature"))
    if bad is None and cert.get("certificate_sha256") != _self_hash(cert):
        bad = "its recorded hash does not match its content"
    if bad:
        problems.append(f"{p}: signature: {bad}")
    else:
        trusted, source = trusted_key_id(public_key)
        signer = cert["signature"]["key_id"]
        if trusted is None:
            problems.append(f"{p}: signature valid, but {source}")
        elif signer != trusted:
            problems.append(f"{p}: signed by key {signer[:16]}, not by the trusted key {trusted[:16]} ({source})")
        else:
            held.append(f"signature: valid, by the trusted key {signer[:16]} ({source})")
    folder = Path(model) if model else Path(cert["request"]["output_model"])
    now = fingerprint(folder)
    then = cert["request"]["output_fingerprint"]
    if now is None:
        problems.append(f"{folder}: the certified model folder is missing")
    elif now != then:
        changed = sorted(k for k in set(now) | set(then or {}) if (then or {}).get(k) != now.get(k))
        problems.append(f"{folder}: weight file(s) differ from the certified ones: {', '.join(changed)}")
    else:
        held.append(f"files: the weight files of {folder} are the certified ones")
    led = Path(ledger) if ledger else Path(cert.get("ledger", ""))
    if ledger is None and not led.is_file():
        held.append(f"ledger: not checked ({led} is not here; give --ledger)")
    elif not led.is_file():
        problems.append(f"--ledger {led}: no such file")
    else:
        from obliviate.audit.ledger import _connect, _rows

        found = check(led, public_key)
        con = _connect(led)
        try:
            rows = _rows(con)
        finally:
            con.close()
        chains = {seq: chain for seq, _, chain in rows}
        for e in cert.get("ledger_entries", []):
            if chains.get(e["seq"]) != e["chain"]:
                found.append(f"{led}: entry {e['seq']} ({e['kind']}) that the certificate cites is "
                             + ("missing" if e["seq"] not in chains else "not the certified one"))
        found += [f"{led}: {x}" for x in covers(rows, cert.get("checkpoint"), "the certificate's checkpoint")]
        problems += found
        if not found:
            size = (cert.get("checkpoint") or {}).get("state", {}).get("size")
            held.append(f"ledger: {led} is sound and holds the {len(cert.get('ledger_entries', []))} certified "
                        f"entries" + (f" and all {size} entries of the certificate's checkpoint" if size else ""))
    return {"problems": problems, "held": held, "conclusion": cert.get("conclusion")}


def verify(cert_path: str | Path, model: str | Path | None = None, ledger: str | Path | None = None,
           public_key: str | Path | None = None) -> list[str]:
    """The problems :func:`verify_details` finds (empty: the certificate holds)."""
    return verify_details(cert_path, model, ledger, public_key)["problems"]


def _exact_html(exact: dict | None) -> str:
    """Exact unlearning's proof obligations: which shards were retrained from which checkpoint (SISA, S3T) and, for
    S3T, which orderings were cut where and what each shard serves."""
    if not exact:
        return ""
    items = "".join(f"<li>shard {w['shard']}: restored from the {html.escape(w['restored_from'])}, slices "
                    f"{w['retrained_slices']} retrained without {w['rows_removed']} row(s)</li>"
                    for w in exact["shards_retrained"])
    cuts = "".join(f"<li>shard {c['shard']}, ordering {c['ordering']}: layer groups from {c['depth_after']} on "
                   f"reset to their initial weights (they had seen slice {c['slice']}); depth "
                   f"{c['depth_before']} &rarr; {c['depth_after']}</li>" for c in exact.get("orderings_cut", []))
    served = "".join(f"<li>shard {s}: " + ("nothing (drops out of the ensemble)" if v is None else
                                          f"ordering {v['ordering']}, {v['depth']} layer group(s)") + "</li>"
                     for s, v in enumerate(exact.get("served", [])))
    kind = "S3T" if "orderings_cut" in exact else "SISA"
    return (f"<h2>Exact unlearning ({kind}): proof obligations</h2><ul>"
            f"{items or '<li>no shard was retrained</li>'}</ul>"
            + (f"<h3>Orderings cut</h3><ul>{cuts or '<li>none</li>'}</ul><h3>Served after the request</h3>"
               f"<ul>{served}</ul>" if kind == "S3T" else "")
            + f"<p>{exact['forget_rows_found']} forget rows were in the training data, "
            f"{exact['forget_rows_not_trained_on']} were not; retraining cost {exact['row_passes_retrained']} row "
            f"passes of {exact['row_passes_full_retraining']} for full retraining.</p>")


def render(cert: dict) -> str:
    r = cert["request"]
    rows = "".join(f"<li>{html.escape(x)}</li>" for x in cert["reasons"])
    atk = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(v['verdict'])}</td>"
                  f"<td>{html.escape(str(v.get('gain_over_oracle')))}</td><td>{html.escape(str(v.get('interval')))}</td></tr>"
                  for e in cert["evidence"] for a, v in (e.get("attacks") or {}).items())
    warn = "".join(f'<p style="background:#fde8e8;border-left:4px solid #c0392b;padding:6px 10px"><b>Warning:</b> '
                   f"{html.escape(w)}</p>" for w in cert.get("warnings") or [])
    fp = "".join(f"<li><code>{html.escape(k)}</code> {html.escape(v)}</li>"
                 for k, v in (r["output_fingerprint"] or {}).items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>obliviate certificate</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}}code{{font-size:12px}}</style></head><body>
<h1>Unlearning certificate</h1><p>Request <b>{html.escape(cert['request_id'])}</b> at {html.escape(r['time'])}:
method <b>{html.escape(r['method'])}</b>, {r['forget_rows']} forget rows (SHA-256 recorded, text not kept).</p>
{warn}<h2>Conclusion: {html.escape(cert['conclusion'])}</h2><ul>{rows}</ul>
<h2>Attacks</h2><table><tr><th>attack</th><th>verdict</th><th>gain over the oracle's</th><th>95 % interval</th></tr>
{atk or '<tr><td colspan=4>none recorded</td></tr>'}</table>
{_exact_html(r.get("exact"))}<h2>Model</h2>
<p>input {html.escape(r['input_model'])}; output {html.escape(r['output_model'])}</p><ul>{fp}</ul>
<p style="color:#777;font-size:12px">ledger {html.escape(cert['ledger'])}, entry chain {html.escape(r['chain'])};
certificate SHA-256 {html.escape(cert['certificate_sha256'])}; signed (Ed25519) by key
{html.escape(str((cert.get('signature') or {}).get('key_id', 'none')))}. Check it with
<code>obliviate verify</code> and the signer's public key.</p>
</body></html>"""
