"""Tiny random checkpoints in the published on-disk formats of Dream, LLaDA and DiffusionGemma.

Each writer lays out a directory the way the hub repository does: config.json with the family's
own keys (model_type "Dream" / "llada", OLMo-style LLaDA keys), safetensors shards under the
published parameter names with an index, the tokenizer files and a chat template in the family's
style. Weights are random tensors made by name and shape here, not by our loaders' native classes,
so loading them is a real test of the name and config mapping. Token ids are small (a byte-level
vocabulary of 256 plus the family's special tokens): the loaders must read them from the files.

Used by tests/test_dream_llada.py, tests/test_diffusion_gemma.py (through conftest) and bench/reference_logits.py (the comparison with the published
modeling code).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

BYTES = 256  # byte-level vocabulary: one token per byte, no merges


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (the alphabet of byte-level BPE vocabularies)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _byte_level_tokenizer(specials: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: b for b, char in bytes_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(specials)  # ids 256, 257, ... in order
    return tokenizer, vocab


def _added_tokens(specials: list[str]) -> dict:
    return {str(BYTES + i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                             "single_word": False, "special": True} for i, t in enumerate(specials)}


def _save_sharded(tensors: dict[str, torch.Tensor], directory: Path, shards: int = 2) -> None:
    """model-0000i-of-0000n.safetensors plus model.safetensors.index.json, as the hub repos have."""
    names = sorted(tensors)
    per = -(-len(names) // shards)
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        chunk = {n: tensors[n].contiguous() for n in names[s * per:(s + 1) * per]}
        save_file(chunk, str(directory / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(chunk, file))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


def _norm(size: int, generator: torch.Generator) -> torch.Tensor:
    return 1 + 0.1 * torch.randn(size, generator=generator)  # not all ones: a swapped norm must show


def _linear(out_features: int, in_features: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(out_features, in_features, generator=generator) / in_features ** 0.5


# ---------------------------------------------------------------- Dream

DREAM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"]
DREAM_TINY_MASK_ID = BYTES + 3
DREAM_TINY_EOS_ID = BYTES
DREAM_TINY_END_OF_TURN_ID = BYTES + 2
DREAM_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_dream(directory: Path, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4,
                kv_heads: int = 2, intermediate: int = 64) -> Path:
    """A tiny Dream-v0 checkpoint: DreamModel config.json, Qwen2-named shards, a DreamTokenizer config."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = BYTES + len(DREAM_SPECIALS) + 4  # padded like Qwen's 152064 > tokenizer size
    config = {
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        "bos_token_id": DREAM_TINY_EOS_ID, "eos_token_id": DREAM_TINY_EOS_ID, "pad_token_id": DREAM_TINY_EOS_ID,
        "mask_token_id": DREAM_TINY_MASK_ID,
        "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": intermediate,
        "max_position_embeddings": 512, "max_window_layers": layers, "model_type": "Dream",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.46.2",
        "use_cache": False, "use_sliding_window": False, "vocab_size": vocab,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    g = torch.Generator().manual_seed(seed)
    head_dim = hidden // heads
    tensors = {"model.embed_tokens.weight": torch.randn(vocab, hidden, generator=g),
               "model.norm.weight": _norm(hidden, g), "lm_head.weight": _linear(vocab, hidden, g)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name, out in (("q_proj", heads * head_dim), ("k_proj", kv_heads * head_dim), ("v_proj", kv_heads * head_dim)):
            tensors[p + f"self_attn.{name}.weight"] = _linear(out, hidden, g)
            tensors[p + f"self_attn.{name}.bias"] = 0.1 * torch.randn(out, generator=g)
        tensors[p + "self_attn.o_proj.weight"] = _linear(hidden, heads * head_dim, g)
        tensors[p + "mlp.gate_proj.weight"] = _linear(intermediate, hidden, g)
        tensors[p + "mlp.up_proj.weight"] = _linear(intermediate, hidden, g)
        tensors[p + "mlp.down_proj.weight"] = _linear(hidden, intermediate, g)
        tensors[p + "input_layernorm.weight"] = _norm(hidden, g)
        tensors[p + "post_attention_layernorm.weight"] = _norm(hidden, g)
    _save_sharded(tensors, directory)
    # Dream ships vocab.json + merges.txt and a remote-code DreamTokenizer (a copy of Qwen2's).
    _, byte_vocab = _byte_level_tokenizer(DREAM_SPECIALS)
    (directory / "vocab.json").write_text(json.dumps(byte_vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": _added_tokens(DREAM_SPECIALS),
        "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
        "tokenizer_class": "DreamTokenizer", "bos_token": None, "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "mask_token": "<|mask|>", "errors": "replace",
        "model_max_length": 131072, "chat_template": DREAM_CHAT_TEMPLATE, "split_special_tokens": False,
    }, indent=2))
    (directory / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": DREAM_TINY_EOS_ID, "eos_token_id": DREAM_TINY_EOS_ID, "pad_token_id": DREAM_TINY_EOS_ID,
         "mask_token_id": DREAM_TINY_MASK_ID}))
    return directory


# ---------------------------------------------------------------- LLaDA

