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
    ("model_utility", "Model utility (harmonic mean of {n} terms)", "higher"),
    ("forget_truth_ratio", "Forget truth ratio mean(min(R,1/R))", "match oracle"),
    ("forget_rougeL_recall", "Forget ROUGE-L recall", "match oracle"),
    ("forget_prob", "Forget answer probability", "match oracle"),
    ("retain_rougeL_recall", "Retain ROUGE-L recall", "higher"),
    ("retain_prob", "Retain answer probability", "higher"),
    ("retain_truth_ratio", "Retain truth ratio mean(max(0,1-R))", "higher"),
    ("neighbours_exact_match", "Neighbour facts exact match", "higher"),
    ("world_exact_match", "World facts exact match", "higher"),
    ("forget_mc_accuracy", "Forget multiple choice (chance 1/(1+false answers))", "match oracle"),
    ("mia_min_k_auc", "Min-K% AUC forget vs holdout", "match oracle"),
    ("privleak", "PrivLeak (Min-K%, MUSE's sign: -100 never unlearned, 0 ideal, >0 over-unlearned)", "near 0"),
]


def _legend(ax) -> None:
    """A legend, when the plot has labelled lines (an empty one warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"


def _fmt(v, ci=None) -> str:
    """A value, with its 95 % interval beneath when there is one."""
    if v is None:
        return '<span class="na" title="needs an oracle or data that is not at hand">n/a</span>'
    if isinstance(v, float):
        cell = _num(v)
        if ci:
            cell += f"<br><span class='ci' title='95 % interval, subject-level bootstrap'>[{_num(ci[0])}, {_num(ci[1])}]</span>"
        return cell
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
        cis = [(models[n].get("metrics_ci") or {}).get(f"{s}_exact_match") for s in splits]
        err = np.array([[v - c[0], c[1] - v] if c else [0, 0] for v, c in zip(vals, cis)]).T
        ax.bar(np.arange(len(splits)) + i * w, vals, w, label=n, yerr=np.clip(err, 0, None), capsize=2)
    ax.set_xticks(np.arange(len(splits)) + w * (len(names) - 1) / 2, splits)
    ax.set_ylabel("exact match (95 % interval)")
    ax.set_ylim(0, 1.05)
    _legend(ax)
    ax.set_title("Does the model still state the fact? (per split)")
    out.append(("Exact match per split, with subject-level bootstrap intervals", _png(fig)))

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for n in names:
        tr = np.asarray(models[n].get("forget_truth_ratios") or [], dtype=float)
        tr = np.sort(tr[~np.isnan(tr)])
        if tr.size:
            ax.step(np.log10(tr), np.arange(1, tr.size + 1) / tr.size, where="post", label=n)
    ax.set_xlabel("log10 truth ratio R = P(perturbed)/P(paraphrased) on forget facts")
    ax.set_ylabel("fraction of facts")
    _legend(ax)
    ax.set_title("Forget truth ratios: the KS test behind forget quality compares these curves with the oracle's")
    out.append(("Forget truth-ratio distributions (ECDF)", _png(fig)))

    curves = {n: m["unlearning"]["loss_curve"] for n, m in models.items() if m.get("unlearning", {}).get("loss_curve")}
    if curves:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for n, c in curves.items():
            ax.plot(c, label=n)
        ax.set_xlabel("step")
        ax.set_ylabel("unlearning loss")
        _legend(ax)
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
        _legend(ax)
        out.append(("Probe during unlearning: forget vs retain token exact match", _png(fig)))

    stops = {n: m["unlearning"]["stop"] for n, m in models.items() if m.get("unlearning", {}).get("stop")}
    if stops:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for n, st in stops.items():
            steps = [r["step"] for r in st["curve"]]
            for k, style in (("loss", "-"), ("min_k", "--")):
                ax.plot(steps, [r[f"{k}_auc"] for r in st["curve"]], style, marker=".", label=f"{n} {k} AUC")
                ax.fill_between(steps, [r[f"{k}_auc_ci"][0] for r in st["curve"]],
                                [r[f"{k}_auc_ci"][1] for r in st["curve"]], alpha=0.15)
            ax.axvline(st["chosen_step"], color="#999", lw=0.8)
        ax.axhline(0.5, color="#3a3", ls=":", lw=1)
        ax.set_xlabel("step (grey line: the returned step)")
        ax.set_ylabel("AUC forget vs calibration")
        ax.set_ylim(0, 1.02)
        _legend(ax)
        st = next(iter(stops.values()))
        title = (f"Calibrated stop (stop=holdout): step {st['chosen_step']} of {st['steps_run']} run, "
                 f"{st['reason']}; 0.5 = indistinguishable from facts never trained on")
        out.append((title, _png(fig)))
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
    _legend(ax)
    ax.set_title(curve["title"], fontsize=10)
    return (f"<h3>{html.escape(curve['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<figure><img alt='{html.escape(curve['title'])}' src='{_png(fig)}'></figure>")


def _verdict_cell(v: dict) -> str:
    text = html.escape(v["verdict"])
    if v.get("gain_over_oracle") is not None and v.get("interval"):
        lo, hi = v["interval"]
        text += (f"<br><span class='ci' title='the attack gives this model this much more than it gives the oracle "
                 f"(95 % interval)'>vs oracle {v['gain_over_oracle']:+.2f} [{lo:+.2f}, {hi:+.2f}]</span>")
    return f"<td class='verdict'>{text}</td>"


def robustness_section(rob: dict) -> str:
    """One row per attack (each model's score, the target's and the oracle's under the same attack, and a verdict
    per model with its interval), the rules behind the verdicts, the attacks skipped and why, and a plot per attack
    of its score against attack strength."""
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
        cells += "".join(_verdict_cell(p["verdicts"][n]) for n in judged)
        body.append(f"<tr><th>no attack<br><span class='dir'>forget accuracy</span></th>{cells}</tr>")
    rules = {}
    for a, e in attacks.items():
        cells = "".join(f"<td>{_fmt(e['models'][n]['score'])}</td>" for n in names)
        cells += "".join(_verdict_cell(e["verdicts"][n]) for n in judged)
        for v in e["verdicts"].values():
            rules.setdefault(e.get("kind", "gain"), v.get("rule", ""))
        body.append(f"<tr><th title='{html.escape(e['summary'])}'>{html.escape(a)}<br><span class='dir'>"
                    f"{html.escape(e.get('unit', ''))}</span></th>{cells}</tr>")
        fig, ax = plt.subplots(figsize=(7, 2.6))
        for n in names:
            c = e["models"][n]["curve"]
            ax.plot([str(p["strength"]) for p in c], [p["score"] for p in c], marker="o",
                    ls="--" if n in ("target", "oracle") else "-", label=n)
        ax.set_xlabel(e.get("strength", "attack strength"))
        ax.set_ylabel(e.get("unit", "score"), fontsize=8)
        _legend(ax)
        ax.set_title(f"{a}: {e['summary']}", fontsize=9)
        figs.append(f"<figure><img alt='{html.escape(a)}' src='{_png(fig)}'></figure>")
    rule_list = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(r)}</li>" for k, r in rules.items() if r)
    skipped = "".join(f"<li>{html.escape(a)}: {html.escape(w)}</li>" for a, w in rob.get("skipped", {}).items())
    return (f"<h2>Robustness: attacks, each also run on the target and the oracle</h2>"
            f"<p>Every verdict compares what the attack recovers from a model with what the identical attack recovers "
            f"from the oracle, with a 95 % interval from a bootstrap over forget subjects.</p><ul>{rule_list}</ul>"
            f"<table><thead><tr><th>attack</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f"<p>Skipped (they do not apply to this benchmark):</p><ul>{skipped}</ul>" if skipped else "")
            + "".join(figs))


def intrinsic_section(models: dict) -> str:
    """ConceptVectors' weight-level measurements of each unlearned model (and its oracle) on the target's concept
    vectors of the forget subjects, with intervals over subjects."""
    from obliviate.methods.editing.intrinsic import METRICS as INTRINSIC

    rows = []
    for name, m in models.items():
        block = m.get("intrinsic")
        if not block:
            continue
        if "skipped" in block:
            why = html.escape(block["skipped"])
            rows.append(f"<tr><td>{html.escape(name)}</td><td colspan=4>skipped: {why}</td></tr>")
            continue
        for who, part in (("", block["model"]), (" (oracle)", block.get("oracle") or {})):
            if "metrics" in part:
                cells = "".join(f"<td>{_fmt(part['metrics'][k], part['ci'].get(k))}</td>" for k in INTRINSIC)
                rows.append(f"<tr><td>{html.escape(name + who)}</td>{cells}</tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{k}</th>" for k in INTRINSIC)
    return ("<h2>Intrinsic evidence (concept vectors)</h2><p>The target's MLP value vectors that carry each forget "
            "subject, read before and after (ConceptVectors, Hong et al. 2024): a method that leaves them intact "
            "(cosine 1, Jaccard 1) may only hide the knowledge.</p>"
            f"<table><thead><tr><th>model</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def guard_section(models: dict) -> str:
    """An inference-time guard's classifier: what it misses per question form, what it wrongly flags, and what
    forget text the deployment keeps."""
    out = []
    for name, m in models.items():
        g = m.get("guard")
        if not g:
            continue
        rates = g["classifier_rates"]
        rows = "".join(f"<tr><td>{what}: {html.escape(k)}</td><td>{_fmt(v['rate'], v['ci'])}</td><td>{v['n']}</td></tr>"
                       for what, part in (("misses", "false_negative"), ("flags", "false_positive"))
                       for k, v in rates[part].items())
        out.append(f"<h2>Guard: {html.escape(name)} ({html.escape(g['kind'])})</h2><p><b>{html.escape(g['note'])}</b>. "
                   f"It keeps {len(g['retained_forget_text'])} forget-set text(s) at inference.</p>"
                   f"<table><thead><tr><th>classifier</th><th>rate</th><th>prompts</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table>")
    return "".join(out)


SUBJECTS_SHOWN = 100  # rows of the per-subject table; the rest are counted


def subjects_section(models: dict) -> str:
    """Each forget subject (person) with the number of its facts each model still states: a request names people,
    and a mean over them can hide one left fully intact. Counts only, no verdict (a few facts per person)."""
    per = {n: {s["subject"]: s for s in m.get("info", {}).get("forget_by_subject") or []} for n, m in models.items()}
    per = {n: v for n, v in per.items() if v}
    subjects = list(dict.fromkeys(s for v in per.values() for s in v))
    if not subjects or all(s["facts"] == 1 for v in per.values() for s in v.values()):
        return ""  # no subjects (each fact its own): the table would repeat the per-fact exact match
    names = list(per)

    def cell(n, subj):
        s = per[n].get(subj)
        return "<td>–</td>" if s is None else (f"<td title='mean answer probability {s['prob']:.3f}'>"
                                               f"{s['stated']} / {s['facts']}</td>")

    body = [f"<tr><td>{html.escape(subj)}</td>{''.join(cell(n, subj) for n in names)}</tr>"
            for subj in subjects[:SUBJECTS_SHOWN]]
    anyone = "".join(f"<td>{sum(s['stated'] > 0 for s in per[n].values())} / {len(per[n])}</td>" for n in names)
    body.append(f"<tr><th>subjects with any fact still stated</th>{anyone}</tr>")
    more = (f"<p>{len(subjects) - SUBJECTS_SHOWN} more subjects are in results.json "
            "(<code>info.forget_by_subject</code>).</p>") if len(subjects) > SUBJECTS_SHOWN else ""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    return ("<h2>Forget subjects</h2><p>Facts of each forget subject that the greedy answer still states (exact "
            "match), per model; hover for the mean answer probability. Counts, not verdicts: a subject has too few "
            "facts for an interval. Compare with the oracle, which never saw them.</p>"
            f"<table><thead><tr><th>subject</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}")


MARGIN = 0.10  # "like the oracle": the whole interval within this of the oracle's (the attacks' and certificate's)
COLOURS = {"good": ("#e6f4ea", "#1e7e34"), "bad": ("#fde8e8", "#c0392b"), "open": ("#fff4e0", "#b26a00")}


def _iv(ci) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def _line(kind: str, text: str) -> str:
    bg, fg = COLOURS[kind]
    return (f"<p style='background:{bg};border-left:5px solid {fg};padding:8px 12px;margin:.4em 0'>"
            f"{text}</p>")


def _honoured(m: dict, o: dict | None) -> tuple[str, str]:
    """(kind, sentence): is the model's forget exact match like the oracle's?"""
    v, ci = m["metrics"].get("forget_exact_match"), (m.get("metrics_ci") or {}).get("forget_exact_match")
    if v is None:
        return "open", "Forget exact match was not measured."
    if o is None or o["metrics"].get("forget_exact_match") is None:
        return "open", (f"It states {v:.2f}{_iv(ci)} of the forget facts; without an oracle there is no verdict "
                        "on whether that is what a model that never saw them would state.")
    ov, oci = o["metrics"]["forget_exact_match"], (o.get("metrics_ci") or {}).get("forget_exact_match")
    text = f"it states {v:.2f}{_iv(ci)} of the forget facts, the oracle {ov:.2f}{_iv(oci)}"
    if ci and oci and ci[0] >= oci[0] - MARGIN and ci[1] <= oci[1] + MARGIN:
        return "good", f"<b>Request honoured on the plain questions</b>: {text} (within {MARGIN} of it)."
    if ci and oci and ci[0] > oci[1] + MARGIN:
        return "bad", f"<b>Request not honoured</b>: {text}; it still states what the oracle does not."
    return "open", f"<b>Not shown honoured</b>: {text}; the intervals do not settle it."


def _cost(m: dict, before: dict | None) -> tuple[str, str]:
    """(kind, sentence): what the unlearning cost on retain and utility against the input model."""
    if before is None:
        return "open", "The input model is not known here, so the cost of the unlearning is not measured."
    parts, kind = [], "good"
    for key, label in (("retain_exact_match", "retain exact match"), ("model_utility", "model utility")):
        a, b = m["metrics"].get(key), before["metrics"].get(key)
        if a is None or b is None:
            continue
        ci = (m.get("metrics_ci") or {}).get(key)
        parts.append(f"{label} {b:.2f} → {a:.2f}{_iv(ci)}")
        if b - a > MARGIN and (not ci or ci[1] < b - MARGIN):
            kind = "bad"
    if not parts:
        return "open", "No retain metric was measured, so the cost of the unlearning is not known."
    return kind, ("<b>What it cost</b>: " + "; ".join(parts) + " against the input model"
                  + (f" (a drop of more than {MARGIN})." if kind == "bad" else "."))


def _recovered(rob: dict | None, name: str) -> tuple[str, str] | None:
    """(kind, sentence): how the attacks judged the model, or None without attacks."""
    if not rob or not rob.get("attacks"):
        return None
    verdicts = {a: e["verdicts"][name]["verdict"] for a, e in rob["attacks"].items() if name in e.get("verdicts", {})}
    groups = {"recover": [a for a, v in verdicts.items() if v.startswith(("knowledge recoverable", "partly"))],
              "residual": [a for a, v in verdicts.items() if v.startswith(("residual", "not removed"))],
              "like": [a for a, v in verdicts.items() if v.startswith(("indistinguishable", "below the oracle",
                                                                            "trace removed", "uninformative"))]}
    rest = [a for a in verdicts if not any(a in g for g in groups.values())]
    bits = []
    if groups["recover"]:
        bits.append(f"recovered by {', '.join(groups['recover'])}")
    if groups["residual"]:
        bits.append(f"still stated or kept under {', '.join(groups['residual'])}")
    if groups["like"]:
        bits.append(f"like the oracle under {', '.join(groups['like'])}")
    if rest:
        bits.append(f"inconclusive under {', '.join(rest)}")
    kind = "bad" if groups["recover"] else ("open" if groups["residual"] or rest else "good")
    return kind, "<b>What the attacks recovered</b>: " + "; ".join(bits) + "."


def verdict_section(results: dict) -> str:
    """The first screen: warnings, then per unlearned model whether the request was honoured (forget against the
    oracle), what it cost (against the input model) and what the attacks recovered, in words and colour."""
    models = results["models"]
    out = [_line("bad", f"<b>Warning</b>: {html.escape(w)}") for w in results.get("warnings", [])]
    before = results.get("input_model") or models.get("target")
    oracle = models.get("oracle")
    for name, m in models.items():
        if name in ("target", "oracle"):
            continue
        out.append(f"<h2>Verdict: {html.escape(name)}</h2>")
        for line in (_honoured(m, oracle), _cost(m, before), _recovered(results.get("robustness"), name)):
            if line is not None:
                out.append(_line(*line))
    return "".join(out)


def render(results: dict) -> str:
    """The report page for a ``results.json`` dictionary: the verdict first, then the details."""
    models = ({"input (before)": results["input_model"]} if results.get("input_model") else {}) | results["models"]
    names = list(models)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    shown = set()
    terms = next((len(m.get("info", {}).get("model_utility_terms", [])) for m in models.values()
                  if m.get("info", {}).get("model_utility_terms")), 9)
    for key, label, better in TABLE:
        if not any(key in m["metrics"] for m in models.values()):
            continue
        shown.add(key)
        cells = "".join(f"<td>{_fmt(models[n]['metrics'].get(key), (models[n].get('metrics_ci') or {}).get(key))}</td>"
                        for n in names)
        rows.append(f"<tr><th title='{key}'>{html.escape(label.format(n=terms))}</th>{cells}"
                    f"<td class='dir'>{better}</td></tr>")
    other = sorted({k for m in models.values() for k in m["metrics"]} - shown)
    for key in other:
        cells = "".join(f"<td>{_fmt(models[n]['metrics'].get(key), (models[n].get('metrics_ci') or {}).get(key))}</td>"
                        for n in names)
        rows.append(f"<tr class='minor'><th>{html.escape(key)}</th>{cells}<td></td></tr>")
    figs = "".join(f"<figure><img alt='{html.escape(t)}' src='{uri}'><figcaption>{html.escape(t)}</figcaption></figure>"
                   for t, uri in plots(results))
    notes = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(x)}</li>" for n, m in models.items() for x in m.get("notes", []))
    notes += "".join(f"<li>{html.escape(x)}</li>" for x in results.get("notes", []))
    rule = next((m["info"]["exact_match_rule"] for m in models.values() if m.get("info", {}).get("exact_match_rule")), None)
    if rule:
        notes += f"<li><b>exact match</b>: {html.escape(rule)}</li>"
    if any(m.get("metrics_ci") for m in models.values()):
        notes += ("<li><b>intervals</b>: 95 % percentile intervals from a bootstrap over subjects (people), not "
                  "facts, with the oracle's facts resampled with the model's</li>")
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
td.dir,span.dir{{color:#777;font-size:12px}}span.ci{{color:#777;font-size:11px;white-space:nowrap}}td.verdict{{text-align:left;font-size:12px}}.na{{color:#a00}}tr.minor{{color:#666;font-size:12px}}
figure{{margin:1.5em 0}}img{{max-width:100%}}pre{{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}}</style>
</head><body><h1>obliviate report</h1>
{verdict_section(results)}
<p>Benchmark <b>{html.escape(results.get('benchmark', {}).get('name', ''))}</b>, seed {results.get('seed')}.
"Forgotten" means indistinguishable from the <b>oracle</b>: the same model trained without the forget set.</p>
{table}{subjects_section(models)}{guard_section(models)}{intrinsic_section(models)}{robustness_section(results['robustness']) if results.get('robustness') else ''}
{'<h2>Curves</h2>' + curves if curves else ''}
{'<h2>Plots</h2>' + figs if figs else ''}
<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul>
<h2>Timings</h2><ul>{timings}</ul>
<h2>Resolved configuration</h2><pre>{cfg}</pre><p style="color:#777;font-size:12px">{html.escape(vers)}</p>
</body></html>"""


def _yaml(obj) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False)
