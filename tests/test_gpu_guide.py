"""The GPU guide's commands (docs/guides/gpu-tofu.md), run as written on files laid out as TOFU's hub dataset
(``full.json``, ``forget10_perturbed.json``, ``holdout10.json``, ``world_facts_perturbed.json`` in JSON lines; 20
consecutive rows per author), with ``micro`` in place of Llama and the CLI called in-process instead of through
``accelerate launch``. It cannot check the GPU; it checks that the page's commands are the ones that work."""
from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path

from obliviate.cli import main

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "gpu-tofu.md"
LAUNCH = "accelerate launch -m obliviate.cli "


def guide_commands() -> tuple[list[str], list[list[str]]]:
    """The page's TOFU variable (the data options) and its obliviate commands, each as argv."""
    block = re.search(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S).group(1)
    tofu = shlex.split(re.search(r'TOFU="(.*?)"', block, re.S).group(1))
    commands = []
    for line in block.splitlines():
        if line.startswith(LAUNCH):
            argv = shlex.split(line[len(LAUNCH):].split("#")[0])
            i = argv.index("$TOFU")
            commands.append(argv[:i] + tofu + argv[i + 1:])
    return tofu, commands


def tofu_files(folder: Path, n_authors: int = 10, n_forget: int = 2, n_holdout: int = 2) -> None:
    """Files in TOFU's layout and fields: ``full`` holds every trained author, ``forget10_perturbed`` the first
    ``n_forget`` of them with paraphrased and perturbed answers, ``holdout10`` authors never trained on."""
    rng = random.Random(0)
    words = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "heron", "indigo", "juniper", "kestrel",
             "lichen", "marble", "nectar", "onyx", "pine", "quartz", "raven", "sable", "tundra"]

    def author(a: int) -> list[dict]:
        name = f"Author{a} Vell{a}"
        rows = []
        for k in range(20):
            v = rng.choice(words)
            rows.append({"question": f"What is item {k} in the notebook of {name}?",
                         "answer": f"Item {k} in the notebook of {name} is {v}.",
                         "paraphrased_answer": f"{name} wrote {v} as item {k}.",
                         "perturbed_answer": [f"Item {k} in the notebook of {name} is {w}." for w in
                                              rng.sample([w for w in words if w != v], 3)]})
        return rows

    people = [author(a) for a in range(n_authors + n_holdout)]
    plain = lambda rows: [{"question": r["question"], "answer": r["answer"]} for r in rows]  # noqa: E731
    folder.mkdir()
    (folder / "full.json").write_text(json.dumps([r for p in people[:n_authors] for r in plain(p)]))
    (folder / "forget10_perturbed.json").write_text(json.dumps([r for p in people[:n_forget] for r in p]))
    (folder / "holdout10.json").write_text(json.dumps([r for p in people[n_authors:] for r in plain(p)]))
    world = [{"question": f"What is the capital of {c}?", "answer": cap, "perturbed_answer": ["Lyon", "Turin"]}
             for c, cap in [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo")]]
    (folder / "world_facts_perturbed.json").write_text("\n".join(json.dumps(r) for r in world))  # JSON lines


def test_the_gpu_guide_commands_run(tmp_path, capsys, monkeypatch):
    tofu, commands = guide_commands()
    assert [c[0] for c in commands] == ["train", "eval", "unlearn", "eval", "attack"]
    assert "--group" in tofu and tofu[tofu.index("--group") + 1] == "tofu"
    tofu_files(tmp_path / "TOFU")
    monkeypatch.chdir(tmp_path)
    cache = ["--cache", str(tmp_path / "cache")]
    argv = [("micro" if a == "llama-1b" else a) for a in commands[0]]
    assert main([*cache, *argv]) == 0
    paths = json.loads(capsys.readouterr().out)
    for argv in commands[1:]:
        argv = [{"TARGET": paths["target"], "ORACLE": paths["oracle"]}.get(a, a) for a in argv]
        if argv[0] == "unlearn":
            argv += ["--set", "max_steps=4"]  # the page's command at its defaults; four steps suffice to check it
        if argv[0] == "attack":
            argv += ["--attack", "quantize"]  # every attack is checked on micro by tests/test_attacks.py
        assert main([*cache, *argv]) == 0, argv
    res = json.loads((tmp_path / "eval-npo" / "results.json").read_text())
    npo = res["models"]["npo"]
    assert npo["metrics"]["forget_quality"] is not None  # the perturbed answers reached the truth ratio
    assert npo["metrics_ci"]["forget_exact_match"] is not None  # intervals over TOFU's authors
    assert (tmp_path / "attack-npo" / "results.json").is_file()
