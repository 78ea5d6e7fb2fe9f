"""The large diffusion models of the field, loaded into transformers' native classes, plus presets.

- Dream (`Dream-org/Dream-v0-Instruct-7B`, `-Base-7B`): its weights are a Qwen2.5 decoder under the
  same parameter names, so they load into `Qwen2ForCausalLM` with a `Qwen2Config` rebuilt from Dream's
  config.json, then attention is made bidirectional. Mask `<|mask|>` (151666), logits shifted
  (the logit at i-1 predicts token i), Qwen's chat template, `<|im_end|>` / `<|endoftext|>` stop.
- LLaDA (`GSAI-ML/LLaDA-8B-Instruct`, `-Base`): an OLMo-style checkpoint (`model.transformer.blocks.N.
  q_proj ... ff_proj, up_proj, ff_out, attn_norm, ff_norm`, `wte`, `ln_f`, `ff_out`) whose blocks
  compute exactly a LLaMA layer; `from_pretrained(key_mapping=...)` renames the tensors onto
  `LlamaForCausalLM`. Mask 126336, no shift, `<|eot_id|>` (126348) and `<|endoftext|>` (126081) stop.
- DiffusionGemma: see `diffusion_gemma.py` (it runs its own denoising loop).

Neither family needs `trust_remote_code`: their published code does not run on transformers 5
(Dream issue #83, LLaDA issue #130); the native classes do, and get SDPA, device_map and bf16 for free.

Also here: presets pairing each diffusion model with its AR partner, and `can_run`, which says
before loading whether a model fits this machine (parameters x bytes per dtype + margin vs free
memory) and why not. Left out: quantisation, CPU offload (a model that does not fit is refused).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .models import DiffusionLM, ModelUnavailable, default_device_dtype, make_bidirectional

DREAM_INSTRUCT = "Dream-org/Dream-v0-Instruct-7B"
DREAM_BASE = "Dream-org/Dream-v0-Base-7B"
LLADA_INSTRUCT = "GSAI-ML/LLaDA-8B-Instruct"
LLADA_BASE = "GSAI-ML/LLaDA-8B-Base"
DIFFUSION_GEMMA = "google/diffusiongemma-26B-A4B-it"
QWEN25_7B_INSTRUCT = "Qwen/Qwen2.5-7B-Instruct"
LLAMA3_8B_INSTRUCT = "meta-llama/Meta-Llama-3-8B-Instruct"
GEMMA4_26B_INSTRUCT = "google/gemma-4-26B-A4B-it"
QWEN2_05B_INSTRUCT = "Qwen/Qwen2-0.5B-Instruct"

# Dream (Qwen2.5 tokenizer). The ids are read from the checkpoint; these are the published values.
DREAM_MASK_ID = 151666  # <|mask|>
DREAM_EOS_ID = 151643  # <|endoftext|>: Dream pads the answer canvas with it
DREAM_END_OF_TURN_TOKEN = "<|im_end|>"  # 151645
# LLaDA
LLADA_MASK_ID = 126336  # <|mdm_mask|>
LLADA_EOS_ID = 126081  # <|endoftext|>: LLaDA-Instruct pads the canvas with it
LLADA_END_OF_TURN_ID = 126348  # <|eot_id|>
LLADA_END_OF_TURN_TOKEN = "<|eot_id|>"

PROFILE_ENV = "UNMASK_PROFILE"  # "space": the large presets are the defaults (a GPU Space)
GPU_MEMORY_ENV = "UNMASK_GPU_MEMORY_GB"  # GPU memory to plan with where it cannot be measured (ZeroGPU)
ZERO_GPU_DEFAULT_GB = 70.0  # a ZeroGPU "large" slice (half an H200)
MEMORY_MARGIN = 0.15  # activations, the logits of a 512-token canvas, CUDA context, fragmentation
MEMORY_MARGIN_BYTES = 2 * 2**30

BYTES_PER_DTYPE = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}


# ---------------------------------------------------------------- checkpoint files


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


def placement(device: str) -> dict:
    """from_pretrained kwargs: on plain "cuda", accelerate's device_map="auto" spreads the layers over
    every visible GPU (all on one when it fits); an explicit device ("cuda:1", "cpu") is used as is."""
    return {"device_map": "auto"} if str(device) == "cuda" else {"device_map": str(device)}


# ---------------------------------------------------------------- Dream


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


def load_dream(name_or_path: str, device: str, dtype: torch.dtype) -> DiffusionLM:
    """Dream-v0 (Instruct or Base) as a bidirectional native Qwen2ForCausalLM."""
    from transformers import Qwen2ForCausalLM

    dream = read_config(name_or_path)
    config = dream_qwen2_config(dream)
    tokenizer = load_tokenizer(name_or_path)
    module = _from_pretrained(Qwen2ForCausalLM, name_or_path, config, device, dtype)
    mask_id = _token_id(tokenizer, tokenizer.mask_token, dream.get("mask_token_id", DREAM_MASK_ID))
    end_of_turn = tokenizer.convert_tokens_to_ids(DREAM_END_OF_TURN_TOKEN)
    stops = _unique([end_of_turn, *_as_list(dream.get("eos_token_id", DREAM_EOS_ID))])
    return DiffusionLM(
        module=make_bidirectional(module), mask_id=mask_id, shift_logits=True, never_propose=(mask_id,),
        stop_ids=stops, context_length=config.max_position_embeddings, name=_short_name(name_or_path),
        tokenizer=tokenizer,
    )


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


# ---------------------------------------------------------------- LLaDA

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


def load_llada(name_or_path: str, device: str, dtype: torch.dtype) -> DiffusionLM:
    """LLaDA-8B (Instruct or Base) as a bidirectional native LlamaForCausalLM."""
    from transformers import LlamaForCausalLM

    llada = read_config(name_or_path)
    config = llada_llama_config(llada)
    tokenizer = load_tokenizer(name_or_path)
    module = _from_pretrained(LlamaForCausalLM, name_or_path, config, device, dtype, key_mapping=LLADA_KEY_MAPPING)
    mask_id = llada.get("mask_token_id", LLADA_MASK_ID)
    end_of_turn = tokenizer.convert_tokens_to_ids(LLADA_END_OF_TURN_TOKEN)
    stops = _unique([end_of_turn, *_as_list(llada.get("eos_token_id", LLADA_EOS_ID))])
    return DiffusionLM(
        module=make_bidirectional(module), mask_id=mask_id, shift_logits=False, never_propose=(mask_id,),
        stop_ids=stops, context_length=config.max_position_embeddings, name=_short_name(name_or_path),
        tokenizer=tokenizer,
    )


# ---------------------------------------------------------------- shared loading


def _from_pretrained(cls, name_or_path: str, config, device: str, dtype: torch.dtype, **kwargs):
    """Load weights into a native class, refusing (with the numbers) a model that will not fit."""
    verdict = can_run(name_or_path, device, dtype, config=config)
    if not verdict.ok:
        raise ModelUnavailable(verdict.message)
    try:
        module = cls.from_pretrained(name_or_path, config=config, dtype=dtype, **placement(device), **kwargs)
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"could not load the weights of {name_or_path!r}: {error}") from error
    return module.eval()


def _token_id(tokenizer, token: str | None, fallback: int) -> int:
    if token is None:
        return fallback
    token_id = tokenizer.convert_tokens_to_ids(token)
    return token_id if token_id is not None else fallback


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _unique(ids) -> tuple[int, ...]:
    """_unique([5, None, 3, 5]) -> (5, 3): stop ids in order, without gaps or repeats."""
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, int)))


def _short_name(name_or_path: str) -> str:
    return os.path.basename(str(name_or_path).rstrip("/"))


# ---------------------------------------------------------------- which loader


FAMILY_LOADERS = {"Dream": load_dream, "llada": load_llada}  # by config.json model_type


def checkpoint_loader(name_or_path: str):
    """The family loader for a diffusion checkpoint not in the registry (by its config's model_type), or None."""
    try:
        config = read_json(name_or_path, "config.json")
    except ModelUnavailable:
        return None
    if not config:
        return None
    model_type = config.get("model_type")
    if model_type == "diffusion_gemma":
        from .diffusion_gemma import load_diffusion_gemma

        return lambda device, dtype: load_diffusion_gemma(name_or_path, device, dtype)
    loader = FAMILY_LOADERS.get(model_type)
    return (lambda device, dtype: loader(name_or_path, device, dtype)) if loader else None


def _diffusion_gemma(name: str):
    def load(device, dtype):
        from .diffusion_gemma import load_diffusion_gemma

        return load_diffusion_gemma(name, device, dtype)
    return load


HUB_REGISTRY = {
    DREAM_INSTRUCT: lambda device, dtype: load_dream(DREAM_INSTRUCT, device, dtype),
    DREAM_BASE: lambda device, dtype: load_dream(DREAM_BASE, device, dtype),
    LLADA_INSTRUCT: lambda device, dtype: load_llada(LLADA_INSTRUCT, device, dtype),
    LLADA_BASE: lambda device, dtype: load_llada(LLADA_BASE, device, dtype),
    DIFFUSION_GEMMA: _diffusion_gemma(DIFFUSION_GEMMA),
}


# ---------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    label: str  # what the picker shows
    diffusion: str  # a load_model name: registered name, hub id or local path
    autoregressive: str  # the AR model it was made from or is compared to
    large: bool  # needs a GPU (a Space or a workstation)
    why: str  # why this pairing


PRESETS = (
    Preset("Dream 7B vs Qwen2.5 7B", DREAM_INSTRUCT, QWEN25_7B_INSTRUCT, True,
           "Dream was initialised from Qwen2.5-7B: the same weights, taught to unmask"),
    Preset("LLaDA 8B vs Llama 3 8B", LLADA_INSTRUCT, LLAMA3_8B_INSTRUCT, True,
           "LLaDA-8B was trained from scratch and compared with LLaMA3-8B in its paper"),
    Preset("DiffusionGemma 26B-A4B vs Gemma 4 26B-A4B", DIFFUSION_GEMMA, GEMMA4_26B_INSTRUCT, True,
           "DiffusionGemma is Gemma 4 turned into a block diffusion model; tokens can change after acceptance"),
    Preset("SmolLM2 135M diffusion vs SmolLM2 135M", "smollm2-135m-diffusion", "smollm2-135m-instruct", False,
           "the embedded pair: runs offline on a laptop CPU"),
    Preset("SmolLM2 135M diffusion vs Qwen2 0.5B", "smollm2-135m-diffusion", QWEN2_05B_INSTRUCT, False,
           "a small AR model from the hub, for a CPU Space"),
)

DIFFUSION_CHOICES = tuple(dict.fromkeys((*(p.diffusion for p in PRESETS), DREAM_BASE, LLADA_BASE)))
AR_CHOICES = tuple(dict.fromkeys(p.autoregressive for p in PRESETS))

# Parameter counts from the model cards, for the memory check when the config cannot be read here.
KNOWN_PARAMETERS = {
    DREAM_INSTRUCT: 7.62e9, DREAM_BASE: 7.62e9, LLADA_INSTRUCT: 8.02e9, LLADA_BASE: 8.02e9,
    DIFFUSION_GEMMA: 25.8e9, QWEN25_7B_INSTRUCT: 7.62e9, LLAMA3_8B_INSTRUCT: 8.03e9,
    GEMMA4_26B_INSTRUCT: 25.8e9, QWEN2_05B_INSTRUCT: 0.49e9,
    "smollm2-135m-diffusion": 0.135e9, "smollm2-135m-instruct": 0.135e9,
}


def profile() -> str:
    """"space" (large presets first) when UNMASK_PROFILE=space, else "local"."""
    return "space" if os.environ.get(PROFILE_ENV, "").strip().lower() == "space" else "local"


def presets() -> list[Preset]:
    """The presets in picker order: large ones first on a Space profile, the embedded pair first locally."""
    return sorted(PRESETS, key=lambda p: p.large != (profile() == "space"))


def default_preset() -> Preset:
    return presets()[0]


# ---------------------------------------------------------------- will it fit?


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str  # one sentence for the UI: what it needs, what there is, what to do
    need_bytes: int | None
    free_bytes: int | None
    device: str


def parameter_count(name_or_path: str, config=None) -> int | None:
    """Exact count from the config (model built on the meta device), else the model card's, else None."""
    if config is None:
        config = _native_config(name_or_path)
    if config is not None:
        from transformers import AutoModelForCausalLM

        try:
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config) if not _is_block_diffusion(config) \
                    else _block_diffusion_class()(config)
            return sum(p.numel() for p in model.parameters())
        except (ValueError, KeyError, TypeError):
            pass
    count = KNOWN_PARAMETERS.get(name_or_path)
    return int(count) if count else None


