"""Independent re-derivations of the published sampling loops, for equivalence tests.

Written from the published code's structure (ML-GSAI/LLaDA generate.py, Dream's
generation_utils.py `_sample`, Fast-dLLM's threshold `get_transfer_index`), not from our sampler:
batch 1, full-vocabulary logits over the whole sequence, the same tensor shapes and dtypes as
published. Two deliberate deviations, both exact at temperature 0:
- a `logits_hook` applied to the logits before sampling (Dream's `generation_logits_hook_func`),
  used to forbid the mask id as a proposal, as our sampler does;
- LLaDA's Gumbel noise is not drawn at temperature 0, where (-log u)^0 = 1 makes it a no-op; the
  draw would only advance the random stream that the `random` scores come from.
Each function returns the answer canvas after every step (lists of ids).
"""

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def llada_reference(model, prompt, steps, gen_length, block_length, temperature=0.0, cfg_scale=0.0,
                    remasking="low_confidence", mask_id=0, threshold=None, logits_hook=lambda x: x,
                    generator=None, shift=False):
    P = len(prompt)
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[0, :P] = torch.tensor(prompt)
    prompt_index = x != mask_id
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    steps_per_block = steps // num_blocks
    canvases = []
    for b in range(num_blocks):
        lo, hi = P + b * block_length, P + (b + 1) * block_length
        block_masks = int((x[:, lo:hi] == mask_id).sum())
        counts = [block_masks // steps_per_block + (1 if i < block_masks % steps_per_block else 0)
                  for i in range(steps_per_block)]
        i = 0
        while True:
            if threshold is None and i == steps_per_block:
                break
            if threshold is not None and (x[:, lo:hi] == mask_id).sum() == 0:
                break
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                logits = model(torch.cat([x, un_x])).logits
                cond, uncond = torch.chunk(logits, 2, dim=0)
                logits = uncond + (cfg_scale + 1) * (cond - uncond)
            else:
                logits = model(x).logits
            if shift:
                logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
            logits = logits_hook(logits)
            if temperature == 0:
                x0 = torch.argmax(logits, dim=-1)
            else:
                logits64 = logits.to(torch.float64)
                noise = torch.rand(logits64.shape, dtype=torch.float64, generator=generator)
                x0 = torch.argmax(logits64.exp() / (-torch.log(noise)) ** temperature, dim=-1)
            if remasking == "low_confidence":
                p = F.softmax(logits.to(torch.float64), dim=-1)
                x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            elif remasking == "random":
                x0_p = torch.rand((1, x.shape[1]), generator=generator)
            else:
                raise NotImplementedError(remasking)
            x0_p[:, hi:] = -np.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.tensor(-np.inf, dtype=x0_p.dtype))
            k = int(mask_index[0, lo:hi].sum()) if threshold is not None else counts[i]
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            _, select = torch.topk(confidence[0], k=k)
            transfer[0, select] = True
            if threshold is not None:
                for j in range(1, k):
                    if confidence[0, select[j]] < threshold:
                        transfer[0, select[j]] = False
            x[transfer] = x0[transfer]
            canvases.append(x[0, P:].tolist())
            i += 1
    return canvases


def _top_p_logits(logits, top_p):
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cumulative_probs > top_p
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = 0
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_indices, remove)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def _top_k_logits(logits, top_k):
    top_k = min(top_k, logits.size(-1))
    remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
    return logits.masked_fill(remove, torch.finfo(logits.dtype).min)


def _sample_tokens(logits, temperature=0.0, top_p=None, top_k=None, margin_confidence=False,
                   neg_entropy=False):
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = _top_p_logits(logits, top_p)
    if top_k is not None:
        logits = _top_k_logits(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    assert temperature == 0, "the reference is compared at temperature 0"
    confidence, x0 = probs.max(dim=-1)
    if margin_confidence:
        sorted_probs, _ = torch.sort(probs, dim=-1, descending=True)
        confidence = sorted_probs[:, 0] - sorted_probs[:, 1]
    if neg_entropy:
        confidence = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
    return confidence, x0


@torch.no_grad()
def dream_reference(model, prompt, steps, gen_length, alg="maskgit_plus", temperature=0.0, top_p=None,
                    top_k=None, alg_temp=None, eps=1e-3, mask_id=0, logits_hook=lambda x: x,
                    generator=None, threshold=None):
    """Dream's `_sample` (no blocks). With `threshold`, the step's count is Fast-dLLM's instead."""
    P = len(prompt)
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[0, :P] = torch.tensor(prompt)
    timesteps = torch.linspace(1, eps, steps + 1)
    canvases = []
    i = 0
    while (i < steps) if threshold is None else bool((x == mask_id).any()):
        mask_index = x == mask_id
        logits = model(x).logits
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        logits = logits_hook(logits)
        mask_logits = logits[mask_index]
        if alg == "origin":
            t, s = timesteps[i], timesteps[i + 1]
            p_transfer = 1 - s / t if i < steps - 1 else 1
            x0 = torch.zeros_like(x[mask_index], dtype=torch.long) + mask_id
            transfer = torch.rand(*x0.shape, generator=generator) < p_transfer
            _, x0[transfer] = _sample_tokens(mask_logits[transfer], temperature=temperature, top_p=top_p, top_k=top_k)
            x[mask_index] = x0.clone()
        else:
            confidence, x0 = _sample_tokens(
                mask_logits, temperature, top_p=top_p, top_k=top_k,
                margin_confidence=alg == "topk_margin", neg_entropy=alg == "entropy")
            full_confidence = torch.full_like(x, -torch.inf, dtype=logits.dtype)
            full_confidence[mask_index] = confidence
            if threshold is not None:
                order = torch.argsort(full_confidence[0], descending=True)
                keep = full_confidence[0, order] >= threshold
                keep[0] = True
                transfer_index = order[keep].unsqueeze(0)
                number = transfer_index.shape[1]
            else:
                t, s = timesteps[i], timesteps[i + 1]
                num_mask_token = mask_index.sum() / mask_index.shape[0]
                number = int(num_mask_token * (1 - s / t)) if i < steps - 1 else int(num_mask_token)
                if number > 0:
                    if alg_temp is None or alg_temp == 0:
                        _, transfer_index = torch.topk(full_confidence, number)
                    else:
                        weights = F.softmax(full_confidence / alg_temp, dim=-1)
                        transfer_index = torch.multinomial(weights, num_samples=number, generator=generator)
            if number > 0:
                x_ = torch.zeros_like(x) + mask_id
                x_[mask_index] = x0.clone()
                rows = torch.arange(x.size(0)).unsqueeze(1).expand_as(transfer_index)
                x[rows, transfer_index] = x_[rows, transfer_index]
        canvases.append(x[0, P:].tolist())
        i += 1
    return canvases


def forbid(ids):
    """A logits hook that makes `ids` impossible proposals (as DiffusionLM.suppress does)."""
    def hook(logits):
        logits = logits.clone()
        logits[..., list(ids)] = float("-inf")
        return logits
    return hook
