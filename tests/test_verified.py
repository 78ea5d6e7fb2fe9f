"""generation/verified.py: verified diffusion on tiny random block-causal models: the causal path's greedy decode
token for token, its samples whatever the window drafts, drafts written ahead of the text in any order, drafts
revised and sent back to the mask, and the refusals."""

import threading

import pytest
import torch

from fakes import TINY_EOS_ID, TINY_MASK_ID, tiny_block_causal_lm, tiny_diffusion_lm
from generation import ConfigError, DiffusionConfig, diffuse, stream_diffusion
from generation.infill import Infill
from generation.sampling import Penalties, distribution, pick
from generation.speculative import Layout, Tree, stream_speculative
from generation.verified import _commit, _draft, _waiting, _with_window, stream_verified

PROMPT = [5, 17, 33, 2, 41, 8]
MASK = TINY_MASK_ID


def verified(**overrides) -> DiffusionConfig:
    return DiffusionConfig(**{"gen_length": 16, "block_length": 2, "algorithm": "verified", "cache": "prefix",
                              **overrides})


def last(stream):
    for history in stream:
        pass
    return history


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window,drafts", [(4, 1), (8, 2), (8, 4), (16, 3)])
@pytest.mark.parametrize("penalty", [1.0, 1.5])
def test_greedy_is_the_causal_paths_greedy_decode(seed, window, drafts, penalty):
    lm = tiny_block_causal_lm(seed, stop_ids=())
    left_to_right = diffuse(lm, PROMPT, DiffusionConfig(gen_length=16, steps=16, block_length=1, cache="prefix",
                                                        repetition_penalty=penalty))
    history = last(stream_verified(lm, PROMPT, verified(repetition_penalty=penalty), window=window,
                                   drafts_per_step=drafts))
    assert history.canvas == left_to_right.canvas


@torch.no_grad()
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_answers_are_the_causal_paths_samples_whatever_the_window_drafts(seed, penalty):
    """Every token is one draw from the causal path's row given the tokens before it (penalised for them), with one
    uniform each, so the answer is the plain left-to-right sample of the same random stream, however the window
    filled the canvas."""
    lm = tiny_block_causal_lm(seed, stop_ids=())
    config = verified(temperature=1.0, top_p=0.9, seed=seed, repetition_penalty=penalty)
    generator, ids = torch.Generator().manual_seed(seed), list(PROMPT)
    for _ in range(config.gen_length):
        logits = lm.suppress(lm.module(torch.tensor([ids])).logits[0, -1].float())
        ids.append(pick(distribution(Penalties.of(config, lm)(logits, ids), config), config, generator))
    for window, drafts in ((4, 1), (8, 3)):
        history = last(stream_verified(lm, PROMPT, config, window=window, drafts_per_step=drafts))
        assert history.canvas == ids[len(PROMPT):]


@torch.no_grad()
@pytest.mark.parametrize("decode,algorithm", [(stream_verified, "verified"), (stream_speculative, "speculative")])
def test_the_verifier_samples_the_causal_path_over_its_causal_temperature(decode, algorithm):
    """A causal path calibrated to its teacher (DiffusionLM.causal_temperature, training/calibrate.py): both verifying
    decoders draw every token from its logits divided by that temperature, then by the sampler's."""
    lm = tiny_block_causal_lm(0, stop_ids=())
    config = verified(temperature=0.8, seed=3, algorithm=algorithm, block_length=3)
    uncalibrated = last(decode(lm, PROMPT, config)).canvas
    lm.causal_temperature = 1.7
    generator, ids = torch.Generator().manual_seed(config.seed), list(PROMPT)
    for _ in range(config.gen_length):
        logits = lm.suppress(lm.module(torch.tensor([ids])).logits[0, -1].float())
        ids.append(pick(distribution(logits / 1.7, config), config, generator))
    assert last(decode(lm, PROMPT, config)).canvas == ids[len(PROMPT):] != uncalibrated


def test_the_window_writes_drafts_ahead_of_the_text_and_the_verifier_revises_them():
    histories = [diffuse(tiny_block_causal_lm(seed, stop_ids=()), PROMPT, verified(gen_length=32, temperature=1.0,
                                                                                     seed=seed)) for seed in range(3)]
    assert any(history.out_of_order() > 0 for history in histories)
    assert any(history.revisions() > 0 for history in histories)
    for history in histories:
        assert MASK not in history.canvas
        frontier = -1  # the last committed position so far
        for step in history.steps:
            committed = [p for p, s in enumerate(history.first_committed) if s == history.steps.index(step) + 1]
            frontier = max([frontier] + committed)
            assert all(p > frontier for p in step.draft_positions)  # ghosts only right of the text


def test_tokens_per_forward_counts_verified_tokens_only():
    history = diffuse(tiny_block_causal_lm(3, stop_ids=()), PROMPT, verified(temperature=1.0, seed=4))
    assert history.committed() == 16 and history.tokens_per_forward() == 16 / history.forward_passes
    assert [step.forward_passes for step in history.steps] == list(range(1, len(history.steps) + 1))


