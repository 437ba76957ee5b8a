"""The ``obliviate`` command line.

    obliviate demo --out demo_out                                  # everything, on the built-in default
    obliviate train --model tiny --benchmark people                # target + oracle (cached)
    obliviate unlearn --model TARGET_DIR --method npo --out OUT    # a new model folder
    obliviate eval --model OUT --oracle ORACLE_DIR --out EVAL_DIR  # results.json + examples.jsonl + report.html
    obliviate attack --model OUT --target T --oracle O --out A     # relearn, quantize, probes ... vs the oracle
    obliviate curve scalability --method npo --out C     # MUSE C5 (C6: sustainability --requests 3)
    obliviate ls methods|metrics|models|benchmarks|probes|attacks  # or `obliviate ls npo`: a method's options

Every bad input (an option, a file, a model, an output folder) stops with one line ``obliviate: error: ...``
and exit code 2 before any model is loaded, and nothing is written. Outputs never replace a file or folder
obliviate did not write (see :mod:`obliviate.core.outputs`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from obliviate.report import results as build_results
from obliviate.report.console import attack_summary, summary
from obliviate.core.utils import ObliviateError

LS_TABLES = ("methods", "metrics", "models", "benchmarks", "probes", "attacks")


class _Parser(argparse.ArgumentParser):
    """argparse with the tool's one-line errors (argparse's own print the usage first)."""

    def error(self, message: str):
        self.exit(2, f"obliviate: error: {message}\n")


def _count(text: str) -> int:
    """argparse type: an integer >= 0 (a count or a seed)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _parse_sets(items: list[str] | None, flag: str = "--set") -> dict:
    """``KEY=VALUE`` pairs; values stay text and are parsed by the option's declared type."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ObliviateError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def _seed(args) -> int:
    return 0 if args.seed is None else args.seed


def _with_seed(sets: dict, seed: int | None, fields: set[str]) -> dict:
    """``--seed`` seeds the run: it fills the config's ``seed`` unless ``--set seed=...`` names another."""
    if seed is None or "seed" not in fields:
        return sets
    if "seed" in sets and str(sets["seed"]).strip() != str(seed):
        raise ObliviateError(f"--seed {seed} and --set seed={sets['seed']} disagree; give one")
    return {**sets, "seed": seed}


def _named_benchmark(args):
    """The benchmark the user named (``--benchmark`` or ``--data``/``--forget``), or None."""
    from obliviate.data import benchmark_from_files, load_benchmark

    if getattr(args, "data", None) or getattr(args, "forget", None):
        if not (args.data and args.forget):
            raise ObliviateError("--data and --forget go together: the training data and the forget request")
        if getattr(args, "benchmark", None):
            raise ObliviateError("--benchmark and --data/--forget both name the data; give one")
        return _warned(benchmark_from_files(args.data, args.forget, args.holdout, args.world,
                                            drop_unmatched=args.drop_unmatched, calibration=args.calibration,
                                            group=args.group))
    if getattr(args, "calibration", None):
        raise ObliviateError("--calibration goes with --data and --forget (a benchmark folder can hold a "
                             "calibration.jsonl)")
    if getattr(args, "benchmark", None):
        return _warned(load_benchmark(args.benchmark, seed=args.benchmark_seed or 0, group=args.group))
    if getattr(args, "group", None):
        raise ObliviateError("--group goes with --benchmark FOLDER or --data and --forget: the files it groups")
    if getattr(args, "benchmark_seed", None) is not None:
        raise ObliviateError("--benchmark-seed needs --benchmark: the built-in benchmark it seeds")
    return None


def _warned(bench):
    """``bench``, after printing its loading warnings (rows without subjects) to stderr."""
    for w in bench.meta.get("warnings", []):
        print(f"obliviate: warning: {w}", file=sys.stderr)
    return bench


def _benchmark(args, models: list[tuple[str, object]], optional: bool = False):
    """The benchmark a command runs on: the one named, checked against what each model folder records, or the
    recorded one (see :func:`obliviate.data.loaders.resolve_benchmark`). With ``optional``, None when nothing
    is named and no model records one (``eval --muse FOLDER`` needs no QA benchmark)."""
    from obliviate.data.loaders import recorded_benchmark, resolve_benchmark

    models = [(r, p) for r, p in models if p is not None]
    named = _named_benchmark(args)
    if optional and named is None and not any(recorded_benchmark(p) for _, p in models):
        return None
    return resolve_benchmark(named, models)


def _inputs(args) -> list[tuple[str, str]]:
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


def _check_models(*specs: tuple[str, object]) -> None:
    from obliviate.models import check_model_spec

    for role, spec in specs:
        for s in spec if isinstance(spec, list) else [spec]:
            if s is not None:
                check_model_spec(s, role)


def _wrote(out, seconds: float | None = None) -> None:
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


def cmd_demo(args) -> int:
    from obliviate.methods import get_method
    from obliviate.runs.demo import DemoConfig, run_demo

    get_method(args.method)
    if args.attacks != "none":
        from obliviate.attacks import parse_attacks

        parse_attacks(args.attacks)
    _check_models(("model", args.model))
    from obliviate.audit.ledger import default_path, ensure

    ledger = Path(args.ledger) if args.ledger else default_path(args.out)
    if args.ledger or ledger.is_file():  # a bad or truncated ledger fails before any training
        ensure(ledger)
    cfg = DemoConfig(model=args.model, benchmark=args.benchmark or "people", benchmark_seed=args.benchmark_seed or 0,
                     method=args.method, method_config=_parse_sets(args.set), seed=_seed(args), attacks=args.attacks)
    from obliviate.data import load_benchmark
    from obliviate.core.outputs import check_output
    from obliviate.core.utils import cache_dir

    load_benchmark(cfg.benchmark, seed=cfg.benchmark_seed)  # a bad benchmark or output fails before the plan is told
    check_output(args.out, overwrite=args.overwrite, inputs=[("cache", Path(args.cache or cache_dir()))])
    print(f"obliviate demo: trains (or reuses from the cache) a target and an oracle {args.model} on "
          f"{cfg.benchmark}, evaluates both, unlearns with {args.method}, evaluates the result against the oracle"
          + (f", runs the attacks ({args.attacks})" if args.attacks != "none" else "")
          + " and writes the report; with the built-in tiny model on a 2-core CPU, about 5 minutes the first time "
            "(the pair is trained) and under 2 once it is cached", file=sys.stderr)
    t = time.time()
    res = run_demo(args.out, cfg, cache=args.cache, overwrite=args.overwrite)
    model_dir = res["models"][args.method].get("path")
    if model_dir:
        from obliviate.audit.certificate import demo_evidence
        from obliviate.data import load_benchmark
        from obliviate.data.format import examples_from
        from obliviate.models import load_model

        bench = load_benchmark(cfg.benchmark, seed=cfg.benchmark_seed)
        _, tok = load_model(model_dir)
        forget = examples_from(tok, bench.forget, bench.texts.get("forget", []))
        entry = _ledger_request(args, args.method, res["config"]["method_config"], forget,
                                res["models"]["target"]["path"], model_dir, demo_evidence(res, args.method),
                                extra={"warnings": res["warnings"]} if res.get("warnings") else None)
        print(f"obliviate: ledger {entry['ledger']}: request {entry['request_id']} (obliviate certify "
              f"{entry['request_id']} --ledger {entry['ledger']} --out CERT_DIR)", file=sys.stderr)
    summary(res)
    if res.get("robustness"):
        attack_summary(res["robustness"])
    _wrote(args.out, time.time() - t)
    return 0