LLADA_SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eot_id|>"]
LLADA_TINY_EOS_ID = BYTES + 1
LLADA_TINY_MASK_ID = BYTES + 2
LLADA_TINY_END_OF_TURN_ID = BYTES + 5
LLADA_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def write_llada(directory: Path, seed: int = 0, d_model: int = 32, layers: int = 2, heads: int = 4,
                kv_heads: int = 2, mlp_hidden: int = 64) -> Path:
    """A tiny LLaDA-8B-style checkpoint: OLMo config keys and `model.transformer.*` tensor names."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = BYTES + len(LLADA_SPECIALS) + 2
    config = {
        "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
        "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig",
                     "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM", "AutoModel": "modeling_llada.LLaDAModelLM"},
        "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": d_model,
        "embedding_dropout": 0.0, "embedding_size": vocab, "eos_token_id": LLADA_TINY_EOS_ID,
        "flash_attention": False, "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None,
        "init_device": "meta", "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False,
        "layer_norm_type": "rms", "layer_norm_with_affine": True, "mask_token_id": LLADA_TINY_MASK_ID,
        "max_sequence_length": 512, "mlp_hidden_size": mlp_hidden, "mlp_ratio": 4, "model_type": "llada",
        "multi_query_attention": None, "n_heads": heads, "n_kv_heads": kv_heads, "n_layers": layers,
        "pad_token_id": LLADA_TINY_EOS_ID, "precision": "amp_bf16", "residual_dropout": 0.0, "rms_norm_eps": 1e-05,
        "rope": True, "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False,
        "transformers_version": "4.46.3", "use_cache": False, "vocab_size": vocab, "weight_tying": False,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    g = torch.Generator().manual_seed(seed)
    head_dim = d_model // heads
    t = "model.transformer."
    tensors = {t + "wte.weight": torch.randn(vocab, d_model, generator=g), t + "ln_f.weight": _norm(d_model, g),
               t + "ff_out.weight": _linear(vocab, d_model, g)}
    for i in range(layers):
        p = f"{t}blocks.{i}."
        tensors[p + "q_proj.weight"] = _linear(d_model, d_model, g)
        tensors[p + "k_proj.weight"] = _linear(kv_heads * head_dim, d_model, g)
        tensors[p + "v_proj.weight"] = _linear(kv_heads * head_dim, d_model, g)
        tensors[p + "attn_out.weight"] = _linear(d_model, d_model, g)
        tensors[p + "ff_proj.weight"] = _linear(mlp_hidden, d_model, g)
        tensors[p + "up_proj.weight"] = _linear(mlp_hidden, d_model, g)
        tensors[p + "ff_out.weight"] = _linear(d_model, mlp_hidden, g)
        tensors[p + "attn_norm.weight"] = _norm(d_model, g)
        tensors[p + "ff_norm.weight"] = _norm(d_model, g)
    _save_sharded(tensors, directory)
    tokenizer, _ = _byte_level_tokenizer(LLADA_SPECIALS)
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": _added_tokens(LLADA_SPECIALS), "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "chat_template": LLADA_CHAT_TEMPLATE, "model_max_length": 1000000000000000019884624838656,
    }, indent=2))
    return directory


# ---------------------------------------------------------------- DiffusionGemma

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
GEMMA_TINY_PAD_ID, GEMMA_TINY_EOS_ID, GEMMA_TINY_BOS_ID, GEMMA_TINY_MASK_ID = BYTES, BYTES + 1, BYTES + 2, BYTES + 3
GEMMA_TINY_END_OF_TURN_ID = BYTES + 5
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' "
    "else message['role'] }}\n{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def tiny_diffusion_gemma_config(canvas_length: int = 8):
    """A DiffusionGemma config small enough for CPU tests (2 layers, 4 experts, canvas of 8)."""
    from transformers import DiffusionGemmaConfig

    vocab = BYTES + len(GEMMA_SPECIALS) + 2
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, head_dim=16, global_head_dim=16, sliding_window=16,
                max_position_embeddings=512, num_experts=4, top_k_experts=2, moe_intermediate_size=32,
                layer_types=["sliding_attention", "full_attention"], pad_token_id=GEMMA_TINY_PAD_ID,
                eos_token_id=GEMMA_TINY_EOS_ID, bos_token_id=GEMMA_TINY_BOS_ID)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length)


def write_diffusion_gemma(directory: Path, seed: int = 0, canvas_length: int = 8) -> Path:
    """A tiny DiffusionGemma checkpoint as save_pretrained writes it (the native format), plus a tokenizer."""
    from transformers import DiffusionGemmaForBlockDiffusion, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = DiffusionGemmaForBlockDiffusion(tiny_diffusion_gemma_config(canvas_length)).eval()
    model.generation_config.eos_token_id = [GEMMA_TINY_EOS_ID, GEMMA_TINY_END_OF_TURN_ID]
    model.save_pretrained(directory)
    tokenizer, _ = _byte_level_tokenizer(GEMMA_SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>",
                                   bos_token="<bos>", mask_token="<mask>")
    fast.chat_template = GEMMA_CHAT_TEMPLATE
    fast.save_pretrained(directory)
    return directory
