"""Self-speculative decoding for block-causal diffusion models: draft by diffusion, verify with the same
weights' causal path, and pre-draft the next block for every outcome in the same forward.

A block-causal model (training/block.py) is two models in one set of weights: its clean positions
attend causally (an autoregressive LM), its masked block attends to them and to itself (a diffusion
LM that fills k tokens at once). Speculative sampling (Leviathan et al., arXiv 2211.17192; Chen et al.,
arXiv 2302.01318) lets the fast one propose and the exact one decide, so the answer is distributed
exactly as the causal path's own left-to-right samples while several tokens are committed per forward.
TiDAR (Liu et al., "Think in Diffusion, Talk in Autoregression", arXiv 2511.08923) does both in one
forward; this module follows its layout, with the drafts as a tree (SpecInfer, Miao et al., arXiv
2305.09781; Medusa, Cai et al., arXiv 2401.10774):

    cache | t0 | c1 d2 .. d(k-1) | c2 .. cK | a mask block after t0 | after every draft | ...
            causal along each branch        each block sees its anchor's branch, and itself

`t0` is committed. The first draft is blind to the token just before it (the one t0's row draws in the
same forward), so the drafter is often unsure of it: the tree tries its K best values c1..cK side by
side, the best followed by the drafter's best for the later positions (d2 ..), and each draft sees
only its own branch. Best by the drafter's logits, rescored where the model has them by bigram counts
of its training answers given the token before the draft, known by the time the tree is built
(bigrams.py); the counts then add a draft after the chain's last (its most frequent follower). The
verifier walks from t0: it draws a token from the causal row's p (its logits over the model's causal temperature,
calibrated to its teacher, then the sampler's temperature; its argmax at temperature 0), and if a
child carries that token it moves there and draws again; the first draw that no child carries, or the
draw after a leaf, ends the run. Every committed token is a draw from p, so answers
are the causal path's samples at any temperature (a point-mass draft is kept with probability p(d),
Leviathan's min(1, p / q) for a point mass q). The run ends in a token that no draft carries, and the mask
block anchored just before it has already drafted the tokens after it (with Dream's token shift the block's
first mask is that token's own position). So every forward commits 1..k tokens (k + 1 with the bigram draft)
and yields the next tree; no forward is spent on drafting alone. At temperature 0 the answer is the causal path's greedy decode.

A block after an anchor holds k - 1 masks, one per draft; the k-th mask of the training layout would draft
past the block and is left out: the first draft is kept no more often with it (`python -m bench.drafts`).
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
from .bigrams import Bigrams
from .config import DiffusionConfig, check_fits
from .history import DIFFUSION, History
from .infill import Infill
from .models import DiffusionLM, new_cache
from .sampling import Penalties, distribution, pick, top_candidates

# The first draft's alternatives: more of them hold the verifier's token more often (`python -m bench.drafts
# --candidates K`, on training prompts), but each costs a position in every forward; against the AR model, K = 3 to 5
# timed alike (`python -m bench.speed --model smollm2-135m-block-diffusion --split train`, with this changed).
CANDIDATES = 4
# Drafts after the drafting block's, from the bigram counts alone (for a model that has them): the most frequent
# follower of the chain's last draft, and a mask after it. One such draft commits about as many tokens per forward
# as a third drafted token, in a forward of fewer positions; a second added nothing (timed against the AR model on
# training prompts: `python -m bench.speed --model smollm2-135m-block-diffusion --split train`, with this changed).
BIGRAM_DRAFTS = 1


def stream(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig, stop: threading.Event | None = None,
           infill: Infill | None = None) -> Iterator[History]:
    """decoders.SPECULATIVE's runner (it takes no given tokens: runs.prepare_run refuses them)."""
    check_fits(prompt_ids, config.gen_length, model.context_length)
    yield from stream_speculative(model, prompt_ids, config, stop)


