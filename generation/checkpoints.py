"""Checkpoint files: a local directory's or a hub repository's config.json and tokenizer, read without
remote code, and the Dream and LLaDA configs translated into the native transformers configs they are.

- Dream's config.json (model_type "Dream") is a Qwen2.5 config under the same keys.
- LLaDA's (model_type "llada", OLMo keys) describes blocks that compute exactly a LLaMA layer.

Left out: weights (dream_llada.py loads them), the memory check (memory.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .models import ModelUnavailable


def read_json(name_or_path: str, filename: str, cache_only: bool = False) -> dict | None:
    """A JSON file of a local checkpoint directory or a hub repository (None if it has none);
    with cache_only, only what the hub cache already holds (no network)."""
    if Path(name_or_path).is_dir():
        local = Path(name_or_path) / filename
        return json.loads(local.read_text()) if local.exists() else None
    from transformers.utils import cached_file

    try:
        path = cached_file(name_or_path, filename, local_files_only=cache_only,
                           _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except (OSError, ValueError) as error:  # ValueError: not a valid hub id either
        raise ModelUnavailable(
            f"could not read {filename} of {name_or_path!r} ({error}); it must be a local checkpoint "
            f"directory or a hub id reachable from here"
        ) from error
    return json.loads(Path(path).read_text()) if path else None


def read_config(name_or_path: str) -> dict:
    config = read_json(name_or_path, "config.json")
    if config is None:
        raise ModelUnavailable(f"{name_or_path!r} has no config.json")
    return config


def dream_qwen2_config(dream: dict):
    """Dream's config.json (model_type "Dream") as the Qwen2Config it is: the same keys, minus Dream's own."""
    from transformers import Qwen2Config

    if dream.get("model_type") != "Dream":
        raise ModelUnavailable(f"not a Dream checkpoint: model_type is {dream.get('model_type')!r}")
    drop = {"model_type", "architectures", "auto_map", "mask_token_id", "transformers_version", "torch_dtype",
            "dtype", "_name_or_path"}
    config = Qwen2Config(**{k: v for k, v in dream.items() if k not in drop})
    config.use_cache = False  # every step re-reads the whole canvas
    return config


def load_tokenizer(name_or_path: str):
    """The checkpoint's tokenizer without remote code. Dream's tokenizer_config names a remote-code
    `DreamTokenizer`, a copy of Qwen2's: its vocab.json/merges.txt load into the native Qwen2Tokenizer.
    LLaDA's is a plain PreTrainedTokenizerFast (loaded directly: AutoTokenizer would first try to read
    the remote-code config and ask whether to trust it)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Tokenizer

    settings = read_json(name_or_path, "tokenizer_config.json") or {}
    kind = settings.get("tokenizer_class")
    try:
        if kind == "DreamTokenizer" or (settings.get("auto_map") and kind in (None, "Qwen2Tokenizer")):
            return Qwen2Tokenizer.from_pretrained(name_or_path)
        if kind == "PreTrainedTokenizerFast":
            return PreTrainedTokenizerFast.from_pretrained(name_or_path)
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"could not load the tokenizer of {name_or_path!r}: {error}") from error


# LLaDA config values the LLaMA mapping relies on (anything else is refused with a clear message).
LLADA_REQUIRED = {
    "block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu", "rope": True, "alibi": False,
    "include_bias": False, "include_qkv_bias": False, "scale_logits": False, "input_emb_norm": False,
    "attention_layer_norm": False, "block_group_size": 1,
}


def llada_llama_config(llada: dict):
    """LLaDA's config.json (model_type "llada", OLMo keys) as a LlamaConfig."""
    from transformers import LlamaConfig

    if llada.get("model_type") != "llada":
        raise ModelUnavailable(f"not a LLaDA checkpoint: model_type is {llada.get('model_type')!r}")
    unsupported = {k: llada.get(k) for k, v in LLADA_REQUIRED.items() if k in llada and llada[k] != v}
    if unsupported:
        raise ModelUnavailable(f"this LLaDA variant has settings the native LLaMA mapping does not cover: {unsupported}")
    heads = llada["n_heads"]
    return LlamaConfig(
        vocab_size=llada.get("embedding_size") or llada["vocab_size"],
        hidden_size=llada["d_model"],
        intermediate_size=llada.get("mlp_hidden_size") or llada["mlp_ratio"] * llada["d_model"],
        num_hidden_layers=llada["n_layers"],
        num_attention_heads=heads,
        num_key_value_heads=_llada_kv_heads(llada),
        hidden_act="silu",
        max_position_embeddings=llada.get("max_sequence_length", 4096),
        rms_norm_eps=llada.get("rms_norm_eps", 1e-5),
        rope_theta=llada.get("rope_theta", 10000.0),
        tie_word_embeddings=bool(llada.get("weight_tying", False)),
        attention_bias=False, mlp_bias=False, use_cache=False,
        bos_token_id=llada.get("bos_token_id"), eos_token_id=llada.get("eos_token_id"),
        pad_token_id=llada.get("pad_token_id"),
    )


def _llada_kv_heads(llada: dict) -> int:
    """OLMo's effective_n_kv_heads: n_kv_heads, or 1 with multi_query_attention, else n_heads."""
    if llada.get("n_kv_heads") is not None:
        return llada["n_kv_heads"]
    return 1 if llada.get("multi_query_attention") else llada["n_heads"]


def token_id(tokenizer, token: str | None, fallback: int) -> int:
    if token is None:
        return fallback
    token_id = tokenizer.convert_tokens_to_ids(token)
    return token_id if token_id is not None else fallback


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def unique_ids(ids) -> tuple[int, ...]:
    """unique_ids([5, None, 3, 5]) -> (5, 3): stop ids in order, without gaps or repeats."""
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, int)))


def short_name(name_or_path: str) -> str:
    return os.path.basename(str(name_or_path).rstrip("/"))
