"""``obliviate train``: the target (all data) and the oracle (without the forget set), cached; or, with
``--sharded``, a SISA / S3T ensemble of the target for exact unlearning."""
from __future__ import annotations

import argparse
import json
import time

from obliviate.cli.args import add_data_args
from obliviate.cli.common import count, seed, wrote


def register(sub, p) -> None:
    t = sub.add_parser("train", parents=[p["common"], p["seeded"]],
                       help="train the target (all data) and the oracle (without the forget set)")
    t.add_argument("--model", default="tiny", help="base model: built-in name, folder, .gguf or hf:ORG/NAME")
    add_data_args(t)
    t.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    t.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    t.add_argument("--lora-rank", type=int, help="LoRA adapters of this rank, merged after training; 0: full "
                                                 "fine-tuning (default: the model's recipe)")
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bfloat16 autocast while training (default: on for pretrained models, off from scratch)")
    t.add_argument("--force", action="store_true", help="retrain even if cached")
    t.add_argument("--sharded", type=count, help="SISA: train S constituents on S shards (needs --out)")
    t.add_argument("--slices", type=count, default=4, help="SISA: slices per shard, a checkpoint after each")
    t.add_argument("--s3t", action="store_true", help="with --sharded: S3T (LoRA layer groups trained on cumulative "
                                                      "slices, several orderings per shard) instead of SISA")
    t.add_argument("--budget", type=count, help="with --s3t: slice orderings per shard (default: --slices)")
    t.add_argument("--out", help="with --sharded: the ensemble's folder")
    t.add_argument("--overwrite", action="store_true", help="with --sharded: replace an --out obliviate wrote")
    t.set_defaults(fn=run)


def run(args) -> int:
    import obliviate.engine.training as training
    from obliviate.cli.common import check_models, named_benchmark
    from obliviate.core.options import from_dict

    cfg = from_dict(training.TrainConfig, {"epochs": args.epochs, "lr": args.lr, "bf16": args.bf16,
                                           "lora_rank": args.lora_rank, "seed": seed(args)}, "train")
    check_models(("model", args.model))
    bench = named_benchmark(args)
    if bench is None:
        from obliviate.data import load_benchmark

        bench = load_benchmark("people")
    if args.sharded:
        from obliviate.methods.exact.training import train_ensemble

        t = time.time()
        train_ensemble(args.model, bench, args.out, cfg, shards=args.sharded, slices=args.slices, s3t=args.s3t,
                       budget=args.budget, overwrite=args.overwrite)
        wrote(args.out, time.time() - t)
        return 0
    paths = training.train_pair(args.model, bench, cfg, cache=args.cache, force=args.force)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    return 0