def cmd_train(args) -> int:
    from obliviate.core.options import from_dict
    from obliviate.engine.training import TrainConfig, train_pair

    cfg = from_dict(TrainConfig, {"epochs": args.epochs, "lr": args.lr, "seed": _seed(args)}, "train")
    _check_models(("model", args.model))
    bench = _named_benchmark(args)
    if bench is None:
        from obliviate.data import load_benchmark

        bench = load_benchmark("people")
    if args.sharded:
        return _train_sharded(args, bench, cfg)
    paths = train_pair(args.model, bench, cfg, cache=args.cache, force=args.force)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    return 0


def _train_sharded(args, bench, cfg) -> int:
    """``obliviate train --sharded S --slices R [--s3t [--budget B]] --out DIR``: a SISA (or S3T) ensemble of the
    target (all training rows)."""
    from dataclasses import asdict

    from obliviate.data.format import examples_from
    from obliviate.models import SCRATCH_MODELS, save_model
    from obliviate.core.outputs import check_output
    from obliviate.methods.exact.sisa import SisaConfig, train_sisa
    from obliviate.engine.training import base_model
    from obliviate.core.utils import versions

    if not args.out:
        raise ObliviateError("train --sharded needs --out DIR (the ensemble's folder)")
    check_output(args.out, overwrite=args.overwrite)
    if args.budget is not None and not args.s3t:
        raise ObliviateError("train --budget applies to --s3t (orderings per shard)")
    if args.s3t:
        from obliviate.methods.exact.s3t import S3TConfig

        scfg = S3TConfig(shards=args.sharded, slices=args.slices, budget=args.budget, seed=cfg.seed)
    else:
        scfg = SisaConfig(shards=args.sharded, slices=args.slices, seed=cfg.seed)
    base, tok = base_model(args.model, bench, cfg.seed)
    examples = examples_from(tok, bench.training_qa(True), bench.training_texts(True) if cfg.include_texts else [])
    full = cfg.resolved(args.model in SCRATCH_MODELS, len(examples))
    per_slice = replace(full, epochs=max(1, full.epochs // scfg.slices)) if cfg.epochs is None else full
    t = time.time()
    if args.s3t:
        from obliviate.methods.exact.s3t import train_s3t

        ens = train_s3t(base, tok, examples, scfg, asdict(per_slice))
    else:
        ens = train_sisa(base, tok, examples, scfg, asdict(per_slice))
    save_model(ens, tok, args.out, {"s3t" if args.s3t else "sisa": asdict(scfg), "train": asdict(per_slice),
                                    "benchmark": bench.record(), "role": "target", "seed": cfg.seed,
                                    "versions": versions()},
               overwrite=args.overwrite)
    _wrote(args.out, time.time() - t)
    return 0


def cmd_unlearn(args) -> int:
    from dataclasses import fields

    from obliviate.data.loaders import recorded_benchmark
    from obliviate.methods import UnlearnData, get_method, method_config, unlearn
    from obliviate.models import load_model, save_model
    from obliviate.core.outputs import check_output, weights_bytes
    from obliviate.core.utils import versions

    sets = _parse_sets(args.set)
    names = {f.name for f in fields(get_method(args.method).config)}
    cfg = method_config(args.method, _with_seed(sets, args.seed, names))  # bad options fail before any loading
    _check_models(("model", args.model))
    probes = _probes(args)
    bench = None if probes else _benchmark(args, [("model", args.model)])
    inputs = _inputs(args)
    check_output(args.out, overwrite=args.overwrite, inputs=inputs, need_bytes=int(1.05 * weights_bytes(args.model)))
    from obliviate.audit.ledger import default_path, ensure

    ledger = Path(args.ledger) if args.ledger else default_path(args.out)
    if args.ledger or ledger.is_file():  # a bad or truncated ledger fails before any model work
        ensure(ledger)
    model, tok = load_model(args.model)
    if probes:

        data = UnlearnData.from_probes(args.rwku, tok, probes)
    else:
        data = UnlearnData.from_benchmark(bench, tok)
    family = get_method(args.method).family
    if family.prepare is not None:  # what the method's family needs first (the exact family: the shards' rows)
        family.prepare(model, tok, bench)
    new, info = unlearn(model, tok, data, args.method, cfg)
    warnings = []
    if bench is not None and (bench.retain or bench.world or bench.neighbours):
        from obliviate.evals.damage import damage

        info["damage"] = damage(model, new, tok, bench, seed=cfg.seed)  # the input model against the new one
        warnings = info["damage"]["warnings"]
        for w in warnings:
            print(f"obliviate: warning: {w}", file=sys.stderr)
    if "stop" in info:
        st = info["stop"]
        print(f"obliviate: stop=holdout: returned step {st['chosen_step']} of {st['steps_run']} run ({st['reason']}; "
              f"AUC forget vs calibration: LOSS {st['loss_auc']:.2f}, Min-K% {st['min_k_auc']:.2f})", file=sys.stderr)
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:  # under `accelerate launch` / `torchrun`, one process writes
        record = bench.record() if bench is not None else recorded_benchmark(args.model)
        save_model(new, tok, args.out, {"method": args.method, "base": str(args.model), "benchmark": record,
                                        "rwku": args.rwku, "seed": cfg.seed, "unlearning": info,
                                        "processes": state.num_processes, "versions": versions()},
                   overwrite=args.overwrite, inputs=inputs)
        extra = {"warnings": warnings} if warnings else {}
        if "exact" in info:
            extra["exact"] = info["exact"]
        entry = _ledger_request(args, args.method, info.get("config", {}), data.forget, args.model, args.out,
                                extra=extra or None)
        _wrote(args.out)
        print(f"obliviate: ledger {entry['ledger']}: request {entry['request_id']}", file=sys.stderr)
    state.wait_for_everyone()
    return 0


def _ledger_request(args, method, config, forget, input_model, out, evidence=None, extra=None) -> dict:
    """Append the request to the ledger (``--ledger``, or beside the run's ``--out``, where a later run with
    ``--overwrite`` leaves it alone); returns its entry and the ledger path."""
    from obliviate.audit.ledger import default_path, record_request

    path = Path(args.ledger) if getattr(args, "ledger", None) else default_path(args.out)
    entry = record_request(path, method=method, config=config, forget=forget, input_model=input_model,
                           output_model=out, evidence=evidence, keep_text=getattr(args, "ledger_text", False),
                           extra=extra)
    return {**entry, "ledger": str(path)}


def cmd_plan(args) -> int:
    """``obliviate plan``: the memory model's expected peak per device, term by term, for full fine-tuning and
    LoRA, with and without FSDP, and the configuration that fits."""
    from obliviate.methods import get_method
    from obliviate.engine.plan import GIB, architecture, options

    get_method(args.method)  # an unknown method fails with the list of methods
    if args.gpu_memory <= 0:
        raise ObliviateError("plan: --gpu-memory must be positive (GiB per device)")
    arch = architecture(args.model)
    rows = options(arch, get_method(args.method).memory, args.batch_size, args.max_length, args.gpus, args.gpu_memory,
                   dtype_bytes=args.dtype_bytes, headroom=args.headroom, method=args.method)
    if args.json:
        print(json.dumps({"model": args.model, "parameters": arch.params, "configurations": rows}, indent=1))
        return 0
    print(f"{args.model}: {arch.params / 1e9:.2f} B parameters, {arch.layers} layers; {args.method}, batch "
          f"{args.batch_size} x {args.max_length} tokens, {args.dtype_bytes} bytes per weight, {args.gpus} device(s) "
          f"of {args.gpu_memory:g} GiB ({100 * args.headroom:.0f} % kept free)")
    names = ["weights", "gradients", "optimizer", "frozen copies", "activations", "reference pass"]
    print(" | ".join(["configuration", *names, "peak (phase)", "fits"]))
    for r in rows:
        s = r["setting"]
        label = (f"LoRA r={s['lora_rank']}" if s["lora_rank"] else "full") + (f" + FSDP x{s['gpus']}" if s["fsdp"]
                                                                              else "")
        cells = [f"{r['terms'][k] / GIB:.2f}" for k in names]
        print(" | ".join([label, *cells, f"{r['peak'] / GIB:.2f} GiB ({r['peak_phase']})",
                          "yes" if r["fits"] else "no"]))
    fit = next((r for r in rows if r["fits"]), None)
    if fit is None:
        print("nothing fits: lower --batch-size or --max-length, or add devices")
        return 1
    s = fit["setting"]
    how = []
    if s["fsdp"]:
        how.append(f"OBLIVIATE_FSDP=1 torchrun --nproc_per_node {s['gpus']} -m obliviate.cli unlearn ...")
    if s["lora_rank"]:
        how.append(f"--set lora_rank={s['lora_rank']}")
    print("fits: " + ("full fine-tuning on one device" if not how else "; ".join(how)))
    return 0


def cmd_keygen(args) -> int:
    from obliviate.audit.signing import keygen

    path, kid = keygen(args.key)
    print(f"signing key {path} (private: keep it to yourself); public key {path}.pub; key id {kid}")
    return 0


def cmd_ledger(args) -> int:
    from obliviate.audit.ledger import check, entries

    path = Path(args.ledger)
    if not path.is_file():
        raise ObliviateError(f"{path}: no ledger there (obliviate unlearn writes {path.name} beside its --out)")
    problems = check(path, args.public_key)
    for e in entries(path):
        if e["kind"] == "request":
            print(f"{e['request_id']}  {e['time']}  {e['method']:<12} {e['forget_rows']:>5} forget rows  "
                  f"-> {e['output_model']}{'  (evidence recorded)' if e.get('evidence') else ''}")
        else:
            print(f"  evidence {e['time']} for {e['request_id'] or 'no recorded request'}: {e['model']}")
    for p in problems:
        print(f"obliviate: {p}", file=sys.stderr)
    return 1 if problems else 0


def cmd_certify(args) -> int:
    from obliviate.audit.certificate import certify
    from obliviate.audit.ledger import check

    problems = check(args.ledger)
    if problems:
        raise ObliviateError("; ".join(problems))
    cert = certify(args.ledger, args.request, args.out, key=args.key)
    print(f"{cert['conclusion']}")
    for r in cert["reasons"]:
        print(f"  - {r}")
    _wrote(args.out)
    return 0


def cmd_verify(args) -> int:
    from obliviate.audit.certificate import verify_details

    res = verify_details(args.certificate, args.model, args.ledger, args.public_key)
    for h in res["held"]:
        print(f"holds: {h}")
    for p in res["problems"]:
        print(f"obliviate: verify FAILED: {p}", file=sys.stderr)
    verdict = "the certificate does NOT hold" if res["problems"] else "the certificate holds"
    print(f"{verdict}; it concludes: {res['conclusion']}")
    return 1 if res["problems"] else 0


def cmd_bottleneck(args) -> int:
    from obliviate.methods.bottleneck.build import build, damage_line
    from obliviate.methods.bottleneck.config import BottleneckConfig
    from obliviate.core.options import from_dict
    from obliviate.core.outputs import check_output

    given = {"kind": args.kind, "site": args.site, "codes": args.codes, "k": args.k}
    sets = {**_parse_sets(args.set), **{k: v for k, v in given.items() if v is not None}}
    cfg = from_dict(BottleneckConfig, _with_seed(sets, args.seed, {"seed"}), "bottleneck")
    _check_models(("model", args.model))
    probes = _probes(args)
    bench = _named_benchmark(args)
    inputs = _inputs(args)
    check_output(args.out, overwrite=args.overwrite, inputs=inputs)
    t = time.time()
    report = build(args.model, args.out, cfg, bench=bench, probes=probes, cache=args.cache, overwrite=args.overwrite,
                   inputs=inputs)
    w, wo = report["with_bottleneck"], report["without_bottleneck"]
    print(f"cost of the bottleneck (without it: {report['without_is']}):")
    for k in w:
        print(f"  {k:<22} {wo.get(k, float('nan')):>9.3f} -> {w[k]:9.3f}")
    if report["warnings"]:
        print(f"obliviate: warning: {damage_line(report)}", file=sys.stderr)
    _wrote(args.out, time.time() - t)
    return 0


def cmd_codes(args) -> int:
    """List a bottlenecked model's code deletions, or write a copy with one request undone."""
    from obliviate.methods.bottleneck.codeunlearn import deletions, undo
    from obliviate.models import load_model, save_model
    from obliviate.core.outputs import check_output

    _check_models(("model", args.model))
    if args.undo is not None and not args.out:
        raise ObliviateError("codes --undo needs --out: the model with the deletion undone is written there "
                             "(the input model is never modified)")
    if args.out:
        check_output(args.out, overwrite=args.overwrite, inputs=_inputs(args))
    model, tok = load_model(args.model)
    entries = deletions(model)
    if args.undo is None:
        for d in entries:
            print(f"request {d['request']}: {len(d['codes'])} codes deleted ({d['rule']}, {d['forget_examples']} "
                  f"forget examples, {d['time']}): {d['codes'][:12]}{' ...' if len(d['codes']) > 12 else ''}")
        if not entries:
            print("no codes deleted")
        return 0
    entry = undo(model, args.undo)
    meta_file = Path(args.model) / "obliviate.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta.pop("weights_sha256", None)
    meta["undone"] = [*meta.get("undone", []), entry]
    save_model(model, tok, args.out, meta, overwrite=args.overwrite, inputs=_inputs(args))
    print(f"undid request {entry['request']}: {len(entry['codes'])} codes restored")
    _wrote(args.out)
    return 0


@contextlib.contextmanager
def _scratch_dir():
    """A temporary folder, removed afterwards: where a non-main process writes what only the main one keeps."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="obliviate-rank-") as d:
        yield Path(d)


def cmd_eval(args) -> int:
    from obliviate.evals import EvalConfig, EvalResult, check_metrics, evaluate
    from obliviate.evals.cache import evaluate_oracle
    from obliviate.models import load_model
    from obliviate.core.options import from_dict
    from obliviate.core.outputs import atomic_dir, check_output
    from obliviate.runs.demo import result_entry
    from obliviate.report import write_results

    wanted = check_metrics(args.metrics.split(",")) if args.metrics else None
    cfg = from_dict(EvalConfig, {"seed": _seed(args), "gradnorm": args.gradnorm}, "eval")
    _check_models(("model", args.model), ("oracle", args.oracle))
    standalone = bool((args.muse and args.muse != "benchmark") or args.rwku or args.lm_eval)
    bench = _benchmark(args, [("model", args.model), ("oracle", args.oracle)], optional=standalone)
    extras = _extra_evals(args, bench)  # bad MUSE files, probe targets or task names fail before any model work
    filed = _evidence_request(args.model, args.request)  # an ambiguous request fails before the work too
    inputs = _inputs(args)
    check_output(args.out, overwrite=args.overwrite, inputs=inputs)
    t = time.time()
    from accelerate import PartialState

    import torch

    # under torchrun / accelerate launch: the process group the scorer splits batches over (on CPU too)
    state = PartialState(cpu=not torch.cuda.is_available())
    with (atomic_dir(args.out, overwrite=args.overwrite, inputs=inputs) if state.is_main_process
          else _scratch_dir()) as tmp:  # every process evaluates its share; the main one writes
        model, tok = load_model(args.model)
        name = Path(str(args.model)).name or "model"
        entries, rows, timings = {}, {}, {}
        oracle_res, refs, cached = None, [None] * len(extras), None
        if args.oracle:
            om, otok = load_model(args.oracle)
            if otok.get_vocab() != tok.get_vocab():
                raise ObliviateError(f"model {args.model} and oracle {args.oracle} have different tokenizers")
            t1 = time.time()
            if bench is not None:  # scored once per oracle, benchmark and config (obliviate.evals.cache)
                oracle_res, cached = evaluate_oracle(om, otok, bench, cfg, args.oracle)
            else:
                oracle_res, cached = EvalResult(metrics={}, rows=[]), False
            timings["evaluate_oracle"] = time.time() - t1
            refs = []
            for c, run in extras:
                t1 = time.time()
                refs.append(_merge(oracle_res, run(om, otok, None)))
                timings[f"{next(iter(c))}_oracle"] = time.time() - t1
            entries["oracle"], rows["oracle"] = result_entry(oracle_res, args.oracle), oracle_res.rows
        t1 = time.time()
        res = (evaluate(model, tok, bench, cfg, oracle=oracle_res, desc=f"evaluate {name}") if bench is not None
               else EvalResult(metrics={}, rows=[], notes=["no QA benchmark named or recorded: only the evaluations "
                                                            "asked for beside it were run"]))
        timings[f"evaluate_{name}"] = time.time() - t1
        before = _input_of(args) if bench is not None else None
        input_entry, warnings = None, []
        if before is not None:  # the model it was unlearned from, recorded in its folder: shown beside it
            from obliviate.evals.damage import damage_from_evaluations

            t1 = time.time()
            im, itok = load_model(before)
            input_res = evaluate(im, itok, bench, cfg, oracle=oracle_res, desc="evaluate the input model")
            timings["evaluate_input"] = time.time() - t1
            input_entry = result_entry(input_res, str(before))
            warnings = damage_from_evaluations(input_res, res, seed=cfg.seed)["warnings"]
            del im
        for (c, run), ref in zip(extras, refs):
            t1 = time.time()
            _merge(res, run(model, tok, ref))
            timings[f"{next(iter(c))}_{name}"] = time.time() - t1
        if wanted:
            res.metrics = {k: v for k, v in res.metrics.items() if k in wanted}
            res.ci = {k: v for k, v in res.ci.items() if k in wanted}
        entries[name], rows[name] = result_entry(res, str(args.model), **_unlearning_of(args.model)), res.rows
        results = build_results("eval", seed=cfg.seed,
                                config={"model": str(args.model), "oracle": args.oracle,
                                        "benchmark": bench.name if bench else None, "eval": vars(cfg),
                                        **{k: v for c, _ in extras for k, v in c.items()}},
                                benchmark=bench.summary() if bench else {}, models=entries, timings=timings,
                                **({"oracle_scores": "read from the cache" if cached else "scored"} if args.oracle
                                   else {}),
                                **({"input_model": input_entry} if input_entry else {}),
                                **({"warnings": warnings} if warnings else {}))
        write_results(tmp, results, rows)
    if not state.is_main_process:
        return 0
    if args.oracle and name in entries:  # an oracle comparison is evidence for the request that wrote this model
        e, o = entries[name], entries["oracle"]
        _ledger_evidence(args.model, {"source": "eval", "metrics": e["metrics"], "ci": e["metrics_ci"],
                                      "oracle_metrics": o["metrics"], "oracle_ci": o["metrics_ci"]}, filed)
    elif name in entries:  # without an oracle: the holdout comparison
        _ledger_evidence(args.model, {"source": "eval", "metrics": entries[name]["metrics"],
                                      "ci": entries[name]["metrics_ci"]}, filed)
    summary(results)
    _wrote(args.out, time.time() - t)
    return 0


def _evidence_request(model, request: str | None = None) -> tuple[Path, str | None] | None:
    """Where evidence about ``model`` goes: ``(ledger, request id)``, resolved before any work so that an
    ambiguous match fails first; None when no ledger records the folder (nothing is created). The ledger is
    the one the folder's request names, else the one beside it."""
    from obliviate.audit.ledger import REQUEST_FILE, default_path, request_for

    folder = Path(str(model))
    if not folder.is_dir():
        if request:
            raise ObliviateError(f"--request {request}: {model} is not a model folder a request wrote")
        return None
    path = default_path(folder)
    try:
        named = json.loads((folder / REQUEST_FILE).read_text(encoding="utf-8")).get("ledger")
        path = Path(named) if named and Path(named).is_file() else path
    except (OSError, ValueError, AttributeError):
        pass
    if not path.is_file():
        if request:
            raise ObliviateError(f"--request {request}: no ledger for {model} ({path} does not exist)")
        return None
    return path, request_for(path, folder, request)


def _input_of(args) -> str | None:
    """The input model of an unlearned folder (``base`` in its ``obliviate.json``) when it is a folder that is
    still here; None otherwise, or with ``--no-input``."""
    if args.no_input:
        return None
    meta = Path(str(args.model)) / "obliviate.json"
    try:
        base = json.loads(meta.read_text(encoding="utf-8")).get("base") if meta.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return base if base and Path(base).is_dir() and Path(base).resolve() != Path(str(args.model)).resolve() else None


def _ledger_evidence(model, evidence: dict, where: tuple[Path, str | None] | None) -> None:
    """Append evidence about ``model`` under the request :func:`_evidence_request` resolved."""
    from obliviate.audit.ledger import record_evidence

    if where is not None:
        path, rid = where
        e = record_evidence(path, model, evidence, rid)
        print(f"obliviate: ledger {path}: evidence for request {e['request_id'] or '(none matched)'}", file=sys.stderr)


def _merge(res, extra):
    """Add an extra evaluation's metrics, rows and notes (any object with those attributes) to ``res``."""
    res.metrics |= extra.metrics
    res.ci |= getattr(extra, "ci", None) or {}
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
        from obliviate.evals.muse import evaluate_muse

        data = _muse_data(args.muse, bench, args.muse_limit)
        out.append(({"muse": args.muse, "muse_limit": args.muse_limit},
                    lambda m, t, ref: evaluate_muse(m, t, data, oracle=ref)))
    probes = _probes(args)
    if probes:
        from obliviate.evals.rwku import evaluate_rwku

        out.append(({"rwku": args.rwku, "probes": args.probes},
                    lambda m, t, ref: SimpleNamespace(**evaluate_rwku(m, t, args.rwku, probes))))
    if args.lm_eval:
        from obliviate.evals.lm_eval import check_tasks, run_lm_eval

        tasks = [x.strip() for x in args.lm_eval.split(",") if x.strip()]
        tm = check_tasks(tasks, args.lm_eval_include)
        opts = {"tasks": tasks, "include_path": args.lm_eval_include, "limit": args.lm_eval_limit,
                "num_fewshot": args.lm_eval_fewshot}
        out.append(({"lm_eval": opts}, lambda m, t, ref: run_lm_eval(m, t, seed=_seed(args), task_manager=tm, **opts)))
    return out


def _probes(args):
    """The RWKU-style probes (built-in or ``--probes FILE``) when ``--rwku TARGET`` is given; the target is
    checked before any model is loaded."""
    if not getattr(args, "rwku", None):
        return None
    from obliviate.data.rwku import get_target, load_probes

    probes = load_probes(args.probes)
    get_target(args.rwku, probes)
    return probes


def _muse_data(spec: str, bench, limit: int | None = None):
    """``--muse FOLDER`` (MUSE's public layout) or ``--muse benchmark`` (the benchmark's own passages and QA)."""
    from obliviate.evals.muse import MuseData, load_muse

    if spec == "benchmark":
        if bench is None:
            raise ObliviateError("--muse benchmark needs a QA benchmark (--benchmark, or a model that records one)")
        return MuseData.from_benchmark(bench)
    return load_muse(spec, limit=limit or 0)


def _unlearning_of(model: str) -> dict:
    """The loss and probe curves that `obliviate unlearn` stored beside a model it wrote (empty otherwise)."""
    from obliviate.runs.demo import unlearning_summary

    meta = Path(str(model)) / "obliviate.json"
    if not meta.is_file():
        return {}
    info = json.loads(meta.read_text()).get("unlearning")
    return {"unlearning": unlearning_summary(info)} if isinstance(info, dict) else {}


def cmd_attack(args) -> int:
    from dataclasses import fields

    from obliviate.attacks import ATTACKS, attack_config, parse_attacks, run_attacks
    from obliviate.models import load_model
    from obliviate.core.outputs import atomic_dir, check_output
    from obliviate.report import write_results

    names = parse_attacks(args.attack)
    configs: dict[str, dict] = {}
    for key, value in _parse_sets(args.set).items():
        attack, dot, opt = key.partition(".")
        if not dot or attack not in names:
            raise ObliviateError(f"--set {key}=...: expected ATTACK.OPTION with ATTACK among {', '.join(names)}")
        configs.setdefault(attack, {})[opt] = value
    for n in names:  # --seed seeds every attack that draws at random; unknown or bad options fail before any loading
        configs[n] = _with_seed(configs.get(n, {}), args.seed, {f.name for f in fields(ATTACKS[n].config)})
        attack_config(n, configs[n])
    _check_models(("model", args.model), ("target", args.target), ("oracle", args.oracle))
    bench = _benchmark(args, [("model", m) for m in args.model] + [("target", args.target), ("oracle", args.oracle)])
    from obliviate.attacks import applicable

    names, skipped = applicable(names, bench)  # decided from the data, before any model is loaded
    for n, why in skipped.items():
        print(f"obliviate: note: attack {n} does not apply to benchmark {bench.name}: {why}; skipped", file=sys.stderr)
    if not names:
        raise ObliviateError(f"none of the attacks asked for applies to benchmark {bench.name}")
    if not (args.target and args.oracle):
        print("obliviate: note: without --target and --oracle the attacks are run but not judged", file=sys.stderr)
    if args.budget is not None and args.budget <= 0:
        raise ObliviateError(f"--budget {args.budget:g}: give a positive number of minutes")
    if args.request and len(args.model) > 1:
        raise ObliviateError("--request names the request of one --model; attack one model at a time with it")
    filed = {str(m): _evidence_request(m, args.request) for m in args.model} if args.target and args.oracle else {}
    inputs = _inputs(args)
    check_output(args.out, overwrite=args.overwrite, inputs=inputs)
    t0 = time.time()
    with atomic_dir(args.out, overwrite=args.overwrite, inputs=inputs) as tmp:
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
        res = run_attacks(models, tok, bench, attacks=names, configs=configs,
                          budget=None if args.budget is None else 60 * args.budget, **refs)
        skipped = {**skipped, **res["skipped"]}
        for n in res["skipped"]:
            print(f"obliviate: note: attack {n} skipped: {res['skipped'][n]}", file=sys.stderr)
        results = build_results("attack", seed=_seed(args),
                                config={"models": [str(m) for m in args.model], "target": args.target,
                                        "oracle": args.oracle, "benchmark": bench.name, "budget_minutes": args.budget,
                                        "attacks": {n: e["config"] for n, e in res["attacks"].items()}},
                                benchmark=bench.summary(),
                                robustness={"attacks": res["attacks"], "plain": res["plain"],
                                            "thresholds": res["thresholds"], "skipped": skipped})
        write_results(tmp, results, res["rows"])
    if args.target and args.oracle:  # judged verdicts are evidence for the requests that wrote these models
        for path in args.model:
            key = Path(str(path)).name or str(path)
            verdicts = {a: {"verdict": e["verdicts"][key]["verdict"], "gain_over_oracle":
                            e["verdicts"][key].get("gain_over_oracle"), "interval": e["verdicts"][key].get("interval")}
                        for a, e in res["attacks"].items() if key in e.get("verdicts", {})}
            _ledger_evidence(path, {"source": "attack", "attacks": verdicts}, filed[str(path)])
    attack_summary(results["robustness"])
    _wrote(args.out, time.time() - t0)
    return 0


def cmd_curve(args) -> int:
    from obliviate.methods import get_method
    from obliviate.runs.demo import run_curve

    get_method(args.method)
    _check_models(("model", args.model))
    points = args.fractions.split(",") if args.kind == "scalability" else args.requests
    t = time.time()
    res = run_curve(args.out, args.kind, points, model=args.model, benchmark=args.benchmark or "people",
                    method=args.method, method_cfg=_parse_sets(args.set), seed=_seed(args), cache=args.cache,
                    overwrite=args.overwrite, benchmark_seed=args.benchmark_seed or 0)
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
    _wrote(args.out, time.time() - t)
    return 0


def cmd_tune(args) -> int:
    from obliviate.methods import get_method
    from obliviate.models import BUILTIN_MODELS, load_model
    from obliviate.core.options import from_dict
    from obliviate.core.outputs import atomic_dir, check_output, resolve
    from obliviate.runs.tune import TuneConfig, Tuner, render, search_space
    from obliviate.core.utils import to_jsonable, write_json_atomic

    get_method(args.method)
    cfg = from_dict(TuneConfig, {"trials": args.trials, "objective": args.objective,
                                 "utility_ratio": args.utility_ratio, "seed": _seed(args)}, "tune")
    fixed = _parse_sets(args.set)
    search_space(args.method, fixed)  # nothing to search is an error before any loading
    _check_models(("model", args.model), ("oracle", args.oracle))
    builtin = args.oracle is None and args.model in BUILTIN_MODELS
    if cfg.objective == "forget_quality" and args.oracle is None and not builtin:
        raise ObliviateError("tune --objective forget_quality needs the oracle (--oracle, or a built-in --model whose "
                             "oracle obliviate trains); --objective holdout_gap needs none")
    bench = _benchmark(args, [] if builtin else [("model", args.model), ("oracle", args.oracle)])
    inputs = _inputs(args)
    if args.study:
        inputs = [*inputs, ("study", str(resolve(args.study)))]
    check_output(args.out, overwrite=args.overwrite, inputs=inputs)
    t = time.time()
    if builtin:
        from obliviate.engine.training import train_pair

        paths = train_pair(args.model, bench, cache=args.cache)
        target_path, oracle_path = paths["target"], paths["oracle"]
    else:
        target_path, oracle_path = args.model, args.oracle
    target, tok = load_model(target_path)
    oracle_result = None
    if cfg.objective == "forget_quality" and oracle_path is not None:
        from obliviate.evals import EvalConfig
        from obliviate.evals.cache import evaluate_oracle

        oracle, _ = load_model(oracle_path)
        oracle_result, _ = evaluate_oracle(oracle, tok, bench, EvalConfig(), oracle_path)
        del oracle
    key = {"target": str(resolve(target_path)) if not builtin else f"builtin:{args.model}",
           "benchmark": bench.fingerprint(), "calibration": len(bench.calibration)}
    tuner = Tuner(args.method, target, tok, bench, cfg, fixed, oracle_result, study=args.study, key=key)
    print(f"obliviate: tune {args.method}: study {tuner.path}", file=sys.stderr, flush=True)

    def progress(done, total, scores):
        if os.environ.get("OBLIVIATE_QUIET") != "1":
            extra = (f"forget quality {scores['forget_quality']:.3g}" if "forget_quality" in scores
                     else f"holdout gap {scores['holdout_gap']:.3f}")
            print(f"tune {args.method}: trial {done}/{total}: {extra}, ratio {scores['ratio']:.3f}, "
                  f"{scores['seconds']:.1f} s", file=sys.stderr, flush=True)

    summary = tuner.run(progress)
    results = build_results("tune", seed=cfg.seed, config={"method": args.method, "fixed": fixed, **summary["config"]},
                            benchmark=bench.summary(), target=str(target_path), oracle=str(oracle_path), tune=summary)
    with atomic_dir(args.out, overwrite=args.overwrite, inputs=inputs) as tmp:
        write_json_atomic(Path(tmp) / "results.json", to_jsonable(results))
        (Path(tmp) / "report.html").write_text(render(summary), encoding="utf-8")
    best = summary["best"]
    print(f"best (trial {best['number']}{'' if best['feasible'] else ', no trial met the constraint'}): "
          + " ".join(best["set"]))
    print(f"Pareto front: trials {', '.join(map(str, summary['pareto_front']))}")
    _wrote(args.out, time.time() - t)
    return 0


def cmd_ls(args) -> int:
    from obliviate.attacks import ATTACKS
    from obliviate.data import BUILTIN_BENCHMARKS
    from obliviate.data.rwku import BUILTIN_PROBES
    from obliviate.evals import METRICS
    from obliviate.methods import METHODS
    from obliviate.models import BUILTIN_MODELS

    if args.what in METHODS or args.what in ATTACKS:
        return _ls_options(args.what)
    probes = {k: f"{len(t.fill)} fill-in-the-blank, {len(t.qa)} QA probes; neighbours: {', '.join(t.neighbours)}"
              for k, t in BUILTIN_PROBES.items()}
    tables = {"methods": {k: m.summary for k, m in METHODS.items()}, "metrics": METRICS,
              "models": BUILTIN_MODELS, "benchmarks": BUILTIN_BENCHMARKS, "probes": probes,
              "attacks": {k: a.summary for k, a in ATTACKS.items()}}
    if args.what and args.what not in tables:
        raise ObliviateError(f"obliviate ls: unknown table {args.what!r}; expected one of {', '.join(LS_TABLES)}, "
                             "or a method or attack name for its options")
    for what in [args.what] if args.what else list(tables):
        print(f"{what}:")
        for k, v in tables[what].items():
            print(f"  {k:<28} {v}")
    return 0


def _ls_options(name: str) -> int:
    """A method's or an attack's options: name, type, default, constraint and help, from their declarations."""
    from obliviate.attacks import ATTACKS
    from obliviate.methods import METHODS
    from obliviate.core.options import describe

    cls = METHODS[name].config if name in METHODS else ATTACKS[name].config
    kind = "method" if name in METHODS else "attack"
    print(f"{kind} {name}: options (--set {'KEY' if kind == 'method' else name + '.KEY'}=VALUE)")
    for row in describe(cls):
        default = "default for the model" if row["default"] is None else repr(row["default"])
        rule = f"; {row['constraint']}" if row["constraint"] else ""
        print(f"  {row['name']:<22} {row['type']:<6} {default:<24} {row['help']}{rule}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--cache", default=argparse.SUPPRESS,
                        help="cache folder for trained targets and oracles (default $OBLIVIATE_CACHE or "
                             "~/.cache/obliviate); accepted before or after the command")
    seeded = _Parser(add_help=False)
    seeded.add_argument("--seed", type=_count,
                        help="seeds the run: training, the method, evaluation samples and attacks (default 0); the same "
                             "seed on the same machine gives the same numbers. It does not change the data: see "
                             "--benchmark-seed")
    written = _Parser(add_help=False)
    written.add_argument("--overwrite", action="store_true",
                         help="replace an existing, non-empty --out, if obliviate wrote it (never anything else, "
                              "nor a folder holding the run's inputs)")

    p = _Parser(prog="obliviate", description="Machine unlearning for language models.", parents=[common])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("demo", parents=[common, seeded, written],
                       help="data -> target + oracle -> unlearn -> evaluate -> attack -> report, on the built-in default")
    d.add_argument("--out", default="demo_out", help="output folder (results.json, report.html, the unlearned model)")
    d.add_argument("--model", default="tiny", help="base model: built-in name (`obliviate ls models`), folder or .gguf")
    d.add_argument("--benchmark", help="built-in benchmark (`obliviate ls benchmarks`, default people) or a "
                                       "TOFU-format folder")
    d.add_argument("--benchmark-seed", type=_count, help="seed of the built-in benchmark generator (default 0)")
    d.add_argument("--method", default="npo", help="unlearning method (`obliviate ls methods`; "
                                                   "`obliviate ls npo` lists its options)")
    d.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set lr=5e-4")
    d.add_argument("--attacks", default="all", help="attacks on the unlearned model (`obliviate ls attacks`), or none")
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("train", parents=[common, seeded],
                       help="train the target (all data) and the oracle (without the forget set)")
    t.add_argument("--model", default="tiny", help="base model: built-in name, folder, .gguf or hf:ORG/NAME")
    _add_data_args(t)
    t.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    t.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    t.add_argument("--force", action="store_true", help="retrain even if cached")
    t.add_argument("--sharded", type=_count, help="SISA: train S constituents on S shards (needs --out)")
    t.add_argument("--slices", type=_count, default=4, help="SISA: slices per shard, a checkpoint after each")
    t.add_argument("--s3t", action="store_true", help="with --sharded: S3T (LoRA layer groups trained on cumulative "
                                                      "slices, several orderings per shard) instead of SISA")
    t.add_argument("--budget", type=_count, help="with --s3t: slice orderings per shard (default: --slices)")
    t.add_argument("--out", help="with --sharded: the ensemble's folder")
    t.add_argument("--overwrite", action="store_true", help="with --sharded: replace an --out obliviate wrote")
    t.set_defaults(fn=cmd_train)

    u = sub.add_parser("unlearn", parents=[common, seeded, written],
                       help="unlearn the forget set from a model; writes a new model folder")
    u.add_argument("--model", required=True, help="the model to unlearn from (it is never modified)")
    u.add_argument("--method", default="npo", help="`obliviate ls methods`; `obliviate ls npo` lists its options")
    u.add_argument("--out", required=True, help="the new model folder")
    u.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set beta=0.1")
    _add_data_args(u)
    u.set_defaults(fn=cmd_unlearn)
    for cmd in (d, u):
        cmd.add_argument("--ledger", help="the request ledger (default: obliviate-ledger.sqlite beside --out)")
        cmd.add_argument("--ledger-text", action="store_true",
                         help="also keep the forget rows' text in the ledger (default: their SHA-256 only)")

    b = sub.add_parser("bottleneck", parents=[common, seeded, written],
                       help="build a codebook / SAE bottleneck into a model once, for codeunlearn (CodeUnlearn)")
    b.add_argument("--model", default="tiny", help="tiny/micro: target and oracle trained with it from scratch; a "
                                                   "pretrained model: frozen, the bottleneck alone is trained")
    b.add_argument("--kind", help="sae (default: a TopK sparse autoencoder) or codebook")
    b.add_argument("--site", help="layer.L.mlp, layer.L.attn (per head) or layer.L (residual stream), comma list; "
                                  "default layer.M, the middle layer")
    b.add_argument("--codes", type=_count,
                   help="codes per site or head (default: 8 x its width for an SAE, 16 x for a codebook)")
    b.add_argument("--k", type=_count, help="codes kept per token (default: 8 for an SAE, 32 for a codebook)")
    b.add_argument("--out", required=True, help="output folder (from scratch: target/, oracle/; else the model)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="other bottleneck options, e.g. --set steps=200; --set error_term=true for a pretrained model "
                        "(see docs/families/bottleneck.md)")
    b.add_argument("--rwku", help="pretrained models: train on the passages of the probe targets (with --probes)")
    b.add_argument("--probes", help="RWKU-style probe file (default: the built-in probes)")
    _add_data_args(b)
    b.set_defaults(fn=cmd_bottleneck)

    cd = sub.add_parser("codes", parents=[common, written],
                        help="list a bottlenecked model's code deletions, or undo one (--undo N --out DIR)")
    cd.add_argument("--model", required=True)
    cd.add_argument("--undo", type=int, help="the deletion request to undo")
    cd.add_argument("--out", help="where the model with that request undone is written")
    cd.set_defaults(fn=cmd_codes)

    e = sub.add_parser("eval", parents=[common, seeded, written],
                       help="evaluate a model (optionally against an oracle)")
    e.add_argument("--model", required=True)
    e.add_argument("--oracle", help="the model trained without the forget set")
    e.add_argument("--out", required=True)
    e.add_argument("--metrics", help="comma-separated subset of `obliviate ls metrics`")
    e.add_argument("--gradnorm", action="store_true", help="also the gradient-norm MIA (a backward pass per fact)")
    e.add_argument("--no-input", action="store_true", help="do not evaluate the model it was unlearned from (by "
                                                           "default evaluated beside it when its folder is here)")
    for cmd in (e, u):
        cmd.add_argument("--rwku", metavar="TARGET", help="a real-knowledge target (`obliviate ls probes`): eval "
                                                          "scores its probes and its neighbours'; unlearn forgets "
                                                          "its passages")
        cmd.add_argument("--probes", help="a JSON probe file instead of the built-in probes")
    e.add_argument("--muse", help="also MUSE's C1-C4: a folder in MUSE's public layout, or 'benchmark' for the "
                                  "benchmark's own passages and questions")
    e.add_argument("--muse-limit", type=_count, metavar="N", help="at most N rows of each MUSE file (a quick look; "
                                                                  "the full News set takes hours on a CPU)")
    e.add_argument("--lm-eval", metavar="TASKS", help="also these comma-separated lm-evaluation-harness tasks "
                                                      "(needs `pip install 'obliviate[lm-eval]'` and the tasks' data)")
    e.add_argument("--lm-eval-include", metavar="DIR", help="a folder of extra lm-eval task YAMLs (local tasks)")
    e.add_argument("--lm-eval-limit", type=_count, metavar="N", help="at most N documents per lm-eval task")
    e.add_argument("--lm-eval-fewshot", type=_count, metavar="K", help="lm-eval few-shot examples (default: the task's)")
    _add_data_args(e)
    e.set_defaults(fn=cmd_eval)

    a = sub.add_parser("attack", parents=[common, seeded, written],
                       help="attack unlearned models, and the target and oracle under the same attacks")
    a.add_argument("--model", action="append", required=True, help="an unlearned model (repeat for several)")
    a.add_argument("--target", help="the model before unlearning")
    a.add_argument("--oracle", help="the model trained without the forget set")
    a.add_argument("--attack", default="all", help="comma-separated names from `obliviate ls attacks`, or all")
    a.add_argument("--out", required=True)
    a.add_argument("--set", action="append", metavar="ATTACK.KEY=VALUE",
                   help="attack option, e.g. --set relearn.steps=0,10 (`obliviate ls relearn` lists them)")
    a.add_argument("--budget", type=float, metavar="MINUTES",
                   help="stop starting attacks once this much time is spent; the rest are skipped and say so")
    _add_data_args(a)
    a.set_defaults(fn=cmd_attack)
    for cmd in (e, a):
        cmd.add_argument("--request", metavar="REQUEST_ID",
                         help="the ledger request this evidence is about (default: the one the model folder names, "
                              "or the one request that wrote these weights)")

    tu = sub.add_parser("tune", parents=[common, seeded, written],
                        help="search a method's hyperparameters with Optuna (resumable); writes the Pareto front")
    tu.add_argument("--method", default="npo", help="`obliviate ls methods`")
    tu.add_argument("--model", required=True, help="the target (a folder), or a built-in model name whose target and "
                                                   "oracle obliviate trains (cached)")
    tu.add_argument("--oracle", help="the oracle (needed by --objective forget_quality unless --model is built in)")
    tu.add_argument("--trials", type=_count, default=20, help="completed trials the study should hold (default 20)")
    tu.add_argument("--objective", default="forget_quality", help="forget_quality (with the oracle) or holdout_gap "
                                                                  "(no oracle)")
    tu.add_argument("--utility-ratio", type=float, default=0.95,
                    help="feasible trials keep at least this share of the target's utility (default 0.95)")
    tu.add_argument("--study", help="the SQLite file of the study (default: in the cache, named by the run's inputs; "
                                    "run the same command again to resume)")
    tu.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a method option (left out of the search)")
    tu.add_argument("--out", required=True)
    _add_data_args(tu)
    tu.set_defaults(fn=cmd_tune)

    c = sub.add_parser("curve", parents=[common, seeded, written],
                       help="MUSE's scalability (growing forget sets) or sustainability (sequential requests) of a "
                            "method, on a built-in model and benchmark")
    c.add_argument("kind", choices=["scalability", "sustainability"])
    c.add_argument("--model", default="tiny")
    c.add_argument("--benchmark", help="built-in benchmark (default people)")
    c.add_argument("--benchmark-seed", type=_count, help="seed of the built-in benchmark generator (default 0)")
    c.add_argument("--method", default="npo")
    c.add_argument("--fractions", default="0.1,0.5,1.0", help="scalability: fractions of the forget set's subjects")
    c.add_argument("--requests", type=_count, default=3, help="sustainability: how many sequential requests")
    c.add_argument("--out", required=True)
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set lr=5e-4")
    c.set_defaults(fn=cmd_curve)

    pl = sub.add_parser("plan", parents=[common], help="expected peak memory per device and the configuration that "
                                                        "fits (LoRA, FSDP)")
    pl.add_argument("--model", required=True, help="a preset (llama-3.1-8b, llama-2-7b, mistral-7b, llama-3.2-1b, "
                                                    "llama-3.2-3b), a built-in model, a model folder or a config.json")
    pl.add_argument("--method", default="npo")
    pl.add_argument("--gpus", type=_count, default=1)
    pl.add_argument("--gpu-memory", type=float, default=80.0, help="GiB per device")
    pl.add_argument("--batch-size", type=_count, default=4, help="global batch (each of forget and retain)")
    pl.add_argument("--max-length", type=_count, default=512, help="tokens per row")
    pl.add_argument("--dtype-bytes", type=int, choices=(2, 4), default=2,
                    help="2: bfloat16 weights (a Hugging Face checkpoint in its own dtype), 4: float32 (GGUF and "
                         "built-in models load so)")
    pl.add_argument("--headroom", type=float, default=0.10, help="share of each device kept free")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(fn=cmd_plan)
    trusted = ("the signer's public key (its .pub file, or a file holding its key id) to check signatures against "
               "(default: the local signing key's own)")
    kg = sub.add_parser("keygen", parents=[common], help="make the Ed25519 key that signs ledger checkpoints and "
                                                         "certificates (never in an output folder)")
    kg.add_argument("--key", help="where to write the private key (default $OBLIVIATE_SIGNING_KEY or "
                                  "~/.config/obliviate/signing-key.pem); the public key goes beside it as .pub")
    kg.set_defaults(fn=cmd_keygen)
    lg = sub.add_parser("ledger", parents=[common], help="list the unlearning requests of a ledger and check its chain "
                                                         "and signed checkpoint")
    lg.add_argument("ledger", help="the ledger file (obliviate-ledger.sqlite beside an unlearned model)")
    lg.add_argument("--public-key", help=trusted)
    lg.set_defaults(fn=cmd_ledger)
    ce = sub.add_parser("certify", parents=[common, written],
                        help="write a signed certificate (JSON + HTML) of one request's evidence")
    ce.add_argument("request", metavar="REQUEST_ID")
    ce.add_argument("--ledger", required=True, help="the ledger file")
    ce.add_argument("--out", required=True, help="the certificate folder")
    ce.add_argument("--key", help="the signing key (default: the local one, made if missing)")
    ce.set_defaults(fn=cmd_certify)
    ve = sub.add_parser("verify", parents=[common],
                        help="re-check a certificate's signature, the model files and the ledger; exits 1 on any "
                             "mismatch")
    ve.add_argument("certificate", help="certificate.json or its folder")
    ve.add_argument("--model", help="the model folder (default: the one the certificate names)")
    ve.add_argument("--ledger", help="the ledger (default: the one the certificate names, if it is here)")
    ve.add_argument("--public-key", help=trusted)
    ve.set_defaults(fn=cmd_verify)

    ls = sub.add_parser("ls", parents=[common],
                        help=f"list a registry ({', '.join(LS_TABLES)}), or a method's or attack's options "
                             "(`obliviate ls npo`)")
    ls.add_argument("what", nargs="?", metavar="WHAT",
                    help=f"one of {', '.join(LS_TABLES)} (all of them if left out), or a method or attack name")
    ls.set_defaults(fn=cmd_ls)
    return p


def _add_data_args(p):
    p.add_argument("--benchmark", help="built-in benchmark name (`obliviate ls benchmarks`) or TOFU-format folder; "
                                       "default: the one the model was trained on")
    p.add_argument("--benchmark-seed", type=_count, help="seed of the built-in benchmark generator (default 0)")
    p.add_argument("--data", help="TOFU-format training data (JSON/JSONL), with --forget")
    p.add_argument("--forget", help="TOFU-format rows of --data to forget")
    p.add_argument("--holdout", help="TOFU-format rows never trained on (MIA non-members)")
    p.add_argument("--calibration", help="more TOFU-format rows never trained on, kept apart from --holdout: what "
                                         "stop=holdout and tune --objective holdout_gap calibrate on")
    p.add_argument("--world", help="TOFU-format utility facts")
    p.add_argument("--drop-unmatched", action="store_true",
                   help="drop forget rows that match no row of --data (default: an error listing them)")
    p.add_argument("--group", metavar="RULE",
                   help="subjects for rows without a 'subject' field, which every interval resamples: tofu (TOFU's "
                        "20 consecutive rows per author), rows:N, field:NAME, or fact (each row its own subject)")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse's own exits (--help, one-line usage errors)
        return int(e.code or 0)
    args.cache = getattr(args, "cache", None)
    if args.cache:
        os.environ["OBLIVIATE_CACHE"] = args.cache
        args.cache = Path(args.cache)
    import obliviate.engine.distributed as distributed

    had_group = distributed.group_initialized()  # a caller's own group, which obliviate leaves alone
    previous = _on_sigterm()
    try:
        return args.fn(args)
    except Terminated:
        print("obliviate: terminated; no output was written", file=sys.stderr)
        return 143
    except ObliviateError as e:
        print(f"obliviate: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`obliviate ls | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a full disk, a folder that vanished: one line, and no output (outputs are atomic)
        if os.environ.get("OBLIVIATE_DEBUG"):
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"obliviate: error: {e.strerror or e}{where}; nothing was written", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("obliviate: interrupted; no output was written", file=sys.stderr)
        return 130
    finally:
        distributed.close(had_group)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that every half-written output is removed on the way out, as it
    is for Ctrl-C (SIGINT's KeyboardInterrupt); a BaseException so that no ``except Exception`` swallows it."""


def _on_sigterm():
    """Turn SIGTERM into :class:`Terminated` for this run; the previous handler, or None off the main thread."""
    def raise_terminated(signum, frame):
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread (a caller running obliviate in a worker thread)
        return None

