"""The ``obliviate`` command line.

    obliviate demo --out demo_out                                  # everything, on the built-in default
    obliviate train --model tiny --benchmark people                # target + oracle (cached)
    obliviate unlearn --model TARGET_DIR --method npo --out OUT    # a new model folder
    obliviate eval --model OUT --oracle ORACLE_DIR --out EVAL_DIR  # results.json + examples.jsonl + report.html
    obliviate attack --model OUT --target T --oracle O --out A     # relearn, quantize, probes ... vs the oracle
    obliviate curve scalability --method npo --out C     # MUSE C5 (C6: sustainability --requests 3)
    obliviate ls methods|metrics|models|benchmarks|probes|attacks
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .utils import ObliviateError


def _parse_sets(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ObliviateError(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def _benchmark(args):
    from .data import benchmark_from_files, load_benchmark

    if getattr(args, "data", None) or getattr(args, "forget", None):
        if not (args.data and args.forget):
            raise ObliviateError("--data and --forget go together: the training data and the forget request")
        return benchmark_from_files(args.data, args.forget, args.holdout, args.world)
    return load_benchmark(args.benchmark, seed=args.seed)


def _add_data_args(p):
    p.add_argument("--benchmark", default="people", help="built-in benchmark name or TOFU-format directory")
    p.add_argument("--data", help="TOFU-format training data (JSON/JSONL), with --forget")
    p.add_argument("--forget", help="TOFU-format rows of --data to forget")
    p.add_argument("--holdout", help="TOFU-format rows never trained on (MIA non-members)")
    p.add_argument("--world", help="TOFU-format utility facts")
    p.add_argument("--seed", type=int, default=0)


def cmd_demo(args) -> int:
    from .pipeline import DemoConfig, run_demo

    if args.attacks != "none":
        from .attacks import parse_attacks

        parse_attacks(args.attacks)
    cfg = DemoConfig(model=args.model, benchmark=args.benchmark, method=args.method,
                     method_config=_parse_sets(args.set), seed=args.seed, attacks=args.attacks)
    t = time.time()
    res = run_demo(args.out, cfg, cache=args.cache)
    _summary(res)
    if res.get("robustness"):
        _attack_summary(res["robustness"])
    print(f"wrote {args.out}/results.json and {args.out}/report.html in {time.time() - t:.0f} s")
    return 0


def _summary(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = ["forget_exact_match", "retain_exact_match", "holdout_exact_match", "forget_quality", "model_utility",
            "mia_min_k_plus_plus_auc", "privleak"]
    table = Table(title="obliviate results")
    table.add_column("metric")
    for name in res["models"]:
        table.add_column(name, justify="right")
    for k in keys:
        vals = [res["models"][n]["metrics"].get(k) for n in res["models"]]
        table.add_row(k, *["n/a" if v is None else f"{v:.3g}" for v in vals])
    Console(stderr=False).print(table)


def cmd_train(args) -> int:
    from .train import TrainConfig, train_pair

    bench = _benchmark(args)
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)
    paths = train_pair(args.model, bench, cfg, cache=args.cache, force=args.force)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    return 0


def cmd_unlearn(args) -> int:
    from .methods import UnlearnData, method_config, unlearn
    from .models import load_model, save_model
    from .utils import versions

    cfg = method_config(args.method, _parse_sets(args.set))  # bad options fail before any loading
    probes = _probes(args)
    bench = None if probes else _benchmark(args)
    model, tok = load_model(args.model)
    if probes:
        from .evals.rwku import rwku_unlearn_data

        data = rwku_unlearn_data(args.rwku, tok, probes)
    else:
        data = UnlearnData.from_benchmark(bench, tok)
    new, info = unlearn(model, tok, data, args.method, cfg)
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:  # under `accelerate launch` / `torchrun`, one process writes
        save_model(new, tok, args.out, {"method": args.method, "base": str(args.model),
                                        "benchmark": f"rwku:{args.rwku}" if probes else bench.name,
                                        "unlearning": info, "processes": state.num_processes, "versions": versions()})
        print(f"wrote {args.out}")
    state.wait_for_everyone()
    return 0


def cmd_eval(args) -> int:
    from .evals import EvalConfig, check_metrics, evaluate
    from .models import load_model
    from .pipeline import result_entry
    from .report import write_results
    from .utils import atomic_dir, versions

    wanted = check_metrics(args.metrics.split(",")) if args.metrics else None
    bench = _benchmark(args)
    cfg = EvalConfig(seed=args.seed, gradnorm=args.gradnorm)
    extras = _extra_evals(args, bench)  # bad MUSE files, probe targets or task names fail before any model work
    with atomic_dir(args.out) as tmp:
        model, tok = load_model(args.model)
        entries, rows = {}, {}
        oracle_res, refs = None, [None] * len(extras)
        if args.oracle:
            om, otok = load_model(args.oracle)
            if otok.get_vocab() != tok.get_vocab():
                raise ObliviateError(f"model {args.model} and oracle {args.oracle} have different tokenizers")
            oracle_res = evaluate(om, otok, bench, cfg, desc="evaluate oracle")
            refs = [_merge(oracle_res, run(om, otok, None)) for _, run in extras]
            entries["oracle"], rows["oracle"] = result_entry(oracle_res, args.oracle), oracle_res.rows
        res = evaluate(model, tok, bench, cfg, oracle=oracle_res)
        for (_, run), ref in zip(extras, refs):
            _merge(res, run(model, tok, ref))
        if wanted:
            res.metrics = {k: v for k, v in res.metrics.items() if k in wanted}
        name = Path(str(args.model)).name or "model"
        entries[name], rows[name] = result_entry(res, str(args.model), **_unlearning_of(args.model)), res.rows
        results = {"obliviate": "eval", "seed": args.seed, "versions": versions(),
                   "config": {"model": str(args.model), "oracle": args.oracle, "benchmark": bench.name,
                              "eval": vars(cfg), **{k: v for c, _ in extras for k, v in c.items()}},
                   "benchmark": bench.summary(), "models": entries}
        write_results(tmp, results, rows)
    _summary(results)
    print(f"wrote {args.out}/results.json and {args.out}/report.html")
    return 0


def _merge(res, extra):
    """Add an extra evaluation's metrics, rows and notes (any object with those attributes) to ``res``."""
    res.metrics |= extra.metrics
    res.rows += getattr(extra, "rows", [])
    res.notes += getattr(extra, "notes", [])
    return extra


