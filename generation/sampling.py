"""What the samplers share (generation/schemes.py, generation/speculative.py, generation/autoregressive.py): the
penalties for what the text already holds, before anything else (`Penalties`: CTRL's repetition penalty and DRY),
Dream's order of temperature, top-p and top-k (`tempered`), one draw from a distribution (`draw`), what the
next token of a left-to-right loop is drawn from and the draw (`distribution`, `pick`), for the speculative and
AR loops (the unmasking loop keeps the reference implementations' draws), and the likeliest tokens a History
records where one was written (`top_candidates`). A model's KV cache helpers live beside it (models.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import ARConfig, DiffusionConfig

CANDIDATES = 5  # likeliest tokens recorded per written token (History's Step.candidates): what else it could have been


def tempered(logits: torch.Tensor, config: DiffusionConfig | ARConfig) -> torch.Tensor:
    """Dream's order: temperature (none at 0), then top-p, then top-k filtering (transformers' `generate`
    filters top-k first; the two differ only when both are set)."""
    if config.temperature > 0:
        logits = logits / config.temperature
    if config.top_p < 1:
        logits = _top_p_filter(logits, config.top_p)
    if config.top_k is not None:
        logits = _top_k_filter(logits, config.top_k)
    return logits


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches top_p (always the likeliest one)."""
    sorted_logits, sorted_ids = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cumulative > top_p
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = False
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_ids, remove)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def _top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    kth = torch.topk(logits, min(top_k, logits.size(-1)))[0][..., -1, None]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def draw(p: torch.Tensor, generator: torch.Generator) -> int:
    """One index drawn from the non-negative weights p (need not sum to 1) by inverting their CDF with one
    uniform draw: exact, never a zero-weight index, and on CPU much faster than torch.multinomial over a
    49k vocabulary, whose cost was a few percent of a decoding step."""
    cdf = p.double().cumsum(0)
    u = torch.rand((), dtype=torch.float64, generator=generator, device=p.device) * cdf[-1]
    return int(torch.searchsorted(cdf, u, right=True))  # the first i with cdf[i] > u


