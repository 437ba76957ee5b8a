"""``obliviate plan``: the memory model's expected peak per device, term by term, for full fine-tuning and LoRA,
with and without FSDP, and the configuration that fits."""
from __future__ import annotations

import json

from obliviate.cli.common import count
from obliviate.methods import DEFAULT_METHOD


def register(sub, p) -> None:
    pl = sub.add_parser("plan", parents=[p["common"]], help="expected peak memory per device and the configuration "
                                                             "that fits (LoRA, FSDP)")
    pl.add_argument("--model", required=True, help="a preset (llama-3.1-8b, llama-2-7b, mistral-7b, llama-3.2-1b, "
                                                    "llama-3.2-3b), a built-in model, a model folder or a config.json")
    pl.add_argument("--method", default=DEFAULT_METHOD)
    pl.add_argument("--gpus", type=count, default=1)
    pl.add_argument("--gpu-memory", type=float, default=80.0, help="GiB per device")
    pl.add_argument("--batch-size", type=count, default=4, help="global batch (each of forget and retain)")
    pl.add_argument("--max-length", type=count, default=512, help="tokens per row")
    pl.add_argument("--dtype-bytes", type=int, choices=(2, 4), default=2,
                    help="2: bfloat16 weights (a Hugging Face checkpoint in its own dtype), 4: float32 (GGUF and "
                         "built-in models load so)")
    pl.add_argument("--headroom", type=float, default=0.10, help="share of each device kept free")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.core.utils import ObliviateError
    from obliviate.engine.plan import GIB, architecture, options
    from obliviate.methods import get_method

    terms = get_method(args.method).memory  # an unknown method fails with the list of methods
    if args.gpu_memory <= 0:
        raise ObliviateError("plan: --gpu-memory must be positive (GiB per device)")
    arch = architecture(args.model)
    rows = options(arch, terms, args.batch_size, args.max_length, args.gpus, args.gpu_memory,
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
