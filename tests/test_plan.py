"""`obliviate plan`: parameter counts from configs alone, terms that move the way sharding and LoRA promise, the
configuration it recommends, and clear errors. (How close the peaks are to measured ones is bench/memory.py's job.)"""
import json

import pytest

from obliviate import METHODS, ObliviateError
from obliviate.engine.plan import architecture, estimate


def test_presets_count_the_published_parameters_without_weights():
    assert round(architecture("llama-3.1-8b").params / 1e9, 2) == 8.03
    assert round(architecture("llama-2-7b").params / 1e9, 2) == 6.74


def test_fsdp_divides_the_states_and_lora_shrinks_them():
    a = architecture("llama-2-7b")
    one = estimate(a, METHODS["graddiff"].memory, 4, 512, gpus=1, dtype_bytes=2)
    four = estimate(a, METHODS["graddiff"].memory, 4, 512, gpus=4, fsdp=True, dtype_bytes=2)
    assert four["terms"]["optimizer"] == pytest.approx(one["terms"]["optimizer"] / 4)
    assert four["terms"]["gradients"] == pytest.approx(one["terms"]["gradients"] / 4)
    assert one["terms"]["weights"] / 4 < four["terms"]["weights"] < one["terms"]["weights"] / 2  # + gathered units
    assert four["terms"]["activations"] == pytest.approx(one["terms"]["activations"] / 4)  # the batch is split
    lora = estimate(a, METHODS["graddiff"].memory, 4, 512, lora_rank=16, dtype_bytes=2)
    assert lora["terms"]["optimizer"] < one["terms"]["optimizer"] / 100
    assert lora["peak"] < one["peak"]
    rmu, npo = (estimate(a, METHODS[m].memory, 4, 512)["terms"] for m in ("rmu", "npo"))
    assert rmu["frozen copies"] == rmu["weights"]
    assert npo["frozen copies"] == 0  # reference NLLs, not a second model
    assert npo["reference pass"] > 0


def test_cli_prints_every_configuration_and_the_one_that_fits(capsys):
    from obliviate.cli import main

    assert main(["plan", "--model", "llama-3.1-8b", "--method", "npo", "--gpus", "4", "--gpu-memory", "80"]) == 0
    out = capsys.readouterr().out
    assert "full + FSDP x4" in out and "LoRA r=16" in out
    assert "fits: OBLIVIATE_FSDP=1 torchrun --nproc_per_node 4" in out  # full does not fit one 80 GiB device
    assert main(["plan", "--model", "llama-3.1-8b", "--gpus", "1", "--gpu-memory", "8"]) == 1
    assert "nothing fits" in capsys.readouterr().out
    assert main(["plan", "--model", "micro", "--method", "ga", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"] > 0 and all(c["fits"] for c in data["configurations"])


def test_a_config_file_and_bad_input(tmp_path, capsys):
    from obliviate.cli import main

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
                               "num_hidden_layers": 2, "num_attention_heads": 2}))
    assert architecture(str(cfg)).layers == 2
    with pytest.raises(ObliviateError, match="plan: unknown model 'nope'"):
        architecture("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ObliviateError, match="is not a model config.json"):
        architecture(str(bad))
    assert main(["plan", "--model", "micro", "--method", "nosuch"]) == 2
    assert "unknown method 'nosuch'" in capsys.readouterr().err


def test_the_reference_pass_gives_the_same_nlls_whatever_its_logits_budget(micro_models, micro_bench):
    from obliviate import UnlearnData
    from obliviate.methods.common import reference_nll

    target, _, tok = micro_models
    data = UnlearnData.from_benchmark(micro_bench, tok)
    whole = reference_nll(target, tok, data.forget, 256)
    one_row = reference_nll(target, tok, data.forget, 256, logits_bytes=1)  # batches of one row
    assert whole.shape == one_row.shape and (whole - one_row).abs().max() < 1e-3 * whole.abs().max()
