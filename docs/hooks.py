"""MkDocs hook: the reference tables are generated from obliviate's registries and CLI parser, and measured
numbers are rendered from ``bench/results/*.json``, so that no table or number on the site is typed by hand.

A page asks for a table with a marker on its own line: ``<!-- obliviate:methods -->``, ``metrics``, ``attacks``,
``options``, ``families``, ``cli``, or ``results:NAME`` (one ``bench/results/NAME.json``)."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- obliviate:([a-z0-9_:.-]+) -->$", re.M)


def _row(*cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _methods() -> str:
    from obliviate.methods import METHODS

    out = [_row("method", "trains weights", "LoRA", "retain term", "summary"), _row("---", "---", "---", "---", "---")]
    for name, m in METHODS.items():
        out.append(_row(f"`{name}`", "yes" if m.trains else "no", "yes" if m.lora else "no",
                        "yes" if m.retain_term else "no", m.summary))
    return "\n".join(out)


def _families() -> str:
    from obliviate.methods import FAMILIES, METHODS

    out = [_row("family", "folder", "trains weights", "returns", "prepares", "adds evidence", "methods", "summary"),
           _row(*["---"] * 8)]
    for name, f in FAMILIES.items():
        members = ", ".join(f"`{m}`" for m, e in METHODS.items() if e.family is f)
        out.append(_row(name, f"`obliviate/methods/{name}/`", "yes" if f.trains else "no",
                        "a guarded model" if f.returns_model else "an updated model",
                        "yes" if f.prepare else "", "yes" if f.evidence else "", members, f.summary))
    return "\n".join(out)


def _metrics() -> str:
    from obliviate.evals import METRICS

    out = [_row("metric", "better", "needs an oracle", "what it is"), _row("---", "---", "---", "---")]
    out += [_row(f"`{k}`", s.better, "yes" if s.needs_oracle else "", s.description) for k, s in METRICS.items()]
    return "\n".join(out)


def _attacks() -> str:
    from obliviate.attacks import ATTACKS

    out = [_row("attack", "judged by", "what it does"), _row("---", "---", "---")]
    out += [_row(f"`{k}`", a.kind, a.summary) for k, a in ATTACKS.items()]
    return "\n".join(out)


def _options() -> str:
    from obliviate.attacks import ATTACKS
    from obliviate.methods import METHODS
    from obliviate.core.options import describe

    parts = []
    for kind, table in (("method", METHODS), ("attack", ATTACKS)):
        for name, entry in table.items():
            rows = [_row("option", "type", "default", "rule", "help"), _row("---", "---", "---", "---", "---")]
            for r in describe(entry.config):
                rows.append(_row(f"`{r['name']}`", r["type"], "model's default" if r["default"] is None
                                 else f"`{r['default']!r}`", r["constraint"] or "", r["help"]))
            parts.append(f"### {kind} `{name}`\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _cli() -> str:
    from obliviate.cli import build_parser

    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # argparse keeps the sub-commands here
    return "\n\n".join(f"### `obliviate {name}`\n\n```text\n{sub.format_help().strip()}\n```"
                       for name, sub in verbs.items())


def _cell(c) -> str:
    return c["text"] if isinstance(c, dict) else str(c)


def _results(name: str) -> str:
    """One bench's results file: where and when it was measured, its values, the lines of findings and the tables
    it printed, each as the script recorded it."""
    path = ROOT / "bench" / "results" / f"{name}.json"
    if not path.is_file():
        return (f'!!! note "Not measured at this version"\n    `bench/results/{name}.json` is not in this tree: the '
                "numbers this section held were withdrawn when the code they measured changed, until the bench "
                "script that writes the file is run again.")
    rec = json.loads(path.read_text(encoding="utf-8"))
    out = [f"Measured by `{rec['command']}` at commit `{rec['commit'][:10]}`"
           f"{' (with uncommitted changes)' if rec.get('dirty') else ''} on {rec['date'][:10]}, "
           f"{rec['machine']['cpu']}, {rec['machine']['cores']} cores, {rec['machine'].get('threads', '?')} "
           f"thread(s); torch {rec['versions'].get('torch')}."]
    # scalars and ``{"value", "ci"}`` pairs; nested records (per-model evaluations) are the tables' data, shown there
    shown = {k: v for k, v in rec.get("values", {}).items() if not isinstance(v, (dict, list)) or
             (isinstance(v, dict) and "value" in v)}
    if shown:
        rows = [_row("value", "measured"), _row("---", "---")]
        for k, v in shown.items():
            if isinstance(v, dict):
                c = f"{v['value']:.4g} [{v['ci'][0]:.3g}, {v['ci'][1]:.3g}]" if v.get("ci") else f"{v['value']:.4g}"
            else:
                c = "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else v)
            rows.append(_row(f"`{k}`", c))
        out.append("\n".join(rows))
    for tab in rec.get("tables", []):
        out.append(f"**{tab['title']}**\n\n" + "\n".join(
            [_row(*tab["header"]), _row(*["---"] * len(tab["header"]))] + [_row(*map(_cell, r)) for r in tab["rows"]]))
    if rec.get("lines"):
        out.append("\n".join(f"- {line}" for line in rec["lines"]))
    cfg = ", ".join(f"{k} {v}" for k, v in rec.get("config", {}).items())
    if cfg:
        out.append(f"Configuration: {cfg}.")
    return "\n\n".join(out)


def render(marker: str) -> str:
    if marker.startswith("results:"):
        return _results(marker.split(":", 1)[1])
    return {"methods": _methods, "families": _families, "metrics": _metrics, "attacks": _attacks, "options": _options,
            "cli": _cli}[marker]()


def on_page_markdown(markdown: str, **kwargs) -> str:
    return MARKER.sub(lambda m: render(m.group(1)), markdown)
