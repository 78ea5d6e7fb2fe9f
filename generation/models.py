"""What a model is to the samplers: the `DiffusionLM` and `CausalLM` wrappers, and the small helpers
every loader shares (chat templates, bidirectional attention, placement).

- `DiffusionLM`: a mask predictor, its mask id, whether its logits are shifted (Dream-style: the
  logit at i-1 predicts token i), the ids it must never propose, its stop ids, and its attention:
  bidirectional (`block_size=None`) or block-causal with the block size it was trained on
  (`block_causal_diffusion_lm`). A subclass may declare `runs_own_loop = True` (see protocols.py):
  DiffusionGemma does.
- `CausalLM`: an autoregressive model for the AR panel.
Both carry their tokenizer and apply chat templates the model's own way (`prompt_ids`).

Left out: loading. The loaders (smollm2.py, dream_llada.py, diffusion_gemma.py) build these
wrappers; registry.py names them and caches what they load; dtypes.py decides the device and dtype.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, DynamicCache
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from .bigrams import Bigrams


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
    bigrams: Bigrams | None = None  # pair counts of the training answers, for speculative drafts (bigrams.py)
    # A block-causal model's causal path, sampled as an AR model (speculative.py, verified.py), has its logits
    # divided by this first: a distilled path is sharper than its teacher, this undoes it (training/calibrate.py)
    causal_temperature: float = 1.0
    runs_own_loop: ClassVar[bool] = False  # True: the model runs its own denoising loop (protocols.RunsOwnLoop)
    _never: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Cached forwards carry a 4D mask: on CPU they run grouped-query attention under it (sdpa_shared_mask)."""
        config = getattr(self.module, "config", None)
        if getattr(config, "_attn_implementation", None) == "sdpa":
            self.module.set_attn_implementation(SDPA_SHARED_MASK)

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
                               past_key_values=cache, use_cache=cache is not None,
                               attention_mask=None if attention_mask is None else self.additive_mask(attention_mask),
                               logits_to_keep=rows).logits.float()
        if not self.full_projection and _accepts_logits_to_keep(type(self.module)):
            return self.module(x, logits_to_keep=source).logits.float()
        return self.module(x).logits[:, source].float()

    def additive_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A bool mask (True = may attend) as the float mask attention adds to its scores, in the model's dtype and on
        its device: built once per forward, it spares torch's CPU attention converting a bool mask in every layer (the
        same hidden states, a slightly shorter cached forward; `python -m bench.speed` times the answers)."""
        dtype = next(self.module.parameters()).dtype
        return torch.zeros(mask.shape, dtype=dtype, device=self.device).masked_fill_(~mask.to(self.device),
                                                                                   torch.finfo(dtype).min)

    @property
    def takes_kv_cache(self) -> bool:
        """A transformers decoder: takes position ids, a KV cache and a 4D mask (the cache modes need them)."""
        return _accepts_kv_cache(type(self.module))

    def suppress(self, logits: torch.Tensor) -> torch.Tensor:
        """Set the never-propose ids to -inf, in place, so no proposal can be one of them (the sampler
        hands over logits it owns: a fresh float32 copy of the forward's output)."""
        if not self.never_propose:
            return logits
        if self._never is None or self._never.device != logits.device:
            self._never = torch.tensor(self.never_propose, device=logits.device)
        return logits.index_fill_(-1, self._never, float("-inf"))

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return chat_prompt_ids(self.tokenizer, messages)

    def hidden_states(self, ids: torch.Tensor, positions: torch.Tensor, cache: DynamicCache,
                      mask: torch.Tensor) -> torch.Tensor:
        """The last hidden states (Q, H) of the input rows `ids` (1, Q) at absolute `positions` (Q,), over the keys
        and values in `cache` (which this forward extends), under `mask` ((Q, K) bool, True = may attend).
        With `project`, a forward for a decoder that picks which rows to read out (speculative.py)."""
        return self.module.get_decoder()(
            ids, position_ids=positions[None].to(self.device), past_key_values=cache,
            attention_mask=self.additive_mask(mask[None, None]), use_cache=True).last_hidden_state[0]

    def project(self, hidden: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Float32 logits (R, V) of the chosen rows of `hidden`, never-propose ids suppressed: the vocabulary
        projection runs only where a prediction may be used (one read of the vocabulary matrix)."""
        return self.suppress(self.module.get_output_embeddings()(hidden[rows]).float())

    @staticmethod
    def keep_cache_branch(cache: DynamicCache, start: int, entries: list[int]) -> None:
        """Cut `cache` to its first `start` entries followed by `entries` (increasing, each >= start + its index):
        the keys and values of a kept branch move next to what precedes it."""
        for i, entry in enumerate(entries):
            if entry != start + i:
                for layer in cache.layers:
                    layer.keys[:, :, start + i] = layer.keys[:, :, entry]
                    layer.values[:, :, start + i] = layer.values[:, :, entry]
        crop_cache(cache, start + len(entries))


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


def new_cache(model: DiffusionLM) -> DynamicCache:
    return DynamicCache(config=model.module.config)


def crop_cache(kv: DynamicCache | None, keep: int) -> None:
    """Cut the cache back to its first `keep` positions (transformers 5 crops by a negative count)."""
    if kv is not None and kv.get_seq_length() > keep:
        kv.crop(keep - kv.get_seq_length())


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
    if attention not in ("sdpa", SDPA_SHARED_MASK, "eager"):
        raise ValueError(f"block-causal decoding needs a 4D attention mask; {attention!r} ignores it, use sdpa or eager")
    return DiffusionLM(module=module, mask_id=mask_id, shift_logits=shift_logits, block_size=block_size, **fields)


SDPA_SHARED_MASK = "sdpa_shared_mask"  # transformers' sdpa, grouped-query attention under a mask on CPU


def sdpa_shared_mask(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' sdpa attention, except under a mask on CPU, where torch's kernel runs grouped-query attention.

    Given a mask, transformers' sdpa copies every key/value head `num_key_value_groups` times first (`repeat_kv`:
    its CUDA kernels cannot take a mask and `enable_gqa` together), and the samplers' cached forwards always carry
    a mask (one for all heads). On CPU torch's kernel takes both, with the same result, without the copies of
    the whole cache, which a cached forward otherwise pays every layer (`python -m bench.speed` times the answers)."""
    if attention_mask is None or query.device.type != "cpu" or getattr(module, "num_key_value_groups", 1) == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    output = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                            scale=scaling, enable_gqa=True)
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(SDPA_SHARED_MASK, sdpa_shared_mask)
ALL_MASK_ATTENTION_FUNCTIONS.register(SDPA_SHARED_MASK, sdpa_mask)


def make_bidirectional(module: torch.nn.Module) -> torch.nn.Module:
    """Switch a transformers decoder to full attention: the mask and the SDPA flag both."""
    module.config.is_causal = False
    for sub in module.modules():
        if hasattr(sub, "is_causal"):
            sub.is_causal = False
    return module


def placement(device: str) -> dict:
    """from_pretrained kwargs: on plain "cuda", accelerate's device_map="auto" spreads the layers over
    every visible GPU (all on one when it fits); an explicit device ("cuda:1", "cpu") is used as is."""
    return {"device_map": "auto"} if str(device) == "cuda" else {"device_map": str(device)}


@lru_cache(maxsize=None)
def _accepts_logits_to_keep(module_type: type) -> bool:
    """transformers causal LMs take `logits_to_keep` (ids of the rows to project); plain modules do not."""
    return "logits_to_keep" in inspect.signature(module_type.forward).parameters


@lru_cache(maxsize=None)
def _accepts_kv_cache(module_type: type) -> bool:
    parameters = inspect.signature(module_type.forward).parameters
    return all(name in parameters for name in ("past_key_values", "position_ids", "attention_mask", "logits_to_keep"))
