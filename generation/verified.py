"""Verified diffusion for block-causal models: the diffusion stream writes the canvas ahead in any order, several
tokens a step, and the same weights' causal path verifies it left to right, so the answer is the causal path's.

Each forward runs speculative decoding's layout (speculative.py: t0, a tree of drafts, a mask block after each)
and beside it a *window*: the canvas positions right of t0, holding the diffusion stream's drafts and masks, a
block that sees the committed tokens and itself (the layout block-diffusion training uses). After the forward:

1. the causal path walks the tree from t0 and commits what it draws (speculative.py's verifier). The drafts
   that the window wrote on the canvas and that lie right next to t0 join the tree as one more branch, so a
   draft that has waited on the canvas is accepted where the verifier draws it, and revised where it draws
   another token (its colour changes: the step it last changed);
2. the window's drafts right of a revision were written seeing the token the verifier replaced: they go back
   to the mask (they depend on it);
3. the window writes new drafts: its `DRAFTS_PER_STEP` most confident masked positions, any order, never two
   neighbours in one step (neighbours drafted together cannot see each other: DUS, arXiv 2506.19037).

Every committed token is a draw from the causal path and every draft is a point mass that the walk keeps only if
it carries that draw (Leviathan's rule, arXiv 2211.17192, with q = the point mass of the draft: kept with
probability p(d), else a draw from p without d), whatever decided where and when the draft was written: answers
are distributed exactly as the causal path's own samples (calibrated to its teacher: speculative.commit), in
whatever order the canvas was filled (at temperature 0: its greedy decode). A step is one forward: it commits 1 or
more tokens and writes the window's drafts.

Left out: drafts revised by the window itself (ReMDM-style remasking by the drafter), infilling (a given token
would need the verifier to skip it), classifier-free guidance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import torch

from .config import DiffusionConfig, check_fits
from .history import DIFFUSION, History
from .infill import Infill
from .models import DiffusionLM, new_cache
from .sampling import Penalties, top_candidates
from .speculative import CANDIDATES, Layout, Tree, commit

# The window reaches this many positions right of t0: the block model's trained block of 8. On 24 training prompts
# (T=0.7 at a causal temperature of 1.15, 128 tokens) 8 against 6 put 30.7% of answer tokens out of order against 28.2%,
# at 1.96 tokens a forward against 1.97, in forwards two positions longer (on 6 prompts before the calibration, 6
# committed 2.01 against 1.97 and was kept until the out-of-order target asked for more).
WINDOW = 8
# Drafts the window writes per forward: enough to keep drafts waiting next to t0, few enough that the canvas
# visibly fills over several steps (chosen on training prompts; held-out figures: docs/results.md).
DRAFTS_PER_STEP = 3
# The longest run of canvas drafts next to t0 that joins the tree (each node costs its position and a mask).
BRANCH = 4


def stream(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig, stop: threading.Event | None = None,
           infill: Infill | None = None) -> Iterator[History]:
    """decoders.VERIFIED's runner (it takes no given tokens: runs.prepare_run refuses them)."""
    check_fits(prompt_ids, config.gen_length, model.context_length)
    yield from stream_verified(model, prompt_ids, config, stop)


@torch.no_grad()
def stream_verified(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
                    stop: threading.Event | None = None, window: int = WINDOW, drafts_per_step: int = DRAFTS_PER_STEP,
                    candidates: int = CANDIDATES) -> Iterator[History]:
    """Run verified diffusion over a canvas of `config.gen_length` masks (speculative drafts of up to
    `config.block` - 1 tokens, a window of `window` positions), yielding the (same, growing) History after every
    forward. Expects a block-causal model with Dream's shift and a validated config (runs.prepare_run checks both)."""
    device = model.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    prompt_len, end = len(prompt_ids), len(prompt_ids) + config.gen_length
    history = History.start(DIFFUSION, model, prompt_ids, [model.mask_id] * config.gen_length, config)
    kv = new_cache(model)
    feed = list(prompt_ids)  # clean tokens not in the cache yet, t0 (the last committed) last
    tree = Tree()  # the speculative drafts after t0
    canvas: dict[int, int] = {}  # absolute position -> the window's draft written there, not verified yet
    seen = list(prompt_ids)  # the prompt and the committed tokens: the text the penalties read
    penalties = Penalties.of(config, model)
    forward_passes = 0
    while True:
        if stop is not None and stop.is_set():
            history.stopped = True
            return
        began = time.perf_counter()
        cached = kv.get_seq_length()
        anchor = cached + len(feed) - 1  # absolute position of t0
        tree = tree.with_branch(_waiting(canvas, anchor, BRANCH))
        layout = Layout(cached, len(feed), tree.parents, config.block, end)
        ahead = list(range(anchor + 1, min(anchor + window, end - 1) + 1))  # the window's positions
        positions, mask = _with_window(layout, cached, len(feed), ahead)
        ids = feed + tree.tokens
        ids += [model.mask_id] * (len(layout.positions) - len(ids)) + [canvas.get(p, model.mask_id) for p in ahead]
        hidden = model.hidden_states(torch.tensor([ids], device=device), positions, kv, mask)
        forward_passes += 1
        # window row i predicts position ahead[i + 1] (Dream's shift; ahead[0] is the causal path's)
        window_rows = list(range(len(layout.positions), len(positions) - 1))
        logits = model.project(hidden, layout.causal_rows + layout.draft_rows + window_rows)
        causal = logits[:len(layout.causal_rows)]
        drafting = logits[len(layout.causal_rows):len(layout.causal_rows) + len(layout.draft_rows)]
        tokens, scores, likeliest, node, done = commit(model, kv, causal, tree, layout, anchor, end, config, generator,
                                                      seen, penalties)
        seen += tokens
        last = anchor + len(tokens)  # absolute position of the last committed token
        changes = _commit(canvas, anchor, list(zip(tokens, scores, likeliest)), model.mask_id, everything=done)
        if not done:
            window_logits = logits[len(causal) + len(layout.draft_rows):]
            changes.update(_draft(canvas, window_logits, ahead[1:], last, drafts_per_step,
                                  penalties(window_logits, seen)))
            tree = Tree.drafted(penalties(drafting[layout.drafts_of[node]], seen),
                                candidates, tokens[-1], model.bigrams)
        ghosts = [] if done else [(last + depth, token) for depth, token in enumerate(tree.chain()[:end - 1 - last], 1)
                                  if last + depth not in canvas]  # the window's own drafts are on the canvas already
        history.record(positions=[p - prompt_len for p in changes], tokens=[t for t, _, _ in changes.values()],
                       scores=[s for _, s, _ in changes.values()], candidates=[c for _, _, c in changes.values()],
                       seconds=time.perf_counter() - began,
                       forward_passes=forward_passes, committed=list(range(anchor + 1 - prompt_len,
                                                                           last + 1 - prompt_len)),
                       computed_positions=len(positions), uncached_positions=cached + len(positions),
                       draft_positions=[p - prompt_len for p, _ in ghosts], draft_tokens=[t for _, t in ghosts])
        yield history
        if done:
            return
        feed = [tokens[-1]]