def _native_config(name_or_path: str):
    """The transformers config the loader would use, read without downloading weights (None if unreadable)."""
    try:
        raw = read_json(name_or_path, "config.json", cache_only=True)
    except ModelUnavailable:
        return None
    if not raw:
        return None
    if raw.get("model_type") == "Dream":
        return dream_qwen2_config(raw)
    if raw.get("model_type") == "llada":
        return llada_llama_config(raw)
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(raw.pop("model_type", None), **raw)
    except (ValueError, KeyError, TypeError):
        return None


def _is_block_diffusion(config) -> bool:
    return getattr(config, "model_type", "") == "diffusion_gemma"


def _block_diffusion_class():
    from transformers import DiffusionGemmaForBlockDiffusion

    return DiffusionGemmaForBlockDiffusion


def free_memory(device: str) -> int:
    """Bytes free for weights on `device`: all visible GPUs together for "cuda" (device_map="auto"),
    UNMASK_GPU_MEMORY_GB where set (ZeroGPU, where nothing can be measured before the GPU is attached),
    MemAvailable for the CPU."""
    device = str(device)
    if device.startswith("cuda"):
        if os.environ.get(GPU_MEMORY_ENV):
            return int(float(os.environ[GPU_MEMORY_ENV]) * 2**30)
        if os.environ.get("SPACES_ZERO_GPU"):
            return int(ZERO_GPU_DEFAULT_GB * 2**30)
        indices = range(torch.cuda.device_count()) if device == "cuda" else [torch.device(device).index or 0]
        return sum(torch.cuda.mem_get_info(i)[0] for i in indices)
    return _available_cpu_memory()


