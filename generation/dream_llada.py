"""The large masked diffusion models of the field, loaded into transformers' native classes.

- Dream (`Dream-org/Dream-v0-Instruct-7B`, `-Base-7B`): its weights are a Qwen2.5 decoder under the
  same parameter names, so they load into `Qwen2ForCausalLM` with a `Qwen2Config` rebuilt from Dream's
  config.json, then attention is made bidirectional. Mask `<|mask|>` (151666), logits shifted
  (the logit at i-1 predicts token i), Qwen's chat template, `<|im_end|>` / `<|endoftext|>` stop.
- LLaDA (`GSAI-ML/LLaDA-8B-Instruct`, `-Base`): an OLMo-style checkpoint (`model.transformer.blocks.N.
  q_proj ... ff_proj, up_proj, ff_out, attn_norm, ff_norm`, `wte`, `ln_f`, `ff_out`) whose blocks
  compute exactly a LLaMA layer; `from_pretrained(key_mapping=...)` renames the tensors onto
  `LlamaForCausalLM`. Mask 126336, no shift, `<|eot_id|>` (126348) and `<|endoftext|>` (126081) stop.

Neither family needs `trust_remote_code`: their published code does not run on transformers 5
(Dream issue #83, LLaDA issue #130); the native classes do, and get SDPA, device_map and bf16 for free.
Their config.json translations (Dream's is a Qwen2.5 config under the same keys; LLaDA's, OLMo keys, describes
blocks that compute exactly a LLaMA layer) live here too: memory.py counts parameters with them (families.py).
Left out: DiffusionGemma (diffusion_gemma.py: it runs its own loop), naming and caching (registry.py), whether
the weights fit (the registry asks memory.py first).
"""

from __future__ import annotations

import torch

from .checkpoints import as_list, load_tokenizer, read_config, short_name, token_id, unique_ids
from .models import DiffusionLM, ModelUnavailable, make_bidirectional, placement

DREAM_MODEL_TYPE = "Dream"  # config.json's model_type: Dream's checkpoints (families.py)
LLADA_MODEL_TYPE = "llada"

# Dream (Qwen2.5 tokenizer). The ids are read from the checkpoint; these are the published values.
DREAM_MASK_ID = 151666  # <|mask|>
DREAM_EOS_ID = 151643  # <|endoftext|>: Dream pads the answer canvas with it
DREAM_END_OF_TURN_TOKEN = "<|im_end|>"  # 151645
# LLaDA
LLADA_MASK_ID = 126336  # <|mdm_mask|>
LLADA_EOS_ID = 126081  # <|endoftext|>: LLaDA-Instruct pads the canvas with it
LLADA_END_OF_TURN_ID = 126348  # <|eot_id|>
LLADA_END_OF_TURN_TOKEN = "<|eot_id|>"


def dream_qwen2_config(dream: dict):
    """Dream's config.json (model_type "Dream") as the Qwen2Config it is: the same keys, minus Dream's own."""
    from transformers import Qwen2Config

    if dream.get("model_type") != DREAM_MODEL_TYPE:
        raise ModelUnavailable(f"not a Dream checkpoint: model_type is {dream.get('model_type')!r}")
    drop = {"model_type", "architectures", "auto_map", "mask_token_id", "transformers_version", "torch_dtype",
            "dtype", "_name_or_path"}
    config = Qwen2Config(**{k: v for k, v in dream.items() if k not in drop})
    config.use_cache = False  # every step re-reads the whole canvas
    return config