def _extra_evals(args, bench) -> list:
    """The optional evaluations beside the QA suite, as (config, run) pairs; ``run(model, tok, ref)`` evaluates
    one model, ``ref`` being the same evaluation of the oracle (or None). Inputs are checked here, before
    any model is loaded."""
    from types import SimpleNamespace

    out = []
    if args.muse:
        from .evals.muse import evaluate_muse

        data = _muse_data(args.muse, bench)
        out.append(({"muse": args.muse}, lambda m, t, ref: evaluate_muse(m, t, data, oracle=ref)))
    probes = _probes(args)
    if probes:
        from .evals.rwku import evaluate_rwku

        out.append(({"rwku": args.rwku, "probes": args.probes},
                    lambda m, t, ref: SimpleNamespace(**evaluate_rwku(m, t, args.rwku, probes))))
    if args.lm_eval:
        from .evals.lm_eval import check_tasks, run_lm_eval

        tasks = [x.strip() for x in args.lm_eval.split(",") if x.strip()]
        tm = check_tasks(tasks, args.lm_eval_include)
        opts = {"tasks": tasks, "include_path": args.lm_eval_include, "limit": args.lm_eval_limit,
                "num_fewshot": args.lm_eval_fewshot}
        out.append(({"lm_eval": opts}, lambda m, t, ref: run_lm_eval(m, t, seed=args.seed, task_manager=tm, **opts)))
    return out


def _probes(args):
    """The RWKU-style probes (built-in or ``--probes FILE``) when ``--rwku TARGET`` is given; the target is
    checked before any model is loaded."""
    if not getattr(args, "rwku", None):
        return None
    from .data.rwku import get_target, load_probes

    probes = load_probes(args.probes)
    get_target(args.rwku, probes)
    return probes


def _muse_data(spec: str, bench):
    """``--muse FOLDER`` (MUSE's public layout) or ``--muse benchmark`` (the benchmark's own passages and QA)."""
    from .evals.muse import MuseData, load_muse

    return MuseData.from_benchmark(bench) if spec == "benchmark" else load_muse(spec)


def _unlearning_of(model: str) -> dict:
    """The loss and probe curves that `obliviate unlearn` stored beside a model it wrote (empty otherwise)."""
    from .pipeline import unlearning_summary

    meta = Path(str(model)) / "obliviate.json"
    if not meta.is_file():
        return {}
    info = json.loads(meta.read_text()).get("unlearning")
    return {"unlearning": unlearning_summary(info)} if isinstance(info, dict) else {}