def _available_cpu_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def needed_memory(parameters: int, dtype: torch.dtype) -> int:
    """needed_memory(7.6e9, bf16) ~ 17.5 GiB: weights x (1 + margin) + a fixed 2 GiB."""
    return int(parameters * BYTES_PER_DTYPE.get(dtype, 4) * (1 + MEMORY_MARGIN) + MEMORY_MARGIN_BYTES)


def can_run(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None, *,
            config=None, alongside: tuple[str, ...] = ()) -> Verdict:
    """Whether `name_or_path` (plus the models `alongside`, e.g. the AR partner) fits in free memory now."""
    device, dtype = default_device_dtype(device, dtype)
    where = "GPU memory" if str(device).startswith("cuda") else "RAM"
    counts = {name_or_path: parameter_count(name_or_path, config)}
    counts.update({other: parameter_count(other) for other in alongside})
    unknown = [name for name, count in counts.items() if count is None]
    if unknown:
        return Verdict(True, f"size of {', '.join(unknown)} unknown here; trying to load", None, None, str(device))
    need = sum(needed_memory(count, dtype) for count in counts.values())
    free = free_memory(device)
    sizes = " + ".join(f"{_short_name(n)} {c / 1e9:.1f}B params" for n, c in counts.items())
    if need <= free:
        return Verdict(True, f"fits: {sizes} need ~{_gib(need)} of {_gib(free)} free {where}", need, free, str(device))
    hint = ("use a GPU with more memory, or pick a smaller preset" if where == "GPU memory"
            else "it needs a GPU (bf16) or more RAM; pick the embedded SmolLM2 pair here")
    return Verdict(False, f"{sizes} in {_dtype_name(dtype)} need ~{_gib(need)} but only {_gib(free)} of {where} is "
                          f"free on {device}: {hint}", need, free, str(device))


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _dtype_name(dtype: torch.dtype) -> str:
    return re.sub(r"^torch\.", "", str(dtype))