def penalised(logits: torch.Tensor, seen, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al., arXiv 1909.05858) as transformers' `generate` applies it: the logit
    of every token in `seen` (the prompt and the answer so far) divided by `penalty` where positive, multiplied by it
    where negative, so that at penalty > 1 a token already written is less likely again.
    penalised(tensor([2., -1., 3.]), [0, 1], 2.0) -> [1., -2., 3.]."""
    if penalty == 1 or len(seen) == 0:
        return logits
    ids = torch.tensor(sorted(set(seen)), dtype=torch.long, device=logits.device)
    picked = logits[..., ids]
    return logits.index_copy(-1, ids, torch.where(picked > 0, picked / penalty, picked * penalty))


# DRY ("Don't Repeat Yourself", p-e-w, text-generation-webui PR #5677, 2024; also in llama.cpp and KoboldCpp), with its
# published defaults: a token that would extend a repeat of `n` >= DRY_ALLOWED_LENGTH tokens of the text loses
# multiplier * DRY_BASE ** (n - DRY_ALLOWED_LENGTH) of its logit; a sequence breaker ends a repeat.
DRY_BASE = 1.75
DRY_ALLOWED_LENGTH = 2
DRY_BREAKERS = ("\n", ":", '"', "*")
DRY_LONGEST = 64  # repeats longer than this are penalised as this long (1.75 ** 62 already bans any token)


def repeats(context: list[int], breakers: frozenset[int] = frozenset()) -> dict[int, int]:
    """For each token that would continue `context` (prompt first) as an earlier stretch of it went on, the longest
    such repeat it would extend (no breaker inside): repeats([5, 6, 7, 9, 5, 6]) -> {7: 2}, and with 5 a breaker,
    {7: 1}."""
    if not context or context[-1] in breakers:
        return {}
    last, end, lengths = context[-1], len(context) - 1, {}
    for i in range(end):
        if context[i] != last or context[i + 1] in breakers:
            continue
        length = 1
        while length <= i and context[i - length] == context[end - length] and context[end - length] not in breakers:
            length += 1
        lengths[context[i + 1]] = max(length, lengths.get(context[i + 1], 0))
    return lengths


def dry_penalised(logits: torch.Tensor, context: list[int], multiplier: float,
                  breakers: frozenset[int] = frozenset()) -> torch.Tensor:
    """DRY on the logits (..., V) of the position after `context`: dry_penalised(zeros(9), [5, 6, 7, 9, 5, 6], 0.8)
    lowers token 7 by 0.8 (it would repeat 5 6 7), nothing else."""
    if multiplier == 0:
        return logits
    long = {token: n for token, n in repeats(context, breakers).items() if n >= DRY_ALLOWED_LENGTH}
    if not long:
        return logits
    ids = torch.tensor(list(long), dtype=torch.long, device=logits.device)
    amounts = torch.tensor([multiplier * DRY_BASE ** (min(n, DRY_LONGEST) - DRY_ALLOWED_LENGTH) for n in long.values()],
                           dtype=logits.dtype, device=logits.device)
    return logits.index_copy(-1, ids, logits[..., ids] - amounts)


def sequence_breakers(tokenizer) -> frozenset[int]:
    """DRY's breakers as the tokenizer's ids (each one's last token, as text-generation-webui encodes them); none
    without a tokenizer."""
    if tokenizer is None:
        return frozenset()
    return frozenset(tokenizer.encode(text, add_special_tokens=False)[-1] for text in DRY_BREAKERS)


class Penalties:
    """What a run does to a position's logits for the text before it, before temperature and top-p: CTRL's
    repetition penalty (the tokens in it) and DRY (the repeat a token would extend). `Penalties.of(config, model)`."""

    def __init__(self, repetition: float = 1.0, dry: float = 0.0, breakers: frozenset[int] = frozenset()) -> None:
        self.repetition, self.dry, self.breakers = repetition, dry, breakers

    @classmethod
    def of(cls, config: DiffusionConfig | ARConfig, model) -> Penalties:
        breakers = sequence_breakers(getattr(model, "tokenizer", None)) if config.dry_multiplier else frozenset()
        return cls(config.repetition_penalty, config.dry_multiplier, breakers)

    def __call__(self, logits: torch.Tensor, context: list[int]) -> torch.Tensor:
        """The logits (..., V) of the position after `context` (the prompt and the text so far, in order)."""
        return dry_penalised(penalised(logits, context, self.repetition), context, self.dry, self.breakers)

    def on_canvas(self, logits: torch.Tensor, canvas: torch.Tensor, positions: torch.Tensor,
                  mask_id: int) -> torch.Tensor:
        """The logits (P, V) of the masked `positions` of a `canvas` (L,) (prompt first) filled in any order: CTRL
        counts every token on it; DRY, per position, the text right before it up to the nearest mask (what it
        continues). Reads the canvas only when a penalty is on."""
        if self.repetition == 1 and self.dry == 0:
            return logits
        canvas, positions = canvas.tolist(), positions.tolist()
        logits = penalised(logits, [token for token in canvas if token != mask_id], self.repetition)
        if self.dry == 0:
            return logits
        rows = []
        for row, position in zip(logits, positions):
            start = next((i + 1 for i in range(position - 1, -1, -1) if canvas[i] == mask_id), 0)
            rows.append(dry_penalised(row, canvas[start:position], self.dry, self.breakers))
        return torch.stack(rows) if rows else logits


def distribution(logits: torch.Tensor, config: DiffusionConfig | ARConfig) -> torch.Tensor:
    """What the next token is drawn from (after the run's `Penalties`): the plain softmax at temperature 0, else the
    tempered, filtered one."""
    return torch.softmax(logits if config.temperature == 0 else tempered(logits, config), dim=-1)


def pick(p: torch.Tensor, config: DiffusionConfig | ARConfig, generator: torch.Generator) -> int:
    """The argmax of `p` at temperature 0 (no draw), else one draw from it."""
    return int(p.argmax()) if config.temperature == 0 else draw(p, generator)


def top_candidates(logits: torch.Tensor, k: int = CANDIDATES) -> list[list[list]]:
    """Per row of (N, V) logits, the k tokens the model finds likeliest there, [token id, probability], by the model's
    own probabilities (the softmax of its logits: no temperature, no top-p or top-k, which can leave a single token
    and would list zero-probability tokens after it), each rounded to float16 and written with 4 significant digits
    (float16 holds ~3.3; enough for a percentage, short in JSON). Reads no generator: recording them changes no draw.
    log([[0.1, 0.7, 0.2]]), k=2 -> [[[1, 0.7002], [2, 0.2]]]."""
    values, ids = torch.topk(torch.softmax(logits.float(), dim=-1), min(k, logits.shape[-1]), dim=-1)
    values = values.to(torch.float16).float().tolist()
    return [[[token, float(f"{p:.4g}")] for token, p in zip(row_ids, row_values)]
            for row_ids, row_values in zip(ids.tolist(), values)]
