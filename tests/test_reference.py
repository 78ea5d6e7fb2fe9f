"""The sampler against independent re-derivations of the published loops (tests/reference.py):
at temperature 0, token for token and step for step, on tiny random bidirectional models, several seeds."""

import dataclasses

import pytest
import torch

from generation import DiffusionConfig, diffuse
from reference import dream_reference, forbid, llada_reference
from fakes import TINY_MASK_ID, tiny_diffusion_lm

SEEDS = [0, 1, 2]
PROMPT = [5, 17, 33, 2, 41, 8]


def canvases(history):
    return [history.canvas_at(k) for k in range(1, len(history.steps) + 1)]


def assert_same_run(ours, reference):
    """Step for step; the published loop may run extra steps after the canvas is full (no-ops)."""
    assert len(ours) <= len(reference)
    assert ours == reference[: len(ours)]
    assert all(canvas == reference[-1] for canvas in reference[len(ours):])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
@pytest.mark.parametrize("gen_length,steps,block_length", [(16, 16, 16), (24, 12, 8), (16, 4, 4), (18, 7, 18)])
def test_llada_matches_published(seed, remasking, gen_length, steps, block_length):
    lm = tiny_diffusion_lm(seed)
    config = DiffusionConfig(gen_length=gen_length, steps=steps, block_length=block_length,
                             algorithm=remasking, seed=seed)
    history = diffuse(lm, PROMPT, config)
    reference = llada_reference(lm.module, PROMPT, steps, gen_length, block_length, remasking=remasking,
                                mask_id=TINY_MASK_ID, logits_hook=forbid([TINY_MASK_ID]),
                                generator=torch.Generator().manual_seed(seed))
    assert canvases(history) == reference


@pytest.mark.parametrize("seed", SEEDS)
def test_llada_classifier_free_guidance_matches_published(seed):
    lm = tiny_diffusion_lm(seed)
    config = DiffusionConfig(gen_length=16, steps=8, block_length=8, cfg_scale=1.5, seed=seed)
    history = diffuse(lm, PROMPT, config)
    reference = llada_reference(lm.module, PROMPT, 8, 16, 8, cfg_scale=1.5, mask_id=TINY_MASK_ID,
                                logits_hook=forbid([TINY_MASK_ID]))
    assert canvases(history) == reference
    assert history.forward_passes == 2 * 8


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alg", ["maskgit_plus", "topk_margin", "entropy", "origin"])
@pytest.mark.parametrize("gen_length,steps", [(16, 16), (20, 8), (16, 3)])
def test_dream_matches_published(seed, alg, gen_length, steps):
    lm = tiny_diffusion_lm(seed, shift_logits=True)
    config = DiffusionConfig(gen_length=gen_length, steps=steps, algorithm=alg, seed=seed)
    history = diffuse(lm, PROMPT, config)
    reference = dream_reference(lm.module, PROMPT, steps, gen_length, alg=alg, mask_id=TINY_MASK_ID,
                                logits_hook=forbid([TINY_MASK_ID]), generator=torch.Generator().manual_seed(seed))
    assert_same_run(canvases(history), reference)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("top_p,top_k,alg_temp", [(0.9, None, 0.0), (1.0, 5, 0.0), (1.0, None, 0.5), (0.8, 7, 2.0)])
def test_dream_filters_and_alg_temp_match_published(seed, top_p, top_k, alg_temp):
    lm = tiny_diffusion_lm(seed, shift_logits=True)
    config = DiffusionConfig(gen_length=16, steps=8, algorithm="maskgit_plus", top_p=top_p, top_k=top_k,
                             alg_temp=alg_temp, seed=seed)
    history = diffuse(lm, PROMPT, config)
    reference = dream_reference(lm.module, PROMPT, 8, 16, alg="maskgit_plus", top_p=top_p, top_k=top_k,
                                alg_temp=alg_temp, mask_id=TINY_MASK_ID, logits_hook=forbid([TINY_MASK_ID]),
                                generator=torch.Generator().manual_seed(seed))
    assert canvases(history) == reference


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.02, 0.05, 0.9])
@pytest.mark.parametrize("block_length", [8, 16])
def test_fast_dllm_threshold_matches_published(seed, threshold, block_length):
    lm = tiny_diffusion_lm(seed)
    config = DiffusionConfig(gen_length=16, steps=16, block_length=block_length, threshold=threshold, seed=seed)
    history = diffuse(lm, PROMPT, config)
    reference = llada_reference(lm.module, PROMPT, 16, 16, block_length, mask_id=TINY_MASK_ID, threshold=threshold,
                                logits_hook=forbid([TINY_MASK_ID]))
    assert canvases(history) == reference
    assert all(step.positions for step in history.steps), "every step commits at least one token"


@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_with_dream_scores_matches_reference(seed):
    lm = tiny_diffusion_lm(seed, shift_logits=True)
    config = DiffusionConfig(gen_length=16, steps=16, algorithm="maskgit_plus", threshold=0.05, seed=seed)
    history = diffuse(lm, PROMPT, config)
    reference = dream_reference(lm.module, PROMPT, 16, 16, alg="maskgit_plus", threshold=0.05, mask_id=TINY_MASK_ID,
                                logits_hook=forbid([TINY_MASK_ID]))
    assert canvases(history) == reference


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("algorithm,shift", [("low_confidence", False), ("entropy", True), ("random", False)])
def test_projection_at_masked_positions_only_changes_nothing(seed, algorithm, shift):
    """Projecting only the rows that need a proposal gives the same run as projecting every position."""
    lm = tiny_diffusion_lm(seed, shift_logits=shift)
    full = dataclasses.replace(lm, full_projection=True)
    config = DiffusionConfig(gen_length=24, steps=12, block_length=8, algorithm=algorithm, seed=seed)
    ours, reference = diffuse(lm, PROMPT, config), diffuse(full, PROMPT, config)
    assert canvases(ours) == canvases(reference)
    for a, b in zip(ours.steps, reference.steps):
        assert a.scores == pytest.approx(b.scores, rel=1e-5, abs=1e-6)
    x = torch.tensor([PROMPT + [TINY_MASK_ID] * 8])
    positions = torch.tensor([7, 9, 13])
    assert torch.allclose(lm.logits_at(x, positions), full.logits_at(x, positions), atol=1e-5)