def test_the_answer_ends_at_the_first_stop_and_no_draft_outlives_it():
    free = diffuse(tiny_block_causal_lm(4, stop_ids=()), PROMPT, verified())
    stop = free.canvas[5]
    history = diffuse(tiny_block_causal_lm(4, stop_ids=(stop,)), PROMPT, verified())
    end = free.canvas.index(stop)
    assert history.canvas[:end + 1] == free.canvas[:end + 1]
    assert set(history.canvas[end + 1:]) == {MASK}


def test_same_seed_same_output_and_streaming_equals_collected():
    lm = tiny_block_causal_lm(5, stop_ids=())
    config = verified(temperature=1.0, top_p=0.9, seed=3)
    streamed = [h.canvas for h in stream_diffusion(lm, PROMPT, config)]
    collected = diffuse(lm, PROMPT, config)
    assert streamed == [collected.canvas_at(k) for k in range(1, len(collected.steps) + 1)]


def test_a_stop_signal_ends_the_run():
    stop = threading.Event()
    stop.set()
    history = diffuse(tiny_block_causal_lm(6, stop_ids=()), PROMPT, verified(), stop=stop)
    assert history.stopped and not history.steps


def test_every_written_token_carries_candidates_and_a_mask_written_back_none():
    """At temperature 0 the verifier and the drafter both write their likeliest token: the first candidate."""
    history = diffuse(tiny_block_causal_lm(2, stop_ids=()), PROMPT, verified(gen_length=32, seed=2))
    assert history.revisions() > 0
    for step in history.steps:
        assert len(step.candidates) == len(step.tokens)
        for token, score, top in zip(step.tokens, step.scores, step.candidates):
            assert (top == []) == (token == MASK)
            assert token == MASK or (len(top) == 5 and top[0] == [token, pytest.approx(score, rel=1e-3)])


def test_what_it_cannot_take_is_refused():
    with pytest.raises(ConfigError, match="threshold"):
        verified(threshold=0.9)
    with pytest.raises(ConfigError, match="block-causal"):
        diffuse(tiny_diffusion_lm(1, shift_logits=True), PROMPT, verified())
    with pytest.raises(ConfigError, match="cannot keep given tokens"):
        diffuse(tiny_block_causal_lm(1, stop_ids=()), PROMPT, verified(),
                infill=Infill([MASK] * 15 + [TINY_EOS_ID], [15]))


def test_commit_keeps_agreeing_drafts_revises_the_others_and_masks_what_followed():
    top = [[9, 0.6], [8, 0.3]]  # the verifier's likeliest where it drew
    canvas = {5: 7, 6: 8, 8: 3, 9: 4}
    assert _commit(canvas, 4, [(7, 0.5, top), (9, 0.4, top)], MASK, everything=False) == {
        6: (9, 0.4, top), 8: (MASK, None, []), 9: (MASK, None, [])}
    assert canvas == {}
    canvas = {5: 7, 8: 3}
    assert _commit(canvas, 4, [(7, 0.5, top), (2, 0.4, top)], MASK, everything=False) == {6: (2, 0.4, top)}
    assert canvas == {8: 3}  # no draft replaced: the one further right stays
    assert _commit(canvas, 6, [(1, 0.5, top)], MASK, everything=True) == {7: (1, 0.5, top), 8: (MASK, None, [])}


def test_draft_takes_the_surest_masked_positions_never_two_neighbours():
    logits = torch.full((5, 6), 0.0)
    for row, (token, strength) in enumerate([(1, 9.0), (2, 8.0), (3, 1.0), (4, 7.0), (5, 6.0)]):
        logits[row, token] = strength
    canvas = {13: 0}
    chosen = _draft(canvas, logits, [10, 11, 12, 13, 14], last=9, count=2)
    assert sorted(chosen) == [10, 14] and canvas == {13: 0, 10: 1, 14: 5}  # 11 neighbours 10; 13 holds a draft
    token, confidence, top = chosen[10]
    assert token == 1 and top[0] == [1, pytest.approx(confidence, rel=1e-3)] and len(top) == 5
    assert _draft({}, logits, [10, 11, 12, 13, 14], last=10, count=1).keys() == {11}  # 10 is committed


def test_waiting_drafts_join_the_tree_as_a_branch():
    assert _waiting({5: 7, 6: 8, 9: 1}, 4, 4) == [7, 8] and _waiting({6: 8}, 4, 4) == []
    tree = Tree([7, 9, 8], [0, 1, 0]).with_branch([8, 2])
    assert (tree.tokens, tree.parents) == ([7, 9, 8, 2], [0, 1, 0, 3]) and tree.chain() == [7, 9]
    assert Tree().with_branch([3, 4]).chain() == [3, 4]


def test_the_window_sees_the_fed_tokens_and_itself_and_nothing_sees_it():
    layout = Layout(cached=2, fed=1, parents=[0], block=2, end=20)  # t0 at 2, a draft at 3, masks after each
    positions, mask = _with_window(layout, cached=2, fed=1, ahead=[3, 4, 5])
    q = len(layout.positions)
    assert positions.tolist() == layout.positions.tolist() + [3, 4, 5]
    assert mask[q:, :3].all() and mask[q:, 2 + q:].all() and not mask[q:, 3:2 + q].any()
    assert not mask[:q, 2 + q:].any() and torch.equal(mask[:q, :2 + q], layout.mask)