def load_dream(name_or_path: str, device: str, dtype: torch.dtype) -> DiffusionLM:
    """Dream-v0 (Instruct or Base) as a bidirectional native Qwen2ForCausalLM."""
    from transformers import Qwen2ForCausalLM

    dream = read_config(name_or_path)
    config = dream_qwen2_config(dream)
    tokenizer = load_tokenizer(name_or_path)
    module = _from_pretrained(Qwen2ForCausalLM, name_or_path, config, device, dtype)
    mask_id = token_id(tokenizer, tokenizer.mask_token, dream.get("mask_token_id", DREAM_MASK_ID))
    end_of_turn = tokenizer.convert_tokens_to_ids(DREAM_END_OF_TURN_TOKEN)
    stops = unique_ids([end_of_turn, *as_list(dream.get("eos_token_id", DREAM_EOS_ID))])
    return DiffusionLM(
        module=make_bidirectional(module), mask_id=mask_id, shift_logits=True, never_propose=(mask_id,),
        stop_ids=stops, context_length=config.max_position_embeddings, name=short_name(name_or_path),
        tokenizer=tokenizer,
    )


# LLaDA's OLMo-style names -> LlamaForCausalLM's. A LLaDALlamaBlock computes
# x += attn_out(attn(q_proj, k_proj, v_proj of attn_norm(x))); x += ff_out(act(ff_proj(h)) * up_proj(h)),
# h = ff_norm(x): a LLaMA layer with gate = ff_proj, up = up_proj, down = ff_out.
LLADA_KEY_MAPPING = {
    r"^model\.transformer\.wte\.": "model.embed_tokens.",
    r"^model\.transformer\.ln_f\.": "model.norm.",
    r"^model\.transformer\.ff_out\.": "lm_head.",
    r"^model\.transformer\.blocks\.(\d+)\.q_proj\.": r"model.layers.\1.self_attn.q_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.k_proj\.": r"model.layers.\1.self_attn.k_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.v_proj\.": r"model.layers.\1.self_attn.v_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_out\.": r"model.layers.\1.self_attn.o_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.": r"model.layers.\1.mlp.gate_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.up_proj\.": r"model.layers.\1.mlp.up_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_out\.": r"model.layers.\1.mlp.down_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.": r"model.layers.\1.input_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.": r"model.layers.\1.post_attention_layernorm.",
}


# LLaDA config values the LLaMA mapping relies on (anything else is refused with a clear message).
LLADA_REQUIRED = {
    "block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu", "rope": True, "alibi": False,
    "include_bias": False, "include_qkv_bias": False, "scale_logits": False, "input_emb_norm": False,
    "attention_layer_norm": False, "block_group_size": 1,
}


def llada_llama_config(llada: dict):
    """LLaDA's config.json (model_type "llada", OLMo keys) as a LlamaConfig."""
    from transformers import LlamaConfig

    if llada.get("model_type") != LLADA_MODEL_TYPE:
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


def load_llada(name_or_path: str, device: str, dtype: torch.dtype) -> DiffusionLM:
    """LLaDA-8B (Instruct or Base) as a bidirectional native LlamaForCausalLM."""
    from transformers import LlamaForCausalLM

    llada = read_config(name_or_path)
    config = llada_llama_config(llada)
    tokenizer = load_tokenizer(name_or_path)
    module = _from_pretrained(LlamaForCausalLM, name_or_path, config, device, dtype, key_mapping=LLADA_KEY_MAPPING)
    mask_id = llada.get("mask_token_id", LLADA_MASK_ID)
    end_of_turn = tokenizer.convert_tokens_to_ids(LLADA_END_OF_TURN_TOKEN)
    stops = unique_ids([end_of_turn, *as_list(llada.get("eos_token_id", LLADA_EOS_ID))])
    return DiffusionLM(
        module=make_bidirectional(module), mask_id=mask_id, shift_logits=False, never_propose=(mask_id,),
        stop_ids=stops, context_length=config.max_position_embeddings, name=short_name(name_or_path),
        tokenizer=tokenizer,
    )


def _from_pretrained(cls, name_or_path: str, config, device: str, dtype: torch.dtype, **kwargs):
    """Load weights into a native class (the registry has checked they fit: families.py)."""
    try:
        module = cls.from_pretrained(name_or_path, config=config, dtype=dtype, **placement(device), **kwargs)
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"could not load the weights of {name_or_path!r}: {error}") from error
    return module.eval()