def _waiting(canvas: dict[int, int], anchor: int, limit: int) -> list[int]:
    """The canvas drafts right next to t0, in order, up to `limit`: ({5: 7, 6: 8, 9: 1}, 4, 4) -> [7, 8]."""
    run = []
    while anchor + 1 + len(run) in canvas and len(run) < limit:
        run.append(canvas[anchor + 1 + len(run)])
    return run


def _with_window(layout: Layout, cached: int, fed: int, ahead: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The layout's positions and mask with the window's rows after them: a block at positions `ahead` that sees
    the cache, the fed clean tokens (t0 last) and itself; no other row sees it."""
    q, w = len(layout.positions), len(ahead)
    mask = torch.zeros(q + w, cached + q + w, dtype=torch.bool)
    mask[:q, :cached + q] = layout.mask
    mask[q:, :cached + fed] = True
    mask[q:, cached + q:] = True
    return torch.cat([layout.positions, torch.tensor(ahead, dtype=torch.long)]), mask


def _commit(canvas: dict[int, int], anchor: int, verified: list[tuple[int, float, list[list]]], mask_id: int,
            everything: bool) -> dict[int, tuple[int, float | None, list[list]]]:
    """Write the `verified` tokens after `anchor` (each with its score and candidates) into the canvas; the changes
    {position: (token, score, candidates)}: a draft the verifier replaced is revised, and the drafts right of it
    (or, at the end, all drafts left) go back to the mask. A draft the verifier kept does not change.

    canvas {5: 7, 6: 8, 8: 3}, anchor 4, verified tokens 7, 9: {6: (9, ., .), 8: (mask, None, [])}, canvas {} after."""
    changes, revised = {}, everything
    for position, (token, score, likeliest) in enumerate(verified, anchor + 1):
        drafted = canvas.pop(position, None)
        if drafted != token:
            changes[position] = (token, score, likeliest)
            revised = revised or drafted is not None
    if revised:
        for position in sorted(p for p in canvas if p > anchor + len(verified) or everything):
            changes[position] = (mask_id, None, [])
            del canvas[position]
    return changes


def _draft(canvas: dict[int, int], logits: torch.Tensor, positions: list[int], last: int, count: int,
           penalised_logits: torch.Tensor | None = None) -> dict[int, tuple[int, float, list[list]]]:
    """The window's new drafts: of the masked `positions` right of `last` (logits[i] predicts positions[i]), the
    `count` the drafter is surest of, no two neighbours, by `penalised_logits` where penalties shape what the
    verifier draws (else `logits`); written into `canvas`, returned as changes (with the drafter's own
    likeliest tokens there, from `logits`)."""
    probs = torch.softmax(logits if penalised_logits is None else penalised_logits, dim=-1)
    confidence, best = probs.max(dim=-1)
    open_rows = [i for i, p in enumerate(positions) if p > last and p not in canvas]
    chosen: dict[int, int] = {}  # position -> its row
    for i in sorted(open_rows, key=lambda i: -float(confidence[i])):
        if len(chosen) == count:
            break
        if positions[i] - 1 in chosen or positions[i] + 1 in chosen:
            continue
        chosen[positions[i]] = i
        canvas[positions[i]] = int(best[i])
    likeliest = top_candidates(logits[list(chosen.values())]) if chosen else []
    return {position: (int(best[i]), float(confidence[i]), top)
            for (position, i), top in zip(chosen.items(), likeliest)}
