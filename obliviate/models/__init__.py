"""The model layer: loading and saving any causal LM (built-in, folder, GGUF, hub id), the kinds of model folder
the method families write (each registered with a detector and a loader, :mod:`.kinds`), the guarded model
(:mod:`.guarded`), and the model anatomy every other part reads a model through (:mod:`.anatomy`)."""
from obliviate.models.guarded import GUARD_JSON, Guard, GuardedModel, guard_kinds, is_guarded_folder, load_guarded, register_guard
from obliviate.models.kinds import MODEL_KINDS, ModelKind, kind_of, register_kind
from obliviate.models.loading import (BUILTIN_MODELS, HUB_PREFIX, SCRATCH_MODELS, TinyModelConfig, build_tiny,
                                      check_folder, check_model_spec, gemma3_gguf_path, load_adapter, load_gguf,
                                      load_model, load_plain, load_tokenizer, quiet_progress, save_model, with_pad,
                                      smollm2_gguf_path, train_tokenizer, weights_digest)

__all__ = ["BUILTIN_MODELS", "GUARD_JSON", "Guard", "GuardedModel", "HUB_PREFIX", "MODEL_KINDS", "ModelKind",
           "SCRATCH_MODELS", "TinyModelConfig", "build_tiny", "check_folder", "check_model_spec", "gemma3_gguf_path",
           "guard_kinds", "is_guarded_folder", "kind_of", "load_adapter", "load_gguf", "load_guarded", "load_model",
           "load_plain", "load_tokenizer", "quiet_progress", "register_guard", "register_kind", "save_model", "smollm2_gguf_path", "train_tokenizer", "weights_digest", "with_pad"]
