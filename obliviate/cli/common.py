"""What the verbs share: the parser with one-line errors, argument types and groups, and the translation of the
data and model arguments into the library's inputs (every check runs before any model is loaded)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from obliviate.core.utils import ObliviateError


class Parser(argparse.ArgumentParser):
    """argparse with the tool's one-line errors (argparse's own print the usage first)."""

    def error(self, message: str):
        self.exit(2, f"obliviate: error: {message}\n")


def count(text: str) -> int:
    """argparse type: an integer >= 0 (a count or a seed)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def parse_sets(items: list[str] | None, flag: str = "--set") -> dict:
    """``KEY=VALUE`` pairs; values stay text and are parsed by the option's declared type."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ObliviateError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def seed(args) -> int:
    return 0 if args.seed is None else args.seed


def with_seed(sets: dict, seed: int | None, fields: set[str]) -> dict:
    """``--seed`` seeds the run: it fills the config's ``seed`` unless ``--set seed=...`` names another."""
    if seed is None or "seed" not in fields:
        return sets
    if "seed" in sets and str(sets["seed"]).strip() != str(seed):
        raise ObliviateError(f"--seed {seed} and --set seed={sets['seed']} disagree; give one")
    return {**sets, "seed": seed}


def named_benchmark(args):
    """The benchmark the user named (``--benchmark`` or ``--data``/``--forget``), or None."""
    from obliviate.data import benchmark_from_files, load_benchmark

    if getattr(args, "data", None) or getattr(args, "forget", None):
        if not (args.data and args.forget):
            raise ObliviateError("--data and --forget go together: the training data and the forget request")
        if getattr(args, "benchmark", None):
            raise ObliviateError("--benchmark and --data/--forget both name the data; give one")
        return warned(benchmark_from_files(args.data, args.forget, args.holdout, args.world,
                                           drop_unmatched=args.drop_unmatched, calibration=args.calibration,
                                           group=args.group))
    if getattr(args, "calibration", None):
        raise ObliviateError("--calibration goes with --data and --forget (a benchmark folder can hold a "
                             "calibration.jsonl)")
    if getattr(args, "benchmark", None):
        return warned(load_benchmark(args.benchmark, seed=args.benchmark_seed or 0, group=args.group))
    if getattr(args, "group", None):
        raise ObliviateError("--group goes with --benchmark FOLDER or --data and --forget: the files it groups")
    if getattr(args, "benchmark_seed", None) is not None:
        raise ObliviateError("--benchmark-seed needs --benchmark: the built-in benchmark it seeds")
    return None


def warned(bench):
    """``bench``, after printing its loading warnings (rows without subjects) to stderr."""
    for w in bench.meta.get("warnings", []):
        print(f"obliviate: warning: {w}", file=sys.stderr)
    return bench


def benchmark(args, models: list[tuple[str, object]], optional: bool = False):
    """The benchmark a command runs on: the one named, checked against what each model folder records, or the
    recorded one (see :func:`obliviate.data.loaders.resolve_benchmark`). With ``optional``, None when nothing
    is named and no model records one (``eval --muse FOLDER`` needs no QA benchmark)."""
    from obliviate.data.loaders import recorded_benchmark, resolve_benchmark

    models = [(r, p) for r, p in models if p is not None]
    named = named_benchmark(args)
    if optional and named is None and not any(recorded_benchmark(p) for _, p in models):
        return None
    return resolve_benchmark(named, models)


def inputs(args) -> list[tuple[str, str]]:
    """``(role, path)`` of everything on disk the command reads, and the cache: an output may not touch them."""
    from obliviate.core.outputs import local_path
    from obliviate.core.utils import cache_dir

    pairs = []
    for role in ("model", "oracle", "target", "data", "forget", "holdout", "calibration", "world", "probes", "muse",
                 "lm_eval_include", "benchmark"):
        value = getattr(args, role, None)
        for v in value if isinstance(value, list) else [value]:
            if (p := local_path(v)) is not None:
                pairs.append((role.replace("_", "-"), p))
    return pairs + [("cache", str(cache_dir()))]


def check_models(*specs: tuple[str, object]) -> None:
    from obliviate.models import check_model_spec

    for role, spec in specs:
        for s in spec if isinstance(spec, list) else [spec]:
            if s is not None:
                check_model_spec(s, role)


def probes(args):
    """The RWKU-style probes (built-in or ``--probes FILE``) when ``--rwku TARGET`` is given; the target is
    checked before any model is loaded."""
    if not getattr(args, "rwku", None):
        return None
    from obliviate.data.rwku import get_target, load_probes

    found = load_probes(args.probes)
    get_target(args.rwku, found)
    return found


def wrote(out, seconds: float | None = None) -> None:
    """The final line: the output folder and everything in it."""
    from obliviate.core.outputs import MARKER

    root = Path(out)
    items = []
    for p in sorted(root.iterdir()):
        if p.name == MARKER:
            continue
        if p.is_dir():
            subs = sorted(q.name for q in p.iterdir() if q.is_dir())
            items.append(f"{p.name}/" + (f" ({', '.join(subs)})" if subs else ""))
        else:
            items.append(p.name)
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    print(f"wrote {out}{took}: {', '.join(items)}")
