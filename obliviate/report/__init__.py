"""Results files: ``results.json`` (aggregates, config, seed, versions), ``config.yaml`` (the resolved
configuration alone), ``examples.jsonl`` (per-example rows) and ``report.html``."""
from __future__ import annotations

import json
from pathlib import Path

from obliviate.core.utils import to_jsonable, write_json_atomic
from obliviate.report.html import render


SCHEMA_VERSION = 1
KINDS = ("demo", "eval", "attack", "tune", "scalability", "sustainability")


def results(kind: str, *, seed: int | None, config: dict, benchmark: dict | None = None,
            models: dict | None = None, **sections) -> dict:
    """The one ``results.json`` shape every workflow writes: ``obliviate`` (which workflow), ``schema_version``,
    ``seed``, ``versions``, ``config``, ``benchmark`` (its summary), ``models`` (name -> entry with ``metrics``,
    ``metrics_ci``, ``notes``, ``info``), then the workflow's own sections (``robustness``, ``timings``,
    ``warnings``, ``input_model``, ``tune``, ``curves``, ...). ``schema_version`` changes when a field a reader
    relies on changes."""
    from obliviate.core.utils import versions

    if kind not in KINDS:
        raise ValueError(f"results kind {kind!r}; expected one of {KINDS}")
    return {"obliviate": kind, "schema_version": SCHEMA_VERSION, "seed": seed, "versions": versions(),
            "config": config, "benchmark": benchmark or {}, "models": models or {}, **sections}


def write_results(out_dir: str | Path, results: dict, rows: dict[str, list[dict]] | None = None) -> None:
    """Write results.json, config.yaml, examples.jsonl (one row per model, split and example) and
    report.html into ``out_dir`` (the caller makes ``out_dir`` atomic)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = to_jsonable(results)
    write_json_atomic(out / "results.json", results)
    import yaml

    (out / "config.yaml").write_text(yaml.safe_dump({"seed": results.get("seed"), **results.get("config", {})},
                                                    sort_keys=False), encoding="utf-8")
    if rows:
        with open(out / "examples.jsonl", "w", encoding="utf-8") as f:
            for model, rs in rows.items():
                for r in rs:
                    f.write(json.dumps(to_jsonable({"model": model, **r}), ensure_ascii=False) + "\n")
    (out / "report.html").write_text(render(results), encoding="utf-8")


__all__ = ["SCHEMA_VERSION", "render", "results", "write_results"]
