"""What one step of the unmasking loop computes, per KV cache mode: the positions it feeds, the cache entries
still exact afterwards, and the attention mask (`StepInputs`, one small plan per (cache mode, block-causal?) in
`STEP_INPUTS`). The loop (unmasking.py) is the same for every plan.

- bidirectional models, Fast-dLLM v1 (arXiv 2505.22618): `prefix` and `dual` refill the cache with one
  whole-sequence forward at each block's first step, then recompute only the block (and, for `prefix`, the
  suffix). Approximate: the kept states would change a little if recomputed.
- block-causal models (`DiffusionLM.block_size`; BD3-LM arXiv 2503.09573, Fast-dLLM v2 arXiv 2509.26328):
  every forward runs under the block-causal 4D mask (`block_causal_mask`); `none` runs prompt + finished
  blocks + the current block each step, `prefix` keeps the exact causal KV of prompt + finished blocks and
  runs only the current block.
With logit shift the position left of the block predicts the block's first token, so it is fed with the
block in every cached step (one extra position, never a stale logit). Left out: running the forward (the loop
does), Fast-dLLM v2's sub-block cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# ---- what a step computes: (canvas, block start, block end, first step of the block?, cached
#      positions) -> StepInputs. One plan per (cache mode, block-causal?).


@dataclass(frozen=True)
class Canvas:
    """The sequence a run fills: its length, the logit shift and the device (what every plan needs)."""

    length: int  # prompt + answer canvas
    shift: int  # 1 when the logit at i-1 predicts token i
    device: torch.device


@dataclass(frozen=True)
class StepInputs:
    positions: torch.Tensor | None  # (Q,) absolute positions fed, in input order; None = all, no cache
    keep: int = 0  # cache entries still exact after the forward (the rest were computed over masks)
    fresh: bool = False  # empty the cache first: a bidirectional cache is refilled at every block
    mask: torch.Tensor | None = None  # (1, 1, Q, K) bool, True = may attend; None = the module's own

    def computed(self, layout: Canvas) -> int:
        return layout.length if self.positions is None else len(self.positions)


def _whole_sequence(layout: Canvas, start: int, end: int, first: bool, cached: int) -> StepInputs:
    return StepInputs(None)


def _prefix_cache(layout: Canvas, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Fast-dLLM prefix cache: keep the KV left of the block (and of the shifted row predicting its first token)."""
    left = start - layout.shift
    return StepInputs(_range(0 if first else left, layout.length, layout), keep=left, fresh=first)


def _dual_cache(layout: Canvas, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Fast-dLLM dual cache: keep prefix and suffix KV, recompute only the block.

    The refilling forward feeds the block last: bidirectional attention is order-free given the
    position ids, and with the block at the end `crop` drops it and keeps prefix + suffix."""
    left = start - layout.shift
    window = _range(left, end, layout)
    kept = torch.cat([_range(0, left, layout), _range(end, layout.length, layout)])
    return StepInputs(torch.cat([kept, window]) if first else window, keep=len(kept), fresh=first)


def _block_causal_uncached(layout: Canvas, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Prompt + finished blocks + the current block, under the block-causal mask (nothing sees later blocks)."""
    positions = _range(0, end, layout)
    return StepInputs(positions, mask=block_causal_mask(positions, start, end))


def _block_causal_cache(layout: Canvas, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Exact: the cache holds the causal KV of clean positions; feed what follows it up to the block's end.

    At a block's first step that is the finished block (clean, causal: its KV is filled here) plus
    the new block; afterwards only the block (and, with shift, the position left of it)."""
    positions = _range(cached, end, layout)
    return StepInputs(positions, keep=start - layout.shift, mask=block_causal_mask(positions, start, end))


def block_causal_mask(queries: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """(1, 1, Q, end) bool: a query left of the block [start, end) sees causally, one inside sees all of [0, end).

    block_causal_mask(torch.arange(4), 2, 4)[0, 0].int() -> [[1,0,0,0], [1,1,0,0], [1,1,1,1], [1,1,1,1]]
    """
    q = queries[:, None]
    k = torch.arange(end, device=queries.device)[None, :]
    return torch.where(q < start, k <= q, k < end)[None, None]


def _range(low: int, high: int, layout: Canvas) -> torch.Tensor:
    return torch.arange(low, high, device=layout.device)


STEP_INPUTS = {  # (cache mode, block-causal?) -> plan
    ("none", False): _whole_sequence,
    ("prefix", False): _prefix_cache,
    ("dual", False): _dual_cache,
    ("none", True): _block_causal_uncached,
    ("prefix", True): _block_causal_cache,
}
