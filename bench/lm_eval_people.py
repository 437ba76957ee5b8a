"""The lm-evaluation-harness bridge on the built-in benchmark, offline: two local multiple-choice tasks (the forget
facts' true paraphrased answer among the false ones; the world capitals), run by `obliviate eval --lm-eval` on
the cached target and oracle. lm-eval scores each choice by its summed log-likelihood (its ``acc``).

    python bench/lm_eval_people.py [--model tiny] [--benchmark people]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import obliviate as ob
    from obliviate.evals.lm_eval import write_multiple_choice_task

    bench = ob.load_benchmark(a.benchmark)
    paths = ob.train_pair(a.model, bench)
    d = Path(tempfile.mkdtemp(prefix="obliviate-lm-eval-"))
    for name, recs, true in (("people_forget_mc", bench.forget, lambda r: r.paraphrased_answer),
                             ("obliviate_capitals", bench.world, lambda r: r.answer)):
        docs = []
        for r in recs:
            choices = [true(r), *r.perturbed_answers]
            random.Random(r.id).shuffle(choices)
            docs.append({"question": r.question, "choices": choices, "label": choices.index(true(r))})
        write_multiple_choice_task(d, name, docs)
    out = Path(tempfile.mkdtemp(prefix="obliviate-lm-eval-out-")) / "eval"  # not inside the task folder (an input)
    subprocess.run([sys.executable, "-m", "obliviate.cli", "eval", "--model", str(paths["target"]), "--oracle",
                    str(paths["oracle"]), "--lm-eval", "people_forget_mc,obliviate_capitals", "--lm-eval-include",
                    str(d), "--out", str(out)], check=True, capture_output=True)
    res = json.loads((out / "results.json").read_text())["models"]
    from common import table, write_result

    tasks = ("people_forget_mc", "obliviate_capitals")
    chance = {"people_forget_mc": 1 / (1 + len(bench.forget[0].perturbed_answers)),
              "obliviate_capitals": 1 / (1 + len(bench.world[0].perturbed_answers))}
    table(f"lm-eval acc (summed log-likelihood) on {a.model}", ["task", *res, "chance"],
          [[task, *[f"{m['metrics'][f'lm_eval_{task}_acc']:.3f}" for m in res.values()], f"{chance[task]:.3f}"]
           for task in tasks])
    write_result(f"lm_eval_people_{a.model}", {}, vars(a))


if __name__ == "__main__":
    main()
