"""generation/dream_llada.py: Dream and LLaDA on native classes, from tiny random checkpoints in the
published formats (tests/tiny_hub_checkpoints.py), through the real loader path (`load_model(path)`).

The logit-for-logit comparison with the published Dream/LLaDA modeling code needs that code and an
old transformers, so it lives in bench/reference_logits.py; here LLaDA is checked against a
hand-written forward of its published block instead."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from generation import DiffusionConfig, ModelUnavailable, diffuse, load_model
from generation import dream_llada
from generation.dream_llada import LLADA_KEY_MAPPING
from tiny_hub_checkpoints import (DREAM_TINY_END_OF_TURN_ID, DREAM_TINY_EOS_ID, DREAM_TINY_MASK_ID,
                                  LLADA_TINY_END_OF_TURN_ID, LLADA_TINY_EOS_ID, LLADA_TINY_MASK_ID, write_llada)

MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def dream(hub_checkpoints):
    return load_model(str(hub_checkpoints["dream"]), device="cpu", dtype=torch.float32)  # exact comparisons


@pytest.fixture(scope="module")
def llada(hub_checkpoints):
    return load_model(str(hub_checkpoints["llada"]), device="cpu", dtype=torch.float32)  # exact comparisons


def _file_tensors(directory) -> dict:
    tensors = {}
    for shard in sorted(directory.glob("model-*.safetensors")):
        tensors.update(load_file(str(shard)))
    return tensors


# ---------------------------------------------------------------- Dream


def test_dream_loads_every_published_tensor_into_native_qwen2(dream, hub_checkpoints):
    assert type(dream.module).__name__ == "Qwen2ForCausalLM"
    state = dream.module.state_dict()
    published = _file_tensors(hub_checkpoints["dream"])
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


def test_llada_maps_every_olmo_tensor_onto_native_llama(llada, hub_checkpoints):
    import re

    assert type(llada.module).__name__ == "LlamaForCausalLM"
    state = llada.module.state_dict()
    renamed = {}
    for name, tensor in _file_tensors(hub_checkpoints["llada"]).items():
        for pattern, target in LLADA_KEY_MAPPING.items():
            if re.match(pattern, name):
                renamed[re.sub(pattern, target, name)] = tensor
                break
    assert set(renamed) == set(state)
    assert all(torch.equal(state[name], tensor) for name, tensor in renamed.items())


def test_llada_conventions_come_from_the_checkpoint(llada):
    assert (llada.mask_id, llada.shift_logits) == (LLADA_TINY_MASK_ID, False)
    assert llada.stop_ids == (LLADA_TINY_END_OF_TURN_ID, LLADA_TINY_EOS_ID)


def test_llada_logits_match_a_hand_written_published_block(llada, hub_checkpoints):
    """LLaDALlamaBlock as published: x += attn_out(sdpa(rope(q), rope(k), v)) of attn_norm(x), non-causal;
    x += ff_out(silu(ff_proj(h)) * up_proj(h)) with h = ff_norm(x); logits = ff_out(ln_f(x))."""
    import json

    config = json.loads((hub_checkpoints["llada"] / "config.json").read_text())
    w = _file_tensors(hub_checkpoints["llada"])
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
