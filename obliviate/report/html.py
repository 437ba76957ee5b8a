"""A self-contained HTML report (inline CSS, plots as embedded PNGs): opens in a browser with no network."""
from __future__ import annotations

import base64
import html
import io

import numpy as np

# Metrics shown in the side-by-side table, in order, with the direction that is better after unlearning.
TABLE = [
    ("forget_exact_match", "Forget exact match", "match oracle"),
    ("retain_exact_match", "Retain exact match", "higher"),
    ("holdout_exact_match", "Holdout exact match (never trained)", "—"),
    ("forget_quality", "Forget quality (KS p-value vs oracle)", "higher"),
    ("model_utility", "Model utility (harmonic mean of 9)", "higher"),
    ("forget_truth_ratio", "Forget truth ratio mean(min(R,1/R))", "match oracle"),
    ("forget_rougeL_recall", "Forget ROUGE-L recall", "match oracle"),
    ("forget_prob", "Forget answer probability", "match oracle"),
    ("retain_rougeL_recall", "Retain ROUGE-L recall", "higher"),
    ("retain_prob", "Retain answer probability", "higher"),
    ("retain_truth_ratio", "Retain truth ratio mean(max(0,1-R))", "higher"),
    ("neighbours_exact_match", "Neighbour facts exact match", "higher"),
    ("world_exact_match", "World facts exact match", "higher"),
    ("mia_min_k_plus_plus_auc", "Min-K%++ AUC forget vs holdout", "match oracle"),
    ("privleak", "PrivLeak (Min-K%++, %; 0 ideal)", "near 0"),
]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _fmt(v) -> str:
    if v is None:
        return '<span class="na" title="needs an oracle or data that is not at hand">n/a</span>'
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return html.escape(str(v))


