"""Self-speculative decoding for block-causal diffusion models: draft a block by diffusion, verify it
with the same weights' causal path, and pre-draft the next block for every outcome in the same forward.

A block-causal model (training/block.py) is two models in one set of weights: its clean positions
attend causally (an autoregressive LM), its masked block attends to them and to itself (a diffusion
LM that fills k tokens at once). Speculative sampling (Leviathan et al., arXiv 2211.17192; Chen et al.,
arXiv 2302.01318) lets the fast one propose and the exact one decide, so the answer is distributed
exactly as the causal path's own left-to-right samples while several tokens are committed per forward.
TiDAR (Liu et al., "Think in Diffusion, Talk in Autoregression", arXiv 2511.08923) does both in one
forward; this module follows its layout:

    cache | t0 d1 .. d(k-1) | [M x k] after t0 | [M x k] after d1 | ... | [M x k] after d(k-1)
            causal            each block sees the clean tokens up to its anchor, and itself

`t0` is committed, `d1..` are the drafts to verify. The causal rows give p(. | prefix) at every draft.
Each draft d was drawn from the diffusion head's distribution q at its position, tempered like p (its
argmax at temperature 0); drafts are accepted left to right, d with probability min(1, p(d) / q(d)), and
the first rejected one is replaced by a draw from the residual max(p - q, 0); if all pass, the last causal
row draws the next token. Either way the committed run ends in one token drawn
from p, and the mask block anchored just before it has already drafted the k - 1 tokens after it (with
Dream's token shift the block's first token is the anchor's own causal prediction, the one just drawn).
So every forward commits 1..k tokens and yields the next drafts; no forward is spent on drafting alone.
At temperature 0 the answer is the causal path's greedy decode, token for token.

Each forward is one step of the History: the committed tokens, each scored by p under the causal path.
Left out: TiDAR's training (it trains its model for this layout; ours is the BD3-LM one of training/block.py),
infilling (a given token would need the verifier to skip it), classifier-free guidance.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import torch
from .config import DiffusionConfig
from .history import DIFFUSION, History
from .models import DiffusionLM
from .sampling import crop_cache, draw, new_cache, tempered


@torch.no_grad()
def stream_speculative(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
                       stop: threading.Event | None = None) -> Iterator[History]:
    """Run self-speculative decoding over a canvas of `config.gen_length` masks, drafts of up to
    `config.block` tokens, yielding the (same, growing) History after every forward. Expects a
    block-causal model with Dream's shift and a validated config (generation/sampler.py checks both)."""
    device = model.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    prompt_len, end = len(prompt_ids), len(prompt_ids) + config.gen_length
    history = History(kind=DIFFUSION, prompt_ids=list(prompt_ids), initial=[model.mask_id] * config.gen_length,
                      mask_id=model.mask_id, stop_ids=list(model.stop_ids), planned_steps=None,
                      settings=config.to_dict(), model=model.name)
    kv = new_cache(model)
    feed = list(prompt_ids)  # clean tokens not in the cache yet: ..., t0 (committed), then the drafts
    drafts: list[int] = []
    proposals = torch.empty(0)  # (len(drafts), V): the distribution each draft was drawn from; empty at temperature 0
    forward_passes = 0
    while True:
        if stop is not None and stop.is_set():
            history.stopped = True
            return
        began = time.perf_counter()
        cached = kv.get_seq_length()
        anchor = cached + len(feed) - len(drafts) - 1  # absolute position of t0
        layout = Layout(cached, len(feed), len(drafts) + 1, config.block, end)
        ids = torch.tensor([feed + [model.mask_id] * (len(layout.positions) - len(feed))], device=device)
        hidden = model.module.get_decoder()(
            ids, position_ids=layout.positions[None].to(device), past_key_values=kv,
            attention_mask=layout.mask[None, None].to(device), use_cache=True).last_hidden_state[0]
        forward_passes += 1
        logits = row_logits(model, hidden, layout.causal_rows + layout.draft_rows)  # one read of the vocabulary matrix
        causal, drafting = logits[:len(layout.causal_rows)], logits[len(layout.causal_rows):]
        tokens, scores, accepted = _verify(causal, drafts, proposals, end - 1 - anchor, config, generator)
        crop_cache(kv, anchor + accepted + 1)  # the causal KV through the last accepted draft
        tokens, scores = _until_stop(tokens, scores, model.stop_ids)
        first = anchor + 1 - prompt_len  # answer position of the first committed token
        history.record(positions=list(range(first, first + len(tokens))), tokens=tokens, scores=scores,
                       seconds=time.perf_counter() - began, forward_passes=forward_passes,
                       computed_positions=len(layout.positions), uncached_positions=cached + len(layout.positions))
        yield history
        last = anchor + len(tokens)  # absolute position of the last committed token
        if last == end - 1 or tokens[-1] in model.stop_ids:
            return
        drafts, proposals = _propose(drafting[layout.drafts_of[accepted]], config, generator)  # the block after it
        feed = [tokens[-1]] + drafts


