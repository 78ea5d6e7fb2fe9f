"""What the samplers share (generation/schemes.py, generation/speculative.py, generation/autoregressive.py):
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
    where negative, so that at penalty > 1 a token already written is less likely again. It comes before
    temperature and top-p. penalised(tensor([2., -1., 3.]), [0, 1], 2.0) -> [1., -2., 3.]."""
    if penalty == 1 or len(seen) == 0:
        return logits
    ids = torch.tensor(sorted(set(seen)), dtype=torch.long, device=logits.device)
    picked = logits[..., ids]
    return logits.index_copy(-1, ids, torch.where(picked > 0, picked / penalty, picked * penalty))


def distribution(logits: torch.Tensor, config: DiffusionConfig | ARConfig, seen=()) -> torch.Tensor:
    """What the next token is drawn from, after the tokens `seen` (`penalised` by the config's repetition penalty):
    the plain softmax at temperature 0, else the tempered, filtered one."""
    logits = penalised(logits, seen, config.repetition_penalty)
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
