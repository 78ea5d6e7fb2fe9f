"""Offline tests of the large-model loaders on tiny random checkpoints in the published formats
(tests/tiny_hub_checkpoints.py), through the real loader path (`load_model(path)`).

The logit-for-logit comparison with the published Dream/LLaDA modeling code needs that code and an
old transformers, so it lives in bench/reference_logits.py; here LLaDA is checked against a
hand-written forward of its published block instead."""

import threading

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from generation import ConfigError, DiffusionConfig, ModelUnavailable, diffuse, load_model, stream_diffusion
from generation import dream_llada, memory, presets
from generation.diffusion_gemma import BlockDiffusionLM, applicable_config
from generation.dream_llada import LLADA_KEY_MAPPING
from generation.memory import can_run, parameter_count
from tiny_hub_checkpoints import (DREAM_TINY_END_OF_TURN_ID, DREAM_TINY_EOS_ID, DREAM_TINY_MASK_ID,
                                  GEMMA_TINY_EOS_ID, LLADA_TINY_END_OF_TURN_ID, LLADA_TINY_EOS_ID,
                                  LLADA_TINY_MASK_ID, write_diffusion_gemma, write_dream, write_llada)

MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    return {"dream": write_dream(root / "dream"), "llada": write_llada(root / "llada"),
            "gemma": write_diffusion_gemma(root / "gemma")}


@pytest.fixture(scope="module")
def dream(checkpoints):
    return load_model(str(checkpoints["dream"]), device="cpu", dtype=torch.float32)  # exact comparisons


@pytest.fixture(scope="module")
def llada(checkpoints):
    return load_model(str(checkpoints["llada"]), device="cpu", dtype=torch.float32)  # exact comparisons


@pytest.fixture(scope="module")
def gemma(checkpoints):
    return load_model(str(checkpoints["gemma"]), device="cpu", dtype=torch.float32)  # exact comparisons


def _file_tensors(directory) -> dict:
    tensors = {}
    for shard in sorted(directory.glob("model-*.safetensors")):
        tensors.update(load_file(str(shard)))
    return tensors


# ---------------------------------------------------------------- Dream


def test_dream_loads_every_published_tensor_into_native_qwen2(dream, checkpoints):
    assert type(dream.module).__name__ == "Qwen2ForCausalLM"
    state = dream.module.state_dict()
    published = _file_tensors(checkpoints["dream"])
    assert set(published) == set(state)
    assert all(torch.equal(state[name], tensor) for name, tensor in published.items())


def test_dream_conventions_come_from_the_checkpoint(dream):
    assert (dream.mask_id, dream.shift_logits) == (DREAM_TINY_MASK_ID, True)
    assert dream.stop_ids == (DREAM_TINY_END_OF_TURN_ID, DREAM_TINY_EOS_ID)
    assert DREAM_TINY_MASK_ID in dream.never_propose


def test_dream_attention_is_bidirectional(dream):
    ids = torch.arange(20).unsqueeze(0)
    changed = ids.clone()
    changed[0, -1] = 99  # a later token must change the logits of the first position
    with torch.no_grad():
        first = dream.module(ids).logits[0, 0]
        again = dream.module(changed).logits[0, 0]
    assert not torch.allclose(first, again)


def test_dream_chat_template_opens_the_assistant_turn(dream):
    text = dream.tokenizer.decode(dream.prompt_ids(MESSAGES))
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")


def test_dream_diffuses_end_to_end(dream):
    history = diffuse(dream, dream.prompt_ids(MESSAGES), DiffusionConfig(gen_length=16, steps=8, algorithm="maskgit_plus"))
    assert DREAM_TINY_MASK_ID not in history.canvas
    assert None not in history.first_committed and len(history.steps) == 8


# ---------------------------------------------------------------- LLaDA


