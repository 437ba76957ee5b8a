"""A certificate per unlearning request: the evidence the ledger holds for it, stated, and checkable later.

``obliviate certify REQUEST_ID`` writes ``certificate.json`` and a one-page ``certificate.html``: the request (method,
config, forget-row hashes, model fingerprints), the oracle comparison (or, without an oracle, the holdout
comparison), each attack's verdict with its interval, and a conclusion. The conclusion is "forgotten by the
recorded evidence" only when the forget exact match's whole interval is within 0.10 of the oracle's (without an
oracle: the Min-K%++ membership AUC's interval within 0.5 ± 0.10) **and** every recorded attack is judged like the
oracle; an attack that recovers the knowledge, even in part, makes it "NOT forgotten"; otherwise it says what is
missing or inconclusive (:func:`conclude`). ``obliviate verify CERT`` recomputes the output model's
fingerprints and the certificate's own hash, and fails loudly on any mismatch.
"""
from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

from .ledger import evidence_for, fingerprint, request
from .utils import ObliviateError

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
    body = {k: v for k, v in cert.items() if k != "certificate_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def certify(ledger: str | Path, request_id: str, out: str | Path) -> dict:
    """Write ``out/certificate.json`` and ``out/certificate.html`` for one request (atomically)."""
    from .outputs import atomic_dir

    req = request(ledger, request_id)
    ev = evidence_for(ledger, req)
    conclusion, reasons = conclude(ev)
    cert = {"obliviate": "certificate", "ledger": str(Path(ledger).resolve()), "request_id": request_id,
            "request": {k: req[k] for k in ("time", "method", "config", "forget_rows", "forget_sha256", "input_model",
                                            "input_fingerprint", "output_model", "output_fingerprint", "chain")},
            "evidence": ev, "conclusion": conclusion, "reasons": reasons}
    if "exact" in req:  # exact unlearning's proof obligations
        cert["request"]["exact"] = req["exact"]
    cert["certificate_sha256"] = _self_hash(cert)
    with atomic_dir(out) as tmp:
        (tmp / "certificate.json").write_text(json.dumps(cert, indent=1, default=str), encoding="utf-8")
        (tmp / "certificate.html").write_text(render(cert), encoding="utf-8")
    return cert


def verify(cert_path: str | Path, model: str | Path | None = None) -> list[str]:
    """Mismatches between a certificate and the files it names (empty: it holds)."""
    p = Path(cert_path)
    p = p / "certificate.json" if p.is_dir() else p
    try:
        cert = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ObliviateError(f"{p}: not a readable certificate ({e})")
    problems = []
    if cert.get("certificate_sha256") != _self_hash(cert):
        problems.append(f"{p}: the certificate's own hash does not match its content (it was edited)")
    folder = Path(model) if model else Path(cert["request"]["output_model"])
    now = fingerprint(folder)
    then = cert["request"]["output_fingerprint"]
    if now is None:
        problems.append(f"{folder}: the certified model folder is missing")
    elif now != then:
        changed = sorted(k for k in set(now) | set(then or {}) if (then or {}).get(k) != now.get(k))
        problems.append(f"{folder}: weight file(s) differ from the certified ones: {', '.join(changed)}")
    return problems


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
    fp = "".join(f"<li><code>{html.escape(k)}</code> {html.escape(v)}</li>"
                 for k, v in (r["output_fingerprint"] or {}).items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>obliviate certificate</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}}code{{font-size:12px}}</style></head><body>
<h1>Unlearning certificate</h1><p>Request <b>{html.escape(cert['request_id'])}</b> at {html.escape(r['time'])}:
method <b>{html.escape(r['method'])}</b>, {r['forget_rows']} forget rows (SHA-256 recorded, text not kept).</p>
<h2>Conclusion: {html.escape(cert['conclusion'])}</h2><ul>{rows}</ul>
<h2>Attacks</h2><table><tr><th>attack</th><th>verdict</th><th>gain over the oracle's</th><th>95 % interval</th></tr>
{atk or '<tr><td colspan=4>none recorded</td></tr>'}</table>
{_exact_html(r.get("exact"))}<h2>Model</h2>
<p>input {html.escape(r['input_model'])}; output {html.escape(r['output_model'])}</p><ul>{fp}</ul>
<p style="color:#777;font-size:12px">ledger {html.escape(cert['ledger'])}, entry chain {html.escape(r['chain'])};
certificate SHA-256 {html.escape(cert['certificate_sha256'])}. Check it with <code>obliviate verify</code>.</p>
</body></html>"""
