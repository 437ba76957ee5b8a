"""``obliviate bottleneck``: build a codebook / SAE bottleneck into a model once, for CodeUnlearn."""
from __future__ import annotations

import sys
import time

from obliviate.cli.args import add_data_args
from obliviate.cli.common import count


def register(sub, p) -> None:
    b = sub.add_parser("bottleneck", parents=[p["common"], p["seeded"], p["written"]],
                       help="build a codebook / SAE bottleneck into a model once, for codeunlearn (CodeUnlearn)")
    b.add_argument("--model", default="tiny", help="tiny/micro: target and oracle trained with it from scratch; a "
                                                   "pretrained model: frozen, the bottleneck alone is trained")
    b.add_argument("--kind", help="sae (default: a TopK sparse autoencoder) or codebook")
    b.add_argument("--site", help="layer.L.mlp, layer.L.attn (per head) or layer.L (residual stream), comma list; "
                                  "default layer.M, the middle layer")
    b.add_argument("--codes", type=count,
                   help="codes per site or head (default: 8 x its width for an SAE, 16 x for a codebook)")
    b.add_argument("--k", type=count, help="codes kept per token (default: 8 for an SAE, 32 for a codebook)")
    b.add_argument("--out", required=True, help="output folder (from scratch: target/, oracle/; else the model)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="other bottleneck options, e.g. --set steps=1000 --set kl_steps=100 for a pretrained model "
                        "(see docs/families/bottleneck.md)")
    b.add_argument("--rwku", help="pretrained models: train on the passages of the probe targets (with --probes)")
    b.add_argument("--probes", help="RWKU-style probe file (default: the built-in probes)")
    add_data_args(b)
    b.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.cli.common import check_models, inputs, named_benchmark, parse_sets, probes, with_seed, wrote
    from obliviate.core.options import from_dict
    from obliviate.core.outputs import check_output
    from obliviate.methods.bottleneck.build import build, damage_line
    from obliviate.methods.bottleneck.config import BottleneckConfig

    given = {"kind": args.kind, "site": args.site, "codes": args.codes, "k": args.k}
    sets = {**parse_sets(args.set), **{k: v for k, v in given.items() if v is not None}}
    cfg = from_dict(BottleneckConfig, with_seed(sets, args.seed, {"seed"}), "bottleneck")
    check_models(("model", args.model))
    found = probes(args)
    bench = named_benchmark(args)
    guarded = inputs(args)
    check_output(args.out, overwrite=args.overwrite, inputs=guarded)
    t = time.time()
    report = build(args.model, args.out, cfg, bench=bench, probes=found, cache=args.cache, overwrite=args.overwrite,
                   inputs=guarded)
    w, wo = report["with_bottleneck"], report["without_bottleneck"]
    print(f"cost of the bottleneck (without it: {report['without_is']}):")
    for k in w:
        print(f"  {k:<22} {wo.get(k, float('nan')):>9.3f} -> {w[k]:9.3f}")
    if report["warnings"]:
        print(f"obliviate: warning: {damage_line(report)}", file=sys.stderr)
    wrote(args.out, time.time() - t)
    return 0
