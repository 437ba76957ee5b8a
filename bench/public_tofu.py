"""The suite on TOFU's public files, as a user gets them from the TOFU repository (github.com/locuslab/tofu):
``data/world_facts_perturbed.json`` and ``data/real_authors_perturbed.json`` as published (JSON lines despite the
extension), and the forget10 and retain questions with their ground-truth answers as the repository's Llama-2
evaluation logs record them (``data/ft_epoch5_lr1e-05_llama2-7b_full_wd0.01/eval_results/ds_size300/
eval_log_forget.json`` and ``eval_log.json``: ``generated_text[i] = [prompt, answer, generation]``). The
questions' paraphrased and perturbed answers live on the Hugging Face hub, which this machine cannot reach, so
forget quality and the truth ratio on forget and retain are left out (and said so); everything else runs.

    git clone https://github.com/locuslab/tofu                    # or any folder holding those files
    python bench/public_tofu.py --tofu tofu [--model tiny] [--out bench_out/tofu]

It writes a TOFU-format benchmark folder, trains ``--model`` as target (forget + retain) and oracle (retain) with
``obliviate train --data ... --forget ...``, evaluates both (TOFU's free-text answers: a fact counts as stated
when the greedy answer's ROUGE-L recall reaches 0.8), and runs ``--attack all``, which skips the attacks that
TOFU's data cannot feed. No TOFU text is copied into obliviate; it stays in the temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import say, table, write_result

LOG = "data/ft_epoch5_lr1e-05_llama2-7b_full_wd0.01/eval_results/ds_size300"


def read(tofu: Path, rel: str) -> str:
    """A file of the TOFU repository: from a checkout, or (``git show``) from a bare clone."""
    if (tofu / rel).is_file():
        return (tofu / rel).read_text(encoding="utf-8")
    return subprocess.run(["git", "--git-dir", str(tofu), "show", f"HEAD:{rel}"], check=True, capture_output=True,
                          text=True).stdout


def qa_from_log(text: str) -> list[dict]:
    """Question and answer of each row of an evaluation log (the prompt's [INST] ... [/INST] wrapper removed)."""
    log = json.loads(text)
    rows = []
    for _, (prompt, answer, _gen) in sorted(log["generated_text"].items(), key=lambda kv: int(kv[0])):
        q = re.sub(r"^\[INST\]\s*|\s*\[/INST\]$", "", prompt.strip())
        rows.append({"question": q, "answer": answer.strip()})
    return rows


def run(args: list[str], env: dict) -> str:
    t = time.time()
    out = subprocess.run([sys.executable, "-m", "obliviate.cli", *args], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"obliviate {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    print(f"  obliviate {args[0]}: {time.time() - t:.0f} s", flush=True)
    return out.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tofu", required=True, help="a checkout (or bare clone) of github.com/locuslab/tofu")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--out", default="bench_out/tofu")
    a = ap.parse_args()
    tofu = Path(a.tofu)
    work = Path(tempfile.mkdtemp(prefix="obliviate-tofu-"))
    forget, retain = qa_from_log(read(tofu, f"{LOG}/eval_log_forget.json")), qa_from_log(read(tofu, f"{LOG}/eval_log.json"))
    forget_qs = {r["question"] for r in forget}
    retain = [r for r in retain if r["question"] not in forget_qs]
    (work / "data.json").write_text(json.dumps(forget + retain))
    (work / "forget.json").write_text(json.dumps(forget))
    for name in ("world_facts_perturbed.json", "real_authors_perturbed.json"):
        (work / name).write_text(read(tofu, f"data/{name}"))  # as published: JSON lines
    say(f"TOFU files: {len(forget)} forget10 rows, {len(retain)} retain rows, answers of "
          f"{sum(len(r['answer'].split()) for r in forget) / len(forget):.0f} words on average; temporary folder {work}")
    env = {**os.environ, "OBLIVIATE_QUIET": "1", "OBLIVIATE_CACHE": str(work / "cache")}
    # TOFU's rows carry no author: its files hold 20 consecutive rows per author (forget first, then retain, each a
    # multiple of 20 rows), and --group tofu makes every interval a bootstrap over authors
    data = ["--data", str(work / "data.json"), "--forget", str(work / "forget.json"),
            "--world", str(work / "world_facts_perturbed.json"), "--group", "tofu"]
    paths = json.loads(run(["train", "--model", a.model, *data], env))
    out = Path(a.out)
    run(["eval", "--model", paths["target"], "--oracle", paths["oracle"], "--out", str(out / "eval"), "--overwrite"],
        env)
    attack = subprocess.run([sys.executable, "-m", "obliviate.cli", "attack", "--model", paths["target"], "--target",
                             paths["target"], "--oracle", paths["oracle"], "--attack", "all", "--out",
                             str(out / "attack"), "--overwrite", "--set", "relearn.steps=0,25"],
                            env=env, capture_output=True, text=True)
    say("obliviate attack: " + " ".join(line for line in attack.stderr.splitlines() if "does not apply" in line))
    if attack.returncode:
        raise SystemExit(attack.stderr[-3000:])
    res = json.loads((out / "eval" / "results.json").read_text())
    keys = ["forget_exact_match", "forget_rougeL_recall", "retain_exact_match", "retain_rougeL_recall",
            "world_exact_match", "world_prob", "world_truth_ratio", "forget_extraction_strength", "model_utility",
            "forget_quality"]
    names = list(res["models"])
    rows = []
    for k in keys:
        cells = []
        for n in names:
            v, ci = res["models"][n]["metrics"].get(k), res["models"][n]["metrics_ci"].get(k)
            cells.append("n/a" if v is None else f"{v:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        rows.append([k, *cells])
    table(f"TOFU forget10 on {a.model}: value [95 % interval over authors]", ["metric", *names], rows)
    for n in names:
        for note in res["models"][n]["notes"]:
            say(f"note ({n}): {note}")
    rob = json.loads((out / "attack" / "results.json").read_text())["robustness"]
    say("attacks run: " + ", ".join(rob["attacks"]) + "; skipped: "
        + "; ".join(f"{k} ({v})" for k, v in rob["skipped"].items()))
    write_result(f"public_tofu_{a.model}", {}, {"model": a.model})


if __name__ == "__main__":
    main()
