"""The block-diffusion objective (BD3-LM, Fast-dLLM v2): SmolLM2 -> a block-causal diffusion LM.

One row of a batch is a (prompt, teacher answer) pair laid out as three streams side by side:

    clean : prompt + answer          causal attention, exactly the AR model (its KV is the cache
                                     the sampler keeps for finished blocks)
    noisy : answer with masks m      block b sees the clean prompt and clean blocks < b, and
    twin  : answer with masks 1 - m  itself bidirectionally; never another noisy block or stream

so every block of the answer is trained in one forward pass (prompt + 3 x answer tokens). The answer
is cut into blocks of k tokens from its first position and padded with <|endoftext|> to a multiple
of k (the pads are supervised: after <|im_end|> the model learns to fill its block with them).

Prediction uses Dream's token shift: token i comes from the hidden state at i-1. Inside a block
that state is in its noisy stream; for a block's first token it is the clean stream's last state
before the block, which is the AR model's own next-token prediction, the one the weights already
know. The sampler (generation/sampler.py, block-causal models) uses exactly these states.

Noise: each (row, block) draws t ~ U(eps, 1) and masks each of its tokens with probability t in the
noisy stream; the twin stream masks the complement (Fast-dLLM v2's complementary masks), so every
answer token is supervised exactly once per row. Fast-dLLM v2 repeats the whole row for the
complement; sharing the clean stream between the two computes prompt + 3a positions instead of
2 (prompt + 2a), a third less here, and gives the same states (the streams never see each other).
Loss: mean cross-entropy over the masked tokens (no 1/t weight: with complementary masks each token
counts once, and the unweighted mean is the lower-variance choice at this small batch). Block sizes
k come from a list, one per batch, so one model serves several.

AR loss (`ar_weight`, optional): the clean stream is the AR model, so the same forward also gives the
next-token loss on its answer tokens for free. Without it the LoRA drifts the causal states that every
block reads and that predict each block's first token: after three runs the adapted weights decoding
strictly left to right (the sampler with blocks of 1, 10 held-out prompts, T=0.7) repeated 23% of their
4-grams where the teacher repeats 7%.
Validation reports the diffusion loss alone, comparable across runs with and without it.
Tried and dropped: a KL divergence from the frozen teacher's next-token distribution (the base with the
adapter off) in place of the cross-entropy on its sampled answers. Those answers are half at T=0.7, likely
why the student learned a sharper model than the teacher (on 12 training prompts, blocks of 1, T=0.7: perplexity
2.63 and 11% repeated 4-grams against the teacher's 3.77 and 1%; at T=0.85 it comes close: 3.39, 5%).
A sixth run with the KL (407 steps from the fifth run's adapter) kept the held-out loss (3.144 vs 3.141)
but wrote worse at one token per step on the 40 held-out prompts: perplexity 5.4 against 3.8, entropy
2.93 against 3.09, and runs like "•. **" in a step-by-step list.
Also tried: suffix masks. ("The page's settings" in these records: threshold 0.9, blocks of 8, the page's
default before speculative decoding.) The threshold sampler commits ~1.2 tokens per forward, mostly a
block's leftmost masked token, so it meets blocks whose first tokens are known and the rest masked, which
random masks almost never draw. A seventh run (341 steps from the fifth run's adapter) masked half the (row, block)
pairs as a suffix from a uniform cut in each stream, the other half as above. On the 40 held-out prompts
it repeated fewer 4-grams at the page's settings (24% against 30%) but scored a higher perplexity (4.2
against 3.9), less entropy (3.00 against 3.07), shorter answers (94 tokens against 105), 4.3 against 3.8
at one token per step and 96 against 40 at 8 tokens per step; held-out loss 3.169 against 3.141. A trade,
not a gain, so it did not ship.
Also tried: more answers. An eighth run (288 steps from the fifth run's adapter, random masks as
shipped) trained on all 4,634 answers (every training prompt at T=0.7 and T=1.0: 2,317 at T=1.0 against
the fifth run's 1,536, still half of them):
held-out loss 3.141, unchanged; on the 40 held-out prompts at the page's settings perplexity 4.2 against
3.9, entropy 3.04 against 3.07, 25% repeated 4-grams against 30%; at one token per step 4.2 against 3.8,
at 4 tokens per step 13.5 against 13.6, at 8 tokens per step 70 against 40.
The same trade as the seventh run's, so that one's gain in repetition likely came from training
the fifth run's adapter on, not from its masks (whether longer training keeps trading is not measured).
Also tried: the T=1.0 answers alone, to undo the sharpening measured above (answers sampled at 0.7 teach a
sharpened teacher, which the sampler's own T=0.7 sharpens again). A ninth run (319 steps,
40 minutes from the fifth run's adapter) on the 2,317 T=1.0 answers: held-out loss 3.159 against 3.141; on
the 40 held-out prompts (the first two rows) at one token per step perplexity 5.5 against 3.8 (1.62x the AR
model's 3.4), entropy 3.13 against 3.09, 19% repeated 4-grams against 28%; at the page's settings 5.5
against 3.9, 3.14 against 3.07, 18% against 30%, 1.08 tokens per forward against 1.21. Fewer loops, but
the entropy hardly rose and the perplexity missed its targets, so the low entropy is not the sharpening
alone: it did not ship.

Also tried: teaching the drafts directly. Self-speculative decoding (generation/speculative.py) accepts
about half as many first drafts as it could: bench/drafts.py finds the drafter's first draft accepted with
probability 0.33 where the best draft blind to the token before it would be accepted with 0.62 (and one
that sees it, 0.72-0.79), the drafter's distribution about 2 nats (KL) from that blind marginal. A tenth
run (350 steps, 50 minutes from the fifth run's adapter, all 4,634 answers) trained the masked tokens on
soft targets, the starting model's own causal next-token distribution at each of them (self-distillation:
the distribution the verifier samples), the AR loss unchanged: on 12 training prompts (drafts of 4, T=0.7)
the first draft's acceptance went from 0.368 to 0.378 and tokens per forward from 1.55 to 1.55; held-out
loss 3.185 against 3.141. An eleventh run added suffix masks for half the (row, block) pairs (the drafting
layout: known tokens, then masks to the block's end); stopped at step 100 (14 minutes) at 0.358 and 1.49.
A twelfth run (205 steps, 55 minutes from the fifth run's adapter, all 4,634 answers) added a fourth stream
laid out exactly as speculative decoding drafts (after every anchor, 2 masks that see the clean tokens through
it; the second mask's loss the cross-entropy to the causal path's distribution there, no gradient through
it), beside the three streams and the AR loss as shipped: on 6 training prompts (drafts of 2, T=0.7) the
first draft's acceptance went from 0.404 to 0.322 at step 100 and 0.433 at the end (a fresh optimizer at the
peak rate first undoes, then returns), the KL to the blind marginal from 1.59 to 1.57 nats.
At this budget the drafter does not move; whether a GPU budget's tokens do is the open question.

Left out: BD3-LM's clipped noise schedules, sub-blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from generation.smollm2 import SMOLLM2_ENDOFTEXT_ID

PROMPT_BLOCK = -1  # the block index of prompt tokens: every noisy block may see them
CLEAN, NOISY, TWIN = 0, 1, 2  # the streams of a row, in order


def pad_to_block(answer: list[int], block: int, canvas: int) -> list[int]:
    """The answer cut at `canvas` and padded with <|endoftext|> to a block multiple: ([5, 6, 2], 4, 8) -> [5, 6, 2, 0]."""
    answer = list(answer[:canvas])
    return answer + [SMOLLM2_ENDOFTEXT_ID] * (-len(answer) % block)


def layout(pairs: list[tuple[list[int], list[int]]], block: int, canvas: int) -> dict[str, torch.Tensor]:
    """The three streams of every row, right-padded to a common width W = max(prompt + 3 * answer).

    Returns (B, W) tensors: `ids`, `position` (position ids: the noisy copies reuse the clean ones),
    `stream` (CLEAN, NOISY or TWIN), `block` (block index; PROMPT_BLOCK for the prompt), `valid`
    (False on row padding), `source` (the column whose hidden state predicts this column's token, -1
    where none), `twin` (for a NOISY column, the TWIN column of the same answer token; -1 elsewhere)."""
    rows = []
    for prompt, answer in pairs:
        answer = pad_to_block(answer, block, canvas)
        p, a = len(prompt), len(answer)
        blocks = [u // block for u in range(a)]

        def source(stream: int) -> list[int]:
            # Token u of a noisy copy is predicted from the column left of it inside its block, and
            # from the clean column p + u - 1 (the state just left of the block) at a block start.
            start = p + stream * a
            return [p + u - 1 if u % block == 0 else start + u - 1 for u in range(a)]

        rows.append({
            "ids": list(prompt) + answer * 3,
            "position": list(range(p + a)) + list(range(p, p + a)) * 2,
            "stream": [CLEAN] * (p + a) + [NOISY] * a + [TWIN] * a,
            "block": [PROMPT_BLOCK] * p + blocks * 3,
            "source": [-1] * (p + a) + source(NOISY) + source(TWIN),
            "twin": [-1] * (p + a) + list(range(p + 2 * a, p + 3 * a)) + [-1] * a,
        })
    width = max(len(row["ids"]) for row in rows)
    out = {name: torch.full((len(rows), width), fill, dtype=torch.long) for name, fill in (
        ("ids", SMOLLM2_ENDOFTEXT_ID), ("position", 0), ("stream", CLEAN), ("block", PROMPT_BLOCK),
        ("source", -1), ("twin", -1))}
    out["valid"] = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        n = len(row["ids"])
        out["valid"][i, :n] = True
        for name in ("ids", "position", "stream", "block", "source", "twin"):
            out[name][i, :n] = torch.tensor(row[name])
    return out


def attention_mask(streams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Boolean (B, 1, W, W), True where query column i may attend key column j.

    clean -> clean: causal by position; noisy -> clean: only blocks before its own (the prompt's
    block is -1); noisy -> noisy: its own block of its own stream. Padding columns see only
    themselves (sdpa needs one visible key per row) and are never seen."""
    stream, block, position, valid = streams["stream"], streams["block"], streams["position"], streams["valid"]
    qs, ks = stream[:, :, None], stream[:, None, :]
    qb, kb = block[:, :, None], block[:, None, :]
    clean_clean = (qs == CLEAN) & (ks == CLEAN) & (position[:, None, :] <= position[:, :, None])
    noisy_clean = (qs != CLEAN) & (ks == CLEAN) & (kb < qb)
    noisy_noisy = (qs != CLEAN) & (qs == ks) & (kb == qb)
    allowed = (clean_clean | noisy_clean | noisy_noisy) & valid[:, :, None] & valid[:, None, :]
    eye = torch.eye(stream.shape[1], dtype=torch.bool)[None]
    return (allowed | eye)[:, None]


