"""obliviate: machine unlearning for language models.

    import obliviate as ob
    bench = ob.load_benchmark("people")                       # fictitious people, forget 10 %
    paths = ob.train_pair("tiny", bench)                      # target and oracle (cached)
    target, tok = ob.load_model(paths["target"])
    oracle, _ = ob.load_model(paths["oracle"])
    ref = ob.evaluate(oracle, tok, bench)
    new, info = ob.unlearn(target, tok, ob.UnlearnData.from_benchmark(bench, tok), "npo")
    print(ob.evaluate(new, tok, bench, oracle=ref).metrics)
    attacks = ob.run_attacks({"npo": new}, tok, bench, target=target, oracle=oracle)  # is it really gone?
"""
import os

import torch as _torch

if not _torch.cuda.device_count():
    # DeepSpeed, imported by accelerate when installed, prints "Setting accelerator to CPU" on *stdout* when it
    # detects no GPU, which breaks `obliviate train`'s JSON; naming the CPU accelerator is the same choice, quietly
    os.environ.setdefault("DS_ACCELERATOR", "cpu")


from obliviate.attacks import ATTACKS, run_attacks
from obliviate.data import Benchmark, QARecord, TextRecord, benchmark_from_files, load_benchmark
from obliviate.evals import METRICS, EvalConfig, evaluate
from obliviate.methods import METHODS, UnlearnData, unlearn
from obliviate.models import load_model, save_model
from obliviate.runs.demo import DemoConfig, run_demo
from obliviate.engine.training import TrainConfig, train_pair
from obliviate.core.utils import ObliviateError, package_version

# The module paths of earlier versions, kept for code written against them: obliviate.outputs (safe output folders,
# now obliviate.core.outputs) and obliviate.train (target and oracle training, now obliviate.engine.training).
import sys as _sys  # noqa: E402

from obliviate.core import outputs as _outputs  # noqa: E402
from obliviate.engine import training as _training  # noqa: E402

outputs = _sys.modules.setdefault("obliviate.outputs", _outputs)
train = _sys.modules.setdefault("obliviate.train", _training)

__version__ = package_version()  # 0.0.0 when run from a source tree without an install

__all__ = ["ATTACKS", "METHODS", "METRICS", "Benchmark", "DemoConfig", "EvalConfig", "ObliviateError", "QARecord", "TextRecord",
           "TrainConfig", "UnlearnData", "__version__", "benchmark_from_files", "evaluate", "load_benchmark",
           "load_model", "run_attacks", "run_demo", "save_model", "train_pair", "unlearn"]