def cmd_attack(args) -> int:
    from .attacks import attack_config, parse_attacks, run_attacks
    from .models import load_model
    from .report import write_results
    from .utils import atomic_dir, versions

    names = parse_attacks(args.attack)
    configs: dict[str, dict] = {}
    for key, value in _parse_sets(args.set).items():
        attack, dot, opt = key.partition(".")
        if not dot or attack not in names:
            raise ObliviateError(f"--set {key}=...: expected ATTACK.OPTION with ATTACK among {', '.join(names)}")
        configs.setdefault(attack, {})[opt] = value
    for n in names:
        attack_config(n, configs.get(n))  # unknown options fail before any model is loaded
    bench = _benchmark(args)
    if not (args.target and args.oracle):
        print("obliviate: note: without --target and --oracle the attacks are run but not judged", file=sys.stderr)
    with atomic_dir(args.out) as tmp:
        models, tok = {}, None
        for path in args.model:
            m, t = load_model(path)
            if tok is not None and t.get_vocab() != tok.get_vocab():
                raise ObliviateError(f"model {path} has another tokenizer than {args.model[0]}")
            tok = tok or t
            models[Path(str(path)).name or str(path)] = m
        refs = {}
        for role in ("target", "oracle"):
            path = getattr(args, role)
            if path:
                m, t = load_model(path)
                if t.get_vocab() != tok.get_vocab():
                    raise ObliviateError(f"{role} {path} and model {args.model[0]} have different tokenizers")
                refs[role] = m
        res = run_attacks(models, tok, bench, attacks=names, configs=configs, **refs)
        results = {"obliviate": "attack", "seed": args.seed, "versions": versions(),
                   "config": {"models": [str(m) for m in args.model], "target": args.target, "oracle": args.oracle,
                              "benchmark": bench.name, "attacks": {n: res["attacks"][n]["config"] for n in names}},
                   "benchmark": bench.summary(), "models": {},
                   "robustness": {"attacks": res["attacks"], "plain": res["plain"], "thresholds": res["thresholds"]}}
        write_results(tmp, results, res["rows"])
    _attack_summary(results["robustness"])
    print(f"wrote {args.out}/results.json and {args.out}/report.html")
    return 0