def complementary_noise(streams: dict[str, torch.Tensor], eps: float, generator: torch.Generator) -> torch.Tensor:
    """The masked columns (B, W): the noisy stream masks m, the twin stream its complement 1 - m.

    m draws one t ~ U(eps, 1) per (row, block) and masks each answer token with probability t."""
    noisy, block = streams["stream"] == NOISY, streams["block"]
    blocks = int(block.max()) + 1
    t = eps + (1 - eps) * torch.rand((noisy.shape[0], blocks), generator=generator)  # (B, blocks)
    t_per_column = t.gather(1, block.clamp(min=0))  # (B, W)
    masked = noisy & (torch.rand(noisy.shape, generator=generator) < t_per_column)
    rows, cols = noisy.nonzero(as_tuple=True)
    masked[rows, streams["twin"][rows, cols]] = ~masked[rows, cols]
    return masked


def block_diffusion_loss(causal_lm, streams: dict[str, torch.Tensor], masked: torch.Tensor, mask_id: int,
                         ar: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(mean cross-entropy over masked answer tokens, each predicted from its `source` column; with `ar`,
    the mean next-token cross-entropy over the clean stream's answer tokens, else None)."""
    device = next(causal_lm.parameters()).device
    noisy_ids = streams["ids"].masked_fill(masked, mask_id).to(device)
    hidden = causal_lm.model(input_ids=noisy_ids, position_ids=streams["position"].to(device),
                             attention_mask=attention_mask(streams).to(device)).last_hidden_state  # (B, W, C)
    rows, cols = masked.nonzero(as_tuple=True)  # (N,), (N,)
    logits = causal_lm.lm_head(hidden[rows, streams["source"][rows, cols].to(device)]).float()  # (N, V)
    diffusion = F.cross_entropy(logits, streams["ids"][rows, cols].to(device))
    if not ar:
        return diffusion, None
    clean_answer = (streams["stream"] == CLEAN) & (streams["block"] >= 0) & streams["valid"]
    rows, cols = clean_answer.nonzero(as_tuple=True)  # each predicted from the clean column left of it
    logits = causal_lm.lm_head(hidden[rows, (cols - 1).to(device)]).float()
    return diffusion, F.cross_entropy(logits, streams["ids"][rows, cols].to(device))
