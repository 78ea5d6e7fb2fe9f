"""Checkpoint files: a local directory's or a hub repository's config.json and tokenizer, read without
remote code, and the small helpers every loader uses on them (ids, stop lists, short names).

Left out: what a family's config means (its loader module translates it; families.py records which),
weights (the loaders), the memory check (memory.py).
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