def row_logits(model: DiffusionLM, hidden: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Float32 logits (R, V) of the given input rows, never-propose ids suppressed: the vocabulary
    projection runs only where a prediction may be used (the causal rows and the blocks' drafting rows)."""
    return model.suppress(model.module.get_output_embeddings()(hidden[rows]).float())


class Layout:
    """One forward's inputs after `cached` cache entries: `fed` clean tokens, the last `k` of them t0 and the
    drafts, then one mask block right of each of those k anchors, `block` positions long, cut at the canvas `end`.

    positions: (Q,) absolute positions in input order; mask: (Q, cached + Q) bool, True = may attend;
    causal_rows: the input rows of t0 and the drafts; block_rows[j]: the input rows of the block anchored
    at the j-th of them, but its last (whose prediction falls past the block); draft_rows: all of those,
    in order, and drafts_of[j] the slice of draft_rows that is block_rows[j].

    Layout(0, 3, 2, 2, 9).positions -> [0, 1, 2, 2, 3, 3, 4]: fed 0 1 2 (t0 = 1, draft 2), blocks at 2-3 and 3-4."""

    def __init__(self, cached: int, fed: int, k: int, block: int, end: int) -> None:
        anchor = cached + fed - k  # absolute position of t0
        positions = list(range(cached, cached + fed))
        blocks = []  # (input row of the block's first mask, its length)
        for j in range(k):
            length = min(block, end - 1 - (anchor + j))
            if length > 0:
                blocks.append((len(positions), length))
                positions += range(anchor + j + 1, anchor + j + 1 + length)
        q = len(positions)
        mask = torch.zeros(q, cached + q, dtype=torch.bool)
        mask[:, :cached] = True
        mask[:fed, cached:cached + fed] = torch.ones(fed, fed, dtype=torch.bool).tril()
        for j, (row, length) in enumerate(blocks):
            mask[row:row + length, cached:cached + fed - k + j + 1] = True  # the clean tokens through its anchor
            mask[row:row + length, cached + row:cached + row + length] = True  # and itself
        self.positions, self.mask = torch.tensor(positions), mask
        self.causal_rows = list(range(fed - k, fed))
        self.block_rows = [list(range(row, row + length - 1)) for row, length in blocks]
        self.draft_rows = [row for rows in self.block_rows for row in rows]
        starts = [0] + list(itertools.accumulate(len(rows) for rows in self.block_rows))
        self.drafts_of = [slice(a, b) for a, b in zip(starts, starts[1:])]


def _propose(logits: torch.Tensor, config: DiffusionConfig, generator: torch.Generator) -> tuple[list[int], torch.Tensor]:
    """(drafts, proposals): one draft per row of drafting logits, drawn from the row's distribution tempered
    like the causal path's (the argmax at temperature 0), and those distributions (R, V) in float64.

    A draw rather than the argmax: a draft is blind to the token just before it (drawn in the same forward),
    and against a spread target p a proposal q close to it is accepted with probability sum(min(p, q)), more
    than p(argmax q) (bench/drafts.py measures both)."""
    if config.temperature == 0:
        return logits.argmax(dim=-1).tolist(), torch.empty(0)
    q = _target(logits, config)
    return [draw(row, generator) for row in q], q


def _verify(causal: torch.Tensor, drafts: list[int], proposals: torch.Tensor, room: int, config: DiffusionConfig,
            generator: torch.Generator) -> tuple[list[int], list[float], int]:
    """Speculative sampling: (the accepted drafts plus one token drawn from the causal path if the canvas has
    `room` for it, each one's probability under that path, how many drafts passed). causal[i] (logits)
    predicts the token after draft i (row 0: after t0), so drafts[i], drawn from proposals[i] (q), is kept
    with probability min(1, p / q) of row i, and the first rejected one is replaced by a draw from that row's
    residual max(p - q, 0); if all pass, the row after the last draft draws one more. At temperature 0 (no
    proposals: point masses at the drafter's argmax): the greedy decode."""
    tokens, scores = [], []
    for row, draft in enumerate(drafts):
        p = _target(causal[row], config)
        q = proposals[row] if config.temperature > 0 else None
        if _accepts(p, q, draft, config, generator):
            tokens.append(draft), scores.append(float(p[draft]))
            continue
        token = _draw(_residual(p, q), config, generator)
        return tokens + [token], scores + [float(p[token])], row
    if len(drafts) == room:  # the drafts reach the canvas end: nothing left to draw
        return tokens, scores, len(drafts)
    p = _target(causal[len(drafts)], config)
    token = _draw(p, config, generator)
    return tokens + [token], scores + [float(p[token])], len(drafts)


def _target(logits: torch.Tensor, config: DiffusionConfig) -> torch.Tensor:
    """The sampling distribution of logits (V,) or (R, V), tempered, in float64: the causal path's, or the drafter's
    proposals."""
    return torch.softmax(tempered(logits, config).double(), dim=-1)


def _accepts(p: torch.Tensor, q: torch.Tensor | None, draft: int, config: DiffusionConfig,
             generator: torch.Generator) -> bool:
    """Keep the draft with probability min(1, p(draft) / q(draft)); at temperature 0 if it is p's argmax."""
    if config.temperature == 0:
        return int(p.argmax()) == draft
    u = float(torch.rand((), dtype=torch.float64, generator=generator, device=p.device))
    return u * float(q[draft]) < float(p[draft])


def _residual(p: torch.Tensor, q: torch.Tensor | None) -> torch.Tensor:
    """What to draw from after a rejection: max(p - q, 0); p itself at temperature 0 (no q: the draw is p's
    argmax, which the rejected draft is not) or where rounding left nothing of p - q."""
    if q is None:
        return p
    residual = (p - q).clamp_min(0)
    return residual if float(residual.sum()) > 0 else p


def _draw(p: torch.Tensor, config: DiffusionConfig, generator: torch.Generator) -> int:
    """A token from the (unnormalised) distribution p; its argmax at temperature 0."""
    if config.temperature == 0:
        return int(p.argmax())
    return draw(p, generator)


def _until_stop(tokens: list[int], scores: list[float], stop_ids) -> tuple[list[int], list[float]]:
    """Cut after the first stop id: ([5, 2, 7], [.5, .5, .5], (2,)) -> ([5, 2], [.5, .5])."""
    for i, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:i + 1], scores[:i + 1]
    return tokens, scores