@torch.no_grad()
def stream_speculative(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
                       stop: threading.Event | None = None, candidates: int = CANDIDATES) -> Iterator[History]:
    """Run self-speculative decoding over a canvas of `config.gen_length` masks, drafts of up to
    `config.block` - 1 tokens after the committed one (the first in `candidates` variants), yielding the
    (same, growing) History after every forward. Expects a block-causal model with Dream's shift and a validated
    config (runs.prepare_run checks both)."""
    device = model.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    prompt_len, end = len(prompt_ids), len(prompt_ids) + config.gen_length
    history = History.start(DIFFUSION, model, prompt_ids, [model.mask_id] * config.gen_length, config)
    kv = new_cache(model)
    feed = list(prompt_ids)  # clean tokens not in the cache yet, t0 (the last committed) last
    tree = Tree()  # the drafts after t0
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
        layout = Layout(cached, len(feed), tree.parents, config.block, end)
        ids = feed + tree.tokens
        ids = torch.tensor([ids + [model.mask_id] * (len(layout.positions) - len(ids))], device=device)
        hidden = model.hidden_states(ids, layout.positions, kv, layout.mask)
        forward_passes += 1
        logits = model.project(hidden, layout.causal_rows + layout.draft_rows)  # one read of the vocabulary matrix
        causal, drafting = logits[:len(layout.causal_rows)], logits[len(layout.causal_rows):]
        tokens, scores, likeliest, node, done = commit(model, kv, causal, tree, layout, anchor, end, config, generator,
                                                      seen, penalties)
        seen += tokens
        last = anchor + len(tokens)  # absolute position of the last committed token
        if not done:  # the next tree, by the block after the last draft kept, blind to tokens[-1] (drawn just now)
            tree = Tree.drafted(penalties(drafting[layout.drafts_of[node]], seen),
                                candidates, tokens[-1], model.bigrams)
        ghosts = [] if done else tree.chain()[:end - 1 - last]  # shown after this step, checked by the next
        first = anchor + 1 - prompt_len  # answer position of the first committed token
        history.record(positions=list(range(first, first + len(tokens))), tokens=tokens, scores=scores,
                       candidates=likeliest, seconds=time.perf_counter() - began, forward_passes=forward_passes,
                       computed_positions=len(layout.positions), uncached_positions=cached + len(layout.positions),
                       draft_positions=range(first + len(tokens), first + len(tokens) + len(ghosts)),
                       draft_tokens=ghosts)
        yield history
        if done:
            return
        feed = [tokens[-1]]


class Tree:
    """The drafts after t0 (node 0): node i >= 1 holds tokens[i - 1], a child of node parents[i - 1] < i.

    Tree.drafted(rows, 3, previous) for two drafting rows with argmaxes 7 and 9, the first row's runners-up 8 and 4:
    the chain 7 -> 9 and its alternatives 8 and 4 for the first draft: tokens [7, 9, 8, 4], parents [0, 1, 0, 0]
    (with bigram counts, the chain goes on by BIGRAM_DRAFTS more drafts: 7 -> 9 -> 9's most frequent follower)."""

    def __init__(self, tokens: list[int] | None = None, parents: list[int] | None = None) -> None:
        self.tokens, self.parents = tokens or [], parents or []
        self.children = {(parent, token): node
                         for node, (token, parent) in enumerate(zip(self.tokens, self.parents), 1)}

    @classmethod
    def drafted(cls, logits: torch.Tensor, candidates: int, previous: int, bigrams: Bigrams | None = None) -> Tree:
        """The tree of a block's drafting logits (R, V): the best draft of every row as a chain, and the first row's
        next `candidates` - 1 best beside its head. Best by the logits, or with `bigrams` by their scores given the
        token before the draft: `previous` (the last committed token) for the first row, the chain's for the rest;
        then the chain goes on by up to BIGRAM_DRAFTS drafts from the counts alone."""
        if len(logits) == 0:  # the block reaches the canvas end
            return cls()
        def scores(row: torch.Tensor, before: int) -> torch.Tensor:
            return row if bigrams is None else bigrams.rescore(row, before)

        firsts = scores(logits[0], previous).topk(min(candidates, logits.shape[-1])).indices.tolist()
        chain = firsts[:1]
        for row in logits[1:]:
            chain.append(int(scores(row, chain[-1]).argmax()))
        for _ in range(BIGRAM_DRAFTS if bigrams is not None else 0):
            follower = bigrams.likeliest_after(chain[-1])
            if follower is None:
                break
            chain.append(follower)
        return cls(chain + firsts[1:], list(range(len(chain))) + [0] * (len(firsts) - 1))

    def child(self, node: int, token: int) -> int | None:
        return self.children.get((node, token))

    def with_branch(self, branch: list[int]) -> Tree:
        """This tree with `branch` (tokens after t0) as a path from t0, sharing the nodes it already has:
        Tree([7, 9, 8], [0, 1, 0]).with_branch([8, 2]) -> tokens [7, 9, 8, 2], parents [0, 1, 0, 3]."""
        tokens, parents, children, node = list(self.tokens), list(self.parents), dict(self.children), 0
        for token in branch:
            if (node, token) not in children:
                tokens.append(token), parents.append(node)
                children[node, token] = len(tokens)
            node = children[node, token]
        return Tree(tokens, parents)

    def chain(self) -> list[int]:
        """The tokens from t0 along each node's first child: the drafts the tree tries first."""
        firsts, chain, node = {}, [], 0
        for child, parent in enumerate(self.parents, 1):
            firsts.setdefault(parent, child)
        while node in firsts:
            node = firsts[node]
            chain.append(self.tokens[node - 1])
        return chain

    def path(self, node: int) -> list[int]:
        """The nodes from the first draft down to `node` (empty for t0)."""
        path = []
        while node:
            path.append(node)
            node = self.parents[node - 1]
        return path[::-1]