def plots(results: dict) -> list[tuple[str, str]]:
    """(title, data-URI) pairs: accuracies per split, forget truth-ratio distributions, loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    names = list(models)
    out = []
    if not names:
        return out

    splits = ["forget", "retain", "holdout", "neighbours", "world"]
    splits = [s for s in splits if any(f"{s}_exact_match" in m["metrics"] for m in models.values())]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    w = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        vals = [models[n]["metrics"].get(f"{s}_exact_match") or 0 for s in splits]
        ax.bar(np.arange(len(splits)) + i * w, vals, w, label=n)
    ax.set_xticks(np.arange(len(splits)) + w * (len(names) - 1) / 2, splits)
    ax.set_ylabel("exact match")
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Does the model still state the fact? (per split)")
    out.append(("Exact match per split", _png(fig)))

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for n in names:
        tr = np.asarray(models[n].get("forget_truth_ratios") or [], dtype=float)
        tr = np.sort(tr[~np.isnan(tr)])
        if tr.size:
            ax.step(np.log10(tr), np.arange(1, tr.size + 1) / tr.size, where="post", label=n)
    ax.set_xlabel("log10 truth ratio R = P(perturbed)/P(paraphrased) on forget facts")
    ax.set_ylabel("fraction of facts")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Forget truth ratios: the KS test behind forget quality compares these curves with the oracle's")
    out.append(("Forget truth-ratio distributions (ECDF)", _png(fig)))

    curves = {n: m["unlearning"]["loss_curve"] for n, m in models.items() if m.get("unlearning", {}).get("loss_curve")}
    if curves:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for n, c in curves.items():
            ax.plot(c, label=n)
        ax.set_xlabel("step")
        ax.set_ylabel("unlearning loss")
        ax.legend(frameon=False, fontsize=8)
        out.append(("Unlearning loss curve", _png(fig)))

    probes = {n: m["unlearning"] for n, m in models.items() if m.get("unlearning", {}).get("probe")}
    if probes:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for n, u in probes.items():
            steps = [r["step"] for r in u["probe"]]
            for side, style in (("forget", "-"), ("retain", "--")):
                if f"{side}_token_em" in u["probe"][0]:
                    ax.plot(steps, [r[f"{side}_token_em"] for r in u["probe"]], style, marker=".", label=f"{n} {side}")
            if u.get("best_step") is not None:
                ax.axvline(u["best_step"], color="#999", lw=0.8)
        ax.set_xlabel("step (grey line: the kept checkpoint)")
        ax.set_ylabel("token exact match")
        ax.set_ylim(0, 1.05)
        ax.legend(frameon=False, fontsize=8)
        out.append(("Probe during unlearning: forget vs retain token exact match", _png(fig)))
    return out


def curve_section(curve: dict) -> str:
    """A table and a plot for a curve: ``{"title", "x", "rows": [{x: .., metric: ..}], "keys": [metrics]}``
    (MUSE's scalability and sustainability, and the attacks' recovery against attack strength)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, x, keys = curve["rows"], curve["x"], [k for k in curve["keys"] if any(r.get(k) is not None for r in curve["rows"])]
    cols = [x, *[k for k in rows[0] if k not in (x, *keys)], *keys] if rows else [x, *keys]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    fig, ax = plt.subplots(figsize=(7, 3))
    for k in keys:
        pts = [(r[x], r[k]) for r in rows if r.get(k) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
    ax.set_xlabel(x)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(curve["title"], fontsize=10)
    return (f"<h3>{html.escape(curve['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<figure><img alt='{html.escape(curve['title'])}' src='{_png(fig)}'></figure>")


def robustness_section(rob: dict) -> str:
    """One row per attack (each model's score, the target's and the oracle's under the same attack, and a verdict
    per model), the thresholds behind the verdicts, and a plot per attack of its score against attack strength."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = rob["attacks"]
    names = list(next(iter(attacks.values()))["models"]) if attacks else []
    judged = [n for n in names if n not in ("target", "oracle")]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names) + "".join(
        f"<th>verdict: {html.escape(n)}</th>" for n in judged)
    body, figs = [], []
    if rob.get("plain"):
        p = rob["plain"]
        cells = "".join(f"<td>{_fmt(p['models'].get(n))}</td>" for n in names)
        cells += "".join(f"<td class='verdict'>{html.escape(p['verdicts'][n]['verdict'])}</td>" for n in judged)
        body.append(f"<tr><th>no attack<br><span class='dir'>forget accuracy</span></th>{cells}</tr>")
    for a, e in attacks.items():
        cells = "".join(f"<td>{_fmt(e['models'][n]['score'])}</td>" for n in names)
        cells += "".join(f"<td class='verdict'>{html.escape(e['verdicts'][n]['verdict'])}</td>" for n in judged)
        body.append(f"<tr><th title='{html.escape(e['summary'])}'>{html.escape(a)}<br><span class='dir'>"
                    f"{html.escape(e.get('unit', ''))}</span></th>{cells}</tr>")
        fig, ax = plt.subplots(figsize=(7, 2.6))
        for n in names:
            c = e["models"][n]["curve"]
            ax.plot([str(p["strength"]) for p in c], [p["score"] for p in c], marker="o",
                    ls="--" if n in ("target", "oracle") else "-", label=n)
        ax.set_xlabel(e.get("strength", "attack strength"))
        ax.set_ylabel(e.get("unit", "score"), fontsize=8)
        ax.legend(frameon=False, fontsize=8)
        ax.set_title(f"{a}: {e['summary']}", fontsize=9)
        figs.append(f"<figure><img alt='{html.escape(a)}' src='{_png(fig)}'></figure>")
    t = rob.get("thresholds", {})
    rule = (f"Verdicts compare each model with the oracle under the identical attack. The attack is informative when "
            f"the target scores more than {t.get('informative')} above the oracle; a model within "
            f"{t.get('same_as_oracle')} of the oracle is indistinguishable from it; a model that recovers at least "
            f"{t.get('recoverable')} of the target-oracle gap has its knowledge recoverable; partly recoverable "
            f"in between.")
    return (f"<h2>Robustness: attacks, each also run on the target and the oracle</h2><p>{html.escape(rule)}</p>"
            f"<table><thead><tr><th>attack</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{''.join(figs)}")


def render(results: dict) -> str:
    """The report page for a ``results.json`` dictionary."""
    models = results["models"]
    names = list(models)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    shown = set()
    for key, label, better in TABLE:
        if not any(key in m["metrics"] for m in models.values()):
            continue
        shown.add(key)
        cells = "".join(f"<td>{_fmt(models[n]['metrics'].get(key))}</td>" for n in names)
        rows.append(f"<tr><th title='{key}'>{html.escape(label)}</th>{cells}<td class='dir'>{better}</td></tr>")
    other = sorted({k for m in models.values() for k in m["metrics"]} - shown)
    for key in other:
        cells = "".join(f"<td>{_fmt(models[n]['metrics'].get(key))}</td>" for n in names)
        rows.append(f"<tr class='minor'><th>{html.escape(key)}</th>{cells}<td></td></tr>")
    figs = "".join(f"<figure><img alt='{html.escape(t)}' src='{uri}'><figcaption>{html.escape(t)}</figcaption></figure>"
                   for t, uri in plots(results))
    notes = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(x)}</li>" for n, m in models.items() for x in m.get("notes", []))
    notes += "".join(f"<li>{html.escape(x)}</li>" for x in results.get("notes", []))
    curves = "".join(curve_section(c) for c in results.get("curves", []))
    table = (f"<h2>Models side by side</h2><table><thead><tr><th>metric</th>{head}<th>better</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if names else ""
    timings = "".join(f"<li>{html.escape(k)}: {v:.1f} s</li>" for k, v in results.get("timings", {}).items())
    cfg = html.escape(_yaml(results.get("config", {})))
    vers = ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>obliviate report</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}}
th:first-child{{text-align:left;font-weight:normal}}thead th{{font-weight:bold;text-align:right}}
td.dir,span.dir{{color:#777;font-size:12px}}td.verdict{{text-align:left;font-size:12px}}.na{{color:#a00}}tr.minor{{color:#666;font-size:12px}}
figure{{margin:1.5em 0}}img{{max-width:100%}}pre{{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}}</style>
</head><body><h1>obliviate report</h1>
<p>Benchmark <b>{html.escape(results.get('benchmark', {}).get('name', ''))}</b>, seed {results.get('seed')}.
"Forgotten" means indistinguishable from the <b>oracle</b>: the same model trained without the forget set.</p>
{table}{robustness_section(results['robustness']) if results.get('robustness') else ''}
{'<h2>Curves</h2>' + curves if curves else ''}
{'<h2>Plots</h2>' + figs if figs else ''}
<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul>
<h2>Timings</h2><ul>{timings}</ul>
<h2>Resolved configuration</h2><pre>{cfg}</pre><p style="color:#777;font-size:12px">{html.escape(vers)}</p>
</body></html>"""


def _yaml(obj) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False)
