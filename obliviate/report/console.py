"""Console tables (rich): the results of an evaluation and of the attacks, and the few-word verdicts they show.
The CLI prints them, and bench scripts import them from here (never from the CLI)."""
from __future__ import annotations


SUMMARY_KEYS = ("forget_exact_match", "retain_exact_match", "holdout_exact_match", "forget_quality", "model_utility",
                "mia_min_k_plus_plus_auc", "privleak")


def summary(res: dict) -> None:
    """The console table: the headline metrics that were computed (and MUSE's, RWKU's and lm-eval's when they
    ran), each with its 95 % interval, the input model first when it is known; then any warning."""
    from rich.console import Console
    from rich.table import Table

    models = ({"input (before)": res["input_model"]} if res.get("input_model") else {}) | res["models"]
    present = {k for m in models.values() for k, v in m["metrics"].items() if v is not None}
    keys = [k for k in SUMMARY_KEYS if k in present]
    keys += sorted(k for k in present if k.startswith(("muse_", "rwku_", "lm_eval_")))
    table = Table(title="obliviate results (value [95 % interval])")
    table.add_column("metric")
    for name in models:
        table.add_column(name, justify="right")
    for k in keys:
        cells = []
        for m in models.values():
            v, ci = m["metrics"].get(k), (m.get("metrics_ci") or {}).get(k)
            cells.append("n/a" if v is None else f"{v:.3g}" + (f" [{ci[0]:.2g}, {ci[1]:.2g}]" if ci else ""))
        table.add_row(k, *cells)
    console = Console()
    console.print(table)
    for w in res.get("warnings", []):
        console.print(f"[bold red]warning:[/] {w}")


def short_verdict(v: str) -> str:
    """A verdict in a few words, for console tables (the full wording, interval and rule are in results.json and
    the report)."""
    head = v.split(":")[0].split(" (")[0]
    return {"indistinguishable from the oracle": "like oracle", "knowledge recoverable": "RECOVERABLE",
            "partly recoverable": "partly", "no oracle or target under the same attack": "not judged",
            "inconclusive": "inconclusive", "partly recoverable or more": "partly+"}.get(head, head)


def gain_cells(res: dict, models) -> list[tuple[str, list[str]]]:
    """(attack, ["gain [interval] verdict" per model]) per attack of a :func:`obliviate.run_attacks` result, the
    plain questions first (concept_trace: the share of the target-oracle difference kept)."""
    out = []
    for attack, e in [("(no attack)", {"verdicts": res["plain"]["verdicts"]}), *res["attacks"].items()]:
        cells = []
        for m in models:
            v = e["verdicts"][m]
            g, ci = v.get("gain_over_oracle"), v.get("interval")
            if attack == "concept_trace":
                g, ci = v.get("recovered_share"), v.get("share_interval")
            num = f"{g:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]" if g is not None and ci else "n/a"
            cells.append(f"{num} {short_verdict(v['verdict'])}")
        out.append((attack, cells))
    return out


def attack_summary(rob: dict) -> None:
    """Scores per attack and model, each unlearned model's verdict in a few words beside its score."""
    from rich.console import Console
    from rich.table import Table

    attacks = rob["attacks"]
    names = list(next(iter(attacks.values()))["models"])
    table = Table(title="obliviate attacks (score: higher = more forget knowledge recovered)")
    table.add_column("attack", no_wrap=True)
    for n in names:
        table.add_column(n, justify="right", no_wrap=True)

    def cells(scores: dict, verdicts: dict) -> list[str]:
        return [f"{scores[n]:.3f}" + (f" {short_verdict(verdicts[n]['verdict'])}" if n in verdicts else "")
                for n in names]

    if rob.get("plain"):
        p = rob["plain"]
        table.add_row("(no attack)", *cells(p["models"], p["verdicts"]))
    for a, e in attacks.items():
        table.add_row(a, *cells({n: e["models"][n]["score"] for n in names}, e["verdicts"]))
    Console().print(table)
    for a, why in rob.get("skipped", {}).items():
        print(f"skipped {a}: {why}")


__all__ = ["attack_summary", "curve_table", "gain_cells", "short_verdict", "summary"]


def curve_table(curve: dict) -> None:
    """A curve of ``obliviate curve``: one column per point, one row per metric."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=curve["title"])
    table.add_column(curve["x"])
    for r in curve["rows"]:
        table.add_column(str(r[curve["x"]]), justify="right")
    for k in [c for c in curve["rows"][0] if c != curve["x"]]:
        table.add_row(k, *["n/a" if r.get(k) is None else f"{r[k]:.3g}" for r in curve["rows"]])
    Console().print(table)
