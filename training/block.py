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
next-token loss on its answer tokens. Without it the LoRA drifts the causal states that every block reads
and that predict each block's first token, and the weights decoding strictly left to right loop more than
the teacher. Its target (`ar_target`): the cross-entropy on the teacher's sampled answers, or the KL from the
teacher's own next-token distribution (the base with the adapter off, one more forward over the clean
stream, no gradient). Sampled answers, half at T=0.7, teach a causal path sharper than its teacher; the KL
teaches the teacher itself, which is what verified and speculative decoding write (their answers are that
path's samples). Validation reports the diffusion loss alone, comparable across runs with and without it.

The runs behind the shipped adapter, and the variants tried and dropped (suffix masks, more answers, the
T=1.0 answers alone, soft and speculative-layout draft targets), are recorded
in training/README.md ("What the block objective tried"); the measured tables are in the model card and
docs/results.md.

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
                         ar: bool = False, teacher=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(mean cross-entropy over masked answer tokens, each predicted from its `source` column; with `ar`,
    the mean next-token cross-entropy over the clean stream's answer tokens, or with `teacher` too (a causal LM
    called as teacher(input_ids) -> output with .logits) the mean KL(teacher || clean stream) of the next-token
    distributions there; else None)."""
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
    before = (cols - 1).to(device)
    logits = causal_lm.lm_head(hidden[rows, before]).float()
    if teacher is None:
        return diffusion, F.cross_entropy(logits, streams["ids"][rows, cols].to(device))
    # The clean stream is each row's first columns at positions 0, 1, ...: a plain causal forward over them gives
    # the teacher's states there (later columns are never attended to by earlier ones).
    with torch.no_grad():
        target = teacher(streams["ids"][:, :int(cols.max()) + 1].to(device)).logits[rows.to(device), before]
    return diffusion, F.kl_div(logits.log_softmax(-1), target.float().log_softmax(-1), log_target=True,
                               reduction="batchmean")