class Layout:
    """One forward's inputs after `cached` cache entries: `fed` clean tokens, the last of them t0, then the drafts
    of a Tree (their `parents`), then a block of masks right of each of those anchors (t0 and every draft), up to
    `block` - 1 long (one per draft it makes), cut at the canvas `end`.

    positions: (Q,) absolute positions in input order; mask: (Q, cached + Q) bool, True = may attend: the clean
    tokens causally, a draft its ancestors and itself, a block its anchor's branch and itself;
    causal_rows[n]: the input row of node n (0: t0); block_rows[n]: the input rows of the block anchored at node n;
    draft_rows: all of those, in order, and drafts_of[n] the slice of draft_rows that is block_rows[n].

    Layout(0, 2, [0, 0], 3, 9).positions -> [0, 1, 2, 2, 2, 3, 3, 4, 3, 4]: fed 0 1 (t0 = 1), two drafts of
    position 2, then blocks of 2 masks after t0 and after each draft."""

    def __init__(self, cached: int, fed: int, parents: list[int], block: int, end: int) -> None:
        anchor = cached + fed - 1  # absolute position of t0
        branches = [list(range(cached, cached + fed))]  # per node, the mask columns of its fed ancestors and itself
        depths = [0]
        for node, parent in enumerate(parents, 1):
            branches.append(branches[parent] + [cached + fed - 1 + node])
            depths.append(depths[parent] + 1)
        positions = list(range(cached, cached + fed)) + [anchor + depth for depth in depths[1:]]
        blocks = []  # per node: (input row of the block's first mask, its length)
        for depth in depths:
            length = max(min(block, end - 1 - (anchor + depth)) - 1, 0)
            blocks.append((len(positions), length))
            positions += range(anchor + depth + 1, anchor + depth + 1 + length)
        q = len(positions)
        mask = torch.zeros(q, cached + q, dtype=torch.bool)
        mask[:, :cached] = True
        mask[:fed, cached:cached + fed] = torch.ones(fed, fed, dtype=torch.bool).tril()
        for node, branch in enumerate(branches[1:], 1):
            mask[fed - 1 + node, branch] = True
        for branch, (row, length) in zip(branches, blocks):
            mask[row:row + length, branch] = True  # its anchor's branch
            mask[row:row + length, cached + row:cached + row + length] = True  # and itself
        self.positions, self.mask = torch.tensor(positions), mask
        self.causal_rows = [fed - 1 + node for node in range(len(depths))]
        self.block_rows = [list(range(row, row + length)) for row, length in blocks]
        self.draft_rows = [row for rows in self.block_rows for row in rows]
        starts = [0] + list(itertools.accumulate(len(rows) for rows in self.block_rows))
        self.drafts_of = [slice(a, b) for a, b in zip(starts, starts[1:])]


def commit(model: DiffusionLM, kv, causal: torch.Tensor, tree: Tree, layout: Layout, anchor: int, end: int,
           config: DiffusionConfig, generator: torch.Generator, seen: list[int],
           penalties: Penalties) -> tuple[list[int], list[float], list[list[list]], int, bool]:
    """One forward's verdict: walk the tree (`_verify`) by the `causal` logits over the model's causal temperature,
    keep the cache of the branch walked, cut after a stop id.
    (the committed tokens, their scores, the likeliest tokens where each was drawn (sampling.top_candidates), the
    last node kept, whether the run is done: the canvas end or a stop). `seen`: the prompt and the committed tokens,
    t0 last (the text the `penalties` read)."""
    causal = causal / model.causal_temperature  # the causal path calibrated to its teacher (models.py)
    tokens, scores, likeliest, node = _verify(causal, tree, end - 1 - anchor, config, generator, seen, penalties)
    cached = anchor - layout.causal_rows[0]  # cache entries before this forward (t0's input row is fed - 1)
    model.keep_cache_branch(kv, anchor + 1, [layout.causal_rows[n] + cached for n in tree.path(node)])
    kept = _until_stop(tokens, model.stop_ids)
    tokens, scores, likeliest = tokens[:kept], scores[:kept], likeliest[:kept]
    return tokens, scores, likeliest, node, anchor + len(tokens) == end - 1 or tokens[-1] in model.stop_ids


def _verify(causal: torch.Tensor, tree: Tree, room: int, config: DiffusionConfig, generator: torch.Generator,
            seen: list[int], penalties: Penalties) -> tuple[list[int], list[float], list[list[list]], int]:
    """Walk the tree from t0: (the committed tokens, each one's probability under the causal path, the likeliest
    tokens where each was drawn, the last node whose draft was kept). causal[n] (logits) predicts the token after
    node n, `penalties` applied for the text it follows (`seen`, then the tokens drawn on the way); each step
    draws from it and moves to the child carrying the draw, until no child does or the canvas has no `room` left."""
    node, tokens, scores, likeliest = 0, [], [], []
    while len(tokens) < room:
        p = distribution(penalties(causal[node], seen + tokens), config)
        token = pick(p, config, generator)
        tokens.append(token), scores.append(float(p[token])), likeliest.extend(top_candidates(causal[node][None]))
        child = tree.child(node, token)
        if child is None:
            break
        node = child
    return tokens, scores, likeliest, node


def _until_stop(tokens: list[int], stop_ids) -> int:
    """How many tokens to keep: up to and including the first stop id. ([5, 2, 7], (2,)) -> 2."""
    return next((i + 1 for i, token in enumerate(tokens) if token in stop_ids), len(tokens))