def test_llada_maps_every_olmo_tensor_onto_native_llama(llada, checkpoints):
    import re

    assert type(llada.module).__name__ == "LlamaForCausalLM"
    state = llada.module.state_dict()
    renamed = {}
    for name, tensor in _file_tensors(checkpoints["llada"]).items():
        for pattern, target in LLADA_KEY_MAPPING.items():
            if re.match(pattern, name):
                renamed[re.sub(pattern, target, name)] = tensor
                break
    assert set(renamed) == set(state)
    assert all(torch.equal(state[name], tensor) for name, tensor in renamed.items())


def test_llada_conventions_come_from_the_checkpoint(llada):
    assert (llada.mask_id, llada.shift_logits) == (LLADA_TINY_MASK_ID, False)
    assert llada.stop_ids == (LLADA_TINY_END_OF_TURN_ID, LLADA_TINY_EOS_ID)


def test_llada_logits_match_a_hand_written_published_block(llada, checkpoints):
    """LLaDALlamaBlock as published: x += attn_out(sdpa(rope(q), rope(k), v)) of attn_norm(x), non-causal;
    x += ff_out(silu(ff_proj(h)) * up_proj(h)) with h = ff_norm(x); logits = ff_out(ln_f(x))."""
    import json

    config = json.loads((checkpoints["llada"] / "config.json").read_text())
    w = _file_tensors(checkpoints["llada"])
    heads, kv_heads, d = config["n_heads"], config["n_kv_heads"], config["d_model"]
    head_dim, eps = d // heads, config["rms_norm_eps"]

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rope(t):  # (B, H, T, hd), rotate-half convention
        inv = 1.0 / config["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim)
        freqs = torch.outer(torch.arange(t.shape[2]).float(), inv)
        angles = torch.cat([freqs, freqs], -1)
        half = torch.cat([-t[..., head_dim // 2:], t[..., : head_dim // 2]], -1)
        return t * angles.cos() + half * angles.sin()

    ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(1))
    x = w["model.transformer.wte.weight"][ids]
    for i in range(config["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = (h @ w[p + "q_proj.weight"].T).view(1, -1, heads, head_dim).transpose(1, 2)
        k = (h @ w[p + "k_proj.weight"].T).view(1, -1, kv_heads, head_dim).transpose(1, 2)
        v = (h @ w[p + "v_proj.weight"].T).view(1, -1, kv_heads, head_dim).transpose(1, 2)
        k, v = (t.repeat_interleave(heads // kv_heads, dim=1) for t in (k, v))
        att = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=False)
        x = x + att.transpose(1, 2).reshape(1, -1, d) @ w[p + "attn_out.weight"].T
        h = rms(x, w[p + "ff_norm.weight"])
        x = x + (F.silu(h @ w[p + "ff_proj.weight"].T) * (h @ w[p + "up_proj.weight"].T)) @ w[p + "ff_out.weight"].T
    expected = rms(x, w["model.transformer.ln_f.weight"]) @ w["model.transformer.ff_out.weight"].T
    with torch.no_grad():
        native = llada.module(ids).logits
    assert torch.allclose(native, expected, atol=1e-4)


def test_llada_diffuses_end_to_end_in_blocks(llada):
    config = DiffusionConfig(gen_length=16, steps=8, block_length=8, algorithm="low_confidence")
    history = diffuse(llada, llada.prompt_ids(MESSAGES), config)
    assert LLADA_TINY_MASK_ID not in history.canvas and len(history.steps) == 8


def test_llada_variant_outside_the_mapping_is_refused_clearly(tmp_path):
    import json

    directory = write_llada(tmp_path / "odd", layers=1)
    config = json.loads((directory / "config.json").read_text())
    config["include_qkv_bias"] = True
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelUnavailable, match="include_qkv_bias"):
        dream_llada.load_llada(str(directory), "cpu", torch.float32)


# ---------------------------------------------------------------- DiffusionGemma


def test_diffusion_gemma_loads_as_a_block_diffusion_model(gemma):
    assert isinstance(gemma, BlockDiffusionLM) and gemma.canvas_length == 8
    assert GEMMA_TINY_EOS_ID in gemma.stop_ids


def test_diffusion_gemma_history_records_exactly_what_generate_returns(gemma):
    prompt = gemma.prompt_ids(MESSAGES)
    history = diffuse(gemma, prompt, DiffusionConfig(gen_length=16, steps=12, seed=3))
    torch.manual_seed(3)
    with torch.no_grad():
        out = gemma.module.generate(torch.tensor([prompt]), max_new_tokens=16, max_denoising_steps=6,
                                    eos_token_id=list(gemma.stop_ids))
    answer = out.sequences[0, len(prompt):].tolist()
    end = history.answer_length()
    assert history.canvas[:end] == answer[:end]


def test_diffusion_gemma_streams_revisions_after_acceptance(gemma):
    steps = []
    for history in stream_diffusion(gemma, gemma.prompt_ids(MESSAGES), DiffusionConfig(gen_length=16, steps=16)):
        steps.append(history.canvas)
    assert len(steps) == len(history.steps) > 2
    assert history.planned_steps is None
    revised = [p for p, (last, first) in enumerate(zip(history.last_changed, history.first_committed))
               if first is not None and last > first]
    assert revised, "DiffusionGemma changes accepted tokens; the History must show it"


def test_diffusion_gemma_stop_ends_the_generate_thread(gemma):
    stop = threading.Event()
    stream = stream_diffusion(gemma, gemma.prompt_ids(MESSAGES), DiffusionConfig(gen_length=16, steps=16), stop)
    history = next(stream)
    stop.set()
    for history in stream:
        pass
    assert history.stopped and len(history.steps) < 16
    assert not any(t.name == "unmask-diffusion-gemma" for t in threading.enumerate())


def test_diffusion_gemma_refuses_settings_it_cannot_take(gemma):
    config = DiffusionConfig(gen_length=16, steps=8, algorithm="maskgit_plus", temperature=0.5)
    with pytest.raises(ConfigError, match="algorithm, temperature"):
        diffuse(gemma, gemma.prompt_ids(MESSAGES), config)
    assert applicable_config(config) == (DiffusionConfig(gen_length=16, steps=8), ("algorithm", "temperature"))


# ---------------------------------------------------------------- presets and memory


def test_parameter_count_from_the_config_matches_the_loaded_model(dream, checkpoints):
    assert parameter_count(str(checkpoints["dream"])) == sum(p.numel() for p in dream.module.parameters())


def test_can_run_refuses_a_7b_model_that_does_not_fit_with_numbers(monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: 24 * 2**30)
    verdict = can_run(presets.DREAM_INSTRUCT, "cpu", torch.float32)
    assert not verdict.ok and "GiB" in verdict.message and "24.0 GiB" in verdict.message
    assert can_run("smollm2-135m-diffusion", "cpu", torch.float32, alongside=("smollm2-135m-instruct",)).ok


def test_can_run_counts_the_ar_partner_too(monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: 30 * 2**30)
    assert can_run(presets.DREAM_INSTRUCT, "cuda", torch.bfloat16).ok
    assert not can_run(presets.DREAM_INSTRUCT, "cuda", torch.bfloat16,
                       alongside=(presets.QWEN25_7B_INSTRUCT,)).ok


def test_space_profile_puts_large_presets_first(monkeypatch):
    monkeypatch.setenv(presets.PROFILE_ENV, "space")
    assert presets.default_preset().large
    monkeypatch.delenv(presets.PROFILE_ENV)
    assert presets.default_preset().diffusion == "smollm2-135m-diffusion"


def test_every_preset_diffusion_model_has_a_loader():
    from generation.registry import REGISTRY

    assert all(p.diffusion in REGISTRY for p in presets.PRESETS)