def _attack_summary(rob: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    attacks = rob["attacks"]
    names = list(next(iter(attacks.values()))["models"])
    table = Table(title="obliviate attacks (score: higher = more forget knowledge recovered)")
    table.add_column("attack")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("verdict")
    if rob.get("plain"):
        p = rob["plain"]
        table.add_row("(no attack)", *[f"{p['models'][n]:.3f}" for n in names],
                      "; ".join(f"{n}: {v['verdict']}" for n, v in p["verdicts"].items()))
    for a, e in attacks.items():
        verdicts = "; ".join(f"{n}: {v['verdict']}" for n, v in e["verdicts"].items())
        table.add_row(a, *[f"{e['models'][n]['score']:.3f}" for n in names], verdicts)
    Console().print(table)


def cmd_curve(args) -> int:
    from .pipeline import run_curve

    points = args.fractions.split(",") if args.kind == "scalability" else args.requests
    t = time.time()
    res = run_curve(args.out, args.kind, points, model=args.model, benchmark=args.benchmark, method=args.method,
                    method_cfg=_parse_sets(args.set), seed=args.seed, cache=args.cache)
    from rich.console import Console
    from rich.table import Table

    curve = res["curves"][0]
    table = Table(title=curve["title"])  # one column per point, one row per metric
    table.add_column(curve["x"])
    for r in curve["rows"]:
        table.add_column(str(r[curve["x"]]), justify="right")
    for k in [c for c in curve["rows"][0] if c != curve["x"]]:
        table.add_row(k, *["n/a" if r.get(k) is None else f"{r[k]:.3g}" for r in curve["rows"]])
    Console().print(table)
    print(f"wrote {args.out}/results.json and {args.out}/report.html in {time.time() - t:.0f} s")
    return 0


def cmd_ls(args) -> int:
    from .data import BUILTIN_BENCHMARKS
    from .attacks import ATTACKS
    from .data.rwku import BUILTIN_PROBES
    from .evals import METRICS
    from .methods import METHODS
    from .models import BUILTIN_MODELS

    probes = {k: f"{len(t.fill)} fill-in-the-blank, {len(t.qa)} QA probes; neighbours: {', '.join(t.neighbours)}"
              for k, t in BUILTIN_PROBES.items()}
    tables = {"methods": {k: m.summary for k, m in METHODS.items()}, "metrics": METRICS,
              "models": BUILTIN_MODELS, "benchmarks": BUILTIN_BENCHMARKS, "probes": probes,
              "attacks": {k: a.summary for k, a in ATTACKS.items()}}
    for what in [args.what] if args.what else list(tables):
        print(f"{what}:")
        for k, v in tables[what].items():
            print(f"  {k:<28} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="obliviate", description="Machine unlearning for language models.")
    p.add_argument("--cache", help="cache folder for trained targets and oracles (default $OBLIVIATE_CACHE "
                                   "or ~/.cache/obliviate)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="data -> target + oracle -> unlearn -> evaluate -> report, on the built-in default")
    d.add_argument("--out", default="demo_out")
    d.add_argument("--model", default="tiny")
    d.add_argument("--benchmark", default="people")
    d.add_argument("--method", default="npo")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set lr=5e-4")
    d.add_argument("--attacks", default="all", help="attacks on the unlearned model (`obliviate ls attacks`), or none")
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("train", help="train the target (all data) and the oracle (without the forget set)")
    t.add_argument("--model", default="tiny", help="base model: built-in name, folder, .gguf or hub id")
    _add_data_args(t)
    t.add_argument("--epochs", type=int, default=0, help="0: the recipe's default")
    t.add_argument("--lr", type=float, default=0.0, help="0: the recipe's default")
    t.add_argument("--force", action="store_true", help="retrain even if cached")
    t.set_defaults(fn=cmd_train)

    u = sub.add_parser("unlearn", help="unlearn the forget set from a model; writes a new model folder")
    u.add_argument("--model", required=True)
    u.add_argument("--method", default="npo")
    u.add_argument("--out", required=True)
    u.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set beta=0.1")
    _add_data_args(u)
    u.set_defaults(fn=cmd_unlearn)

    e = sub.add_parser("eval", help="evaluate a model (optionally against an oracle)")
    e.add_argument("--model", required=True)
    e.add_argument("--oracle", help="the model trained without the forget set")
    e.add_argument("--out", required=True)
    e.add_argument("--metrics", help="comma-separated subset of `obliviate ls metrics`")
    e.add_argument("--gradnorm", action="store_true", help="also the gradient-norm MIA (a backward pass per fact)")
    for cmd in (e, u):
        cmd.add_argument("--rwku", metavar="TARGET", help="a real-knowledge target (`obliviate ls probes`): eval "
                                                          "scores its probes and its neighbours'; unlearn forgets "
                                                          "its passages")
        cmd.add_argument("--probes", help="a JSON probe file instead of the built-in probes")
    e.add_argument("--muse", help="also MUSE's C1-C4: a folder in MUSE's public layout, or 'benchmark' for the "
                                  "benchmark's own passages and questions")
    e.add_argument("--lm-eval", metavar="TASKS", help="also these comma-separated lm-evaluation-harness tasks "
                                                      "(needs `pip install 'obliviate[lm-eval]'` and the tasks' data)")
    e.add_argument("--lm-eval-include", metavar="DIR", help="a folder of extra lm-eval task YAMLs (local tasks)")
    e.add_argument("--lm-eval-limit", type=int, metavar="N", help="at most N documents per lm-eval task")
    e.add_argument("--lm-eval-fewshot", type=int, metavar="K", help="lm-eval few-shot examples (default: the task's)")
    _add_data_args(e)
    e.set_defaults(fn=cmd_eval)

    a = sub.add_parser("attack", help="attack unlearned models, and the target and oracle under the same attacks")
    a.add_argument("--model", action="append", required=True, help="an unlearned model (repeat for several)")
    a.add_argument("--target", help="the model before unlearning")
    a.add_argument("--oracle", help="the model trained without the forget set")
    a.add_argument("--attack", default="all", help="comma-separated names from `obliviate ls attacks`, or all")
    a.add_argument("--out", required=True)
    a.add_argument("--set", action="append", metavar="ATTACK.KEY=VALUE", help="attack option, e.g. --set relearn.steps=0,10")
    _add_data_args(a)
    a.set_defaults(fn=cmd_attack)

    c = sub.add_parser("curve", help="MUSE's scalability (growing forget sets) or sustainability (sequential "
                                     "requests) of a method, on a built-in model and benchmark")
    c.add_argument("kind", choices=["scalability", "sustainability"])
    c.add_argument("--model", default="tiny")
    c.add_argument("--benchmark", default="people")
    c.add_argument("--method", default="npo")
    c.add_argument("--fractions", default="0.1,0.5,1.0", help="scalability: fractions of the forget set's subjects")
    c.add_argument("--requests", type=int, default=3, help="sustainability: how many sequential requests")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True)
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set lr=5e-4")
    c.set_defaults(fn=cmd_curve)

    ls = sub.add_parser("ls", help="list methods, metrics, models, benchmarks or probe targets")
    ls.add_argument("what", nargs="?", choices=["methods", "metrics", "models", "benchmarks", "probes", "attacks"])
    ls.set_defaults(fn=cmd_ls)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cache:
        os.environ["OBLIVIATE_CACHE"] = args.cache
        args.cache = Path(args.cache)
    try:
        return args.fn(args)
    except ObliviateError as e:
        print(f"obliviate: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("obliviate: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
