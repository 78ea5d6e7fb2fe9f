"""History: plain data that replays itself (canvas at step k, the History as of step k, where the answer ends)."""

import json

import pytest

from fakes import small_config as config
from fakes import TINY_EOS_ID, TINY_MASK_ID, ar_history, diffusion_history, tiny_diffusion_lm
from generation import DiffusionConfig, diffuse
from generation.history import History, StepChanges, collect
from generation.sampling import CANDIDATES

MASK, EOS = 9, 0
PROMPT = [3, 14, 15, 92, 65]
SAMPLED = dict(temperature=1.0, top_p=0.9)


def four_steps() -> History:
    """Four positions; step 1 writes 0, step 2 writes 2 (EOS), step 3 revises 0, step 4 writes 1."""
    return diffusion_history(4, [[(0, 5, 0.5)], [(2, EOS, 0.6)], [(0, 6, 0.7)], [(1, 7, 0.8)]], mask_id=MASK,
                             stop_ids=(EOS,), seconds=0.1)


def three_tokens() -> History:
    return ar_history([5, 6, EOS], stop_ids=(EOS,), seconds=0.1)


def test_canvases_yields_every_steps_canvas_as_canvas_at_does():
    h = four_steps()
    assert [canvas for _, _, canvas in h.canvases()] == [h.canvas_at(k) for k in range(1, 5)]
    assert [number for number, _, _ in h.canvases()] == [1, 2, 3, 4]


def test_answer_end_is_the_first_stop_token_or_the_canvas_end():
    h = four_steps()
    assert h.answer_end() == 2 and h.answer_end([5, 7]) == 2 and h.answer_end([EOS, 5]) == 0
    assert h.answer_length(1) == 4 and h.answer_length() == 2


def test_answer_tokens_counts_written_answer_positions_not_masks():
    h = four_steps()
    assert h.answer_tokens(h.canvas_at(1)) == 1  # [5, M, M, M]: one written, no stop yet
    assert h.answer_tokens() == 2  # [6, 7, EOS, M]
    assert three_tokens().answer_tokens() == 2


def test_as_of_is_the_history_a_replay_shows():
    h = four_steps()
    past = h.as_of(2)
    assert len(past.steps) == 2 and past.canvas == h.canvas_at(2) == [5, MASK, EOS, MASK]
    assert past.last_changed == [1, None, 2, None] and past.first_committed == [1, None, 2, None]
    assert past.seconds == 0.2 and past.forward_passes == 2
    assert h.as_of(99).canvas == h.canvas and h.as_of(-1).canvas == h.initial
    assert len(h.steps) == 4  # the original is untouched


def test_as_of_an_ar_history_shortens_the_canvas():
    h = three_tokens()
    past = h.as_of(1)
    assert past.canvas == [5] and past.last_changed == [1] and past.first_committed == [1]


def test_a_copy_does_not_change_when_the_run_goes_on():
    h = four_steps()
    copy = h.copy()
    h.record([3], [8], [0.9], 0.1, 5)
    assert len(copy.steps) == 4 and copy.canvas[3] == MASK and copy.last_changed[3] is None
    assert h.canvas[3] == 8


def test_collect_returns_the_last_history_or_none():
    h = four_steps()
    assert collect(iter([h.as_of(1), h])) is h
    assert collect(iter([])) is None


def test_json_round_trip_keeps_what_replay_needs():
    h = four_steps()
    back = History.from_json(h.to_json())
    assert back == h and back.as_of(2).canvas == h.as_of(2).canvas


# ---- Histories the sampler records


def test_history_round_trips_json_losslessly():
    history = diffuse(tiny_diffusion_lm(10), PROMPT, config("entropy", **SAMPLED))
    restored = History.from_json(history.to_json())
    assert restored == history
    assert restored.canvas == history.canvas and restored.to_json() == history.to_json()


def test_origin_has_no_scores_and_round_trips():
    history = diffuse(tiny_diffusion_lm(10), PROMPT, config("origin"))
    assert all(score is None for step in history.steps for score in step.scores)
    assert History.from_json(history.to_json()) == history


def test_history_records_changes_not_snapshots():
    history = diffuse(tiny_diffusion_lm(11), PROMPT, DiffusionConfig(gen_length=64, steps=64))
    stored = sum(len(s.positions) for s in history.steps)
    assert stored == 64  # one entry per change, not steps x length (64 x 64)
    assert all(len(top) == CANDIDATES for step in history.steps for top in step.candidates)
    assert len(history.to_json()) < 64 * 64 * 4 + stored * CANDIDATES * 24  # a candidate: [id, 4 digits]


@pytest.mark.parametrize("algorithm", ["low_confidence", "entropy"])
def test_each_committed_token_keeps_its_five_likeliest_candidates_at_temperature_0(algorithm):
    history = diffuse(tiny_diffusion_lm(12), PROMPT, config(algorithm))
    for step in history.steps:
        assert len(step.candidates) == len(step.positions)
        for token, top in zip(step.tokens, step.candidates):
            probabilities = [p for _, p in top]
            assert top[0][0] == token and probabilities == sorted(probabilities, reverse=True)
            assert 0 < sum(probabilities) <= 1.001


def test_candidates_are_the_models_own_likeliest_even_where_top_p_left_one_token():
    """Dream's rule with top-p 0.05 draws the likeliest token; its hover still lists five, none at 0%."""
    history = diffuse(tiny_diffusion_lm(12), PROMPT, config("entropy", temperature=1.0, top_p=0.05, seed=1))
    for step in history.steps:
        for token, top in zip(step.tokens, step.candidates):
            probabilities = [p for _, p in top]
            assert len(top) == CANDIDATES and min(probabilities) > 0 and top[0][0] == token


def test_a_history_saved_without_candidates_still_loads():
    history = three_tokens()
    data = json.loads(history.to_json())
    for step in data["steps"]:
        del step["candidates"]
    assert History.from_json(json.dumps(data)) == history


def test_last_changed_and_first_committed_for_masked_models():
    history = diffuse(tiny_diffusion_lm(12), PROMPT, config(steps=8))
    for number, step in enumerate(history.steps, start=1):
        for position in step.positions:
            assert history.last_changed[position] == number == history.first_committed[position]


def test_history_handles_revisions():
    """A model that revises tokens: last_changed moves, first_committed stays."""
    history = History(kind="diffusion", prompt_ids=[1], initial=[7, 7, 7], mask_id=None, stop_ids=[0])
    history.record([0, 1, 2], [4, 5, 6], [0.1, 0.2, 0.3], 0.01, 1)
    history.record([1], [9], [0.9], 0.01, 2)
    assert history.canvas == [4, 9, 6] and history.canvas_at(1) == [4, 5, 6] and history.canvas_at(0) == [7, 7, 7]
    assert history.last_changed == [1, 2, 1] and history.first_committed == [1, 1, 1]
    history.record([2], [0], [None], 0.01, 3)
    assert history.answer_ids() == [4, 9] and history.answer_length(step=2) == 3


def test_history_takes_the_samplers_own_acceptance_when_given():
    """DiffusionGemma drafts every position at once but accepts them over several steps."""
    history = History(kind="diffusion", prompt_ids=[1], initial=[7, 7, 7], mask_id=7, stop_ids=[0])
    history.record([0, 1, 2], [4, 5, 6], [None] * 3, 0.01, 1, committed=[0])
    history.record([1, 2], [8, 9], [None] * 2, 0.01, 2, committed=[0, 2])
    history.record([1], [3], [None], 0.01, 3, committed=[1])
    assert history.first_committed == [1, 3, 2] and history.last_changed == [1, 3, 2]


def test_answer_ends_at_first_stop_token_and_canvas_keeps_the_rest():
    history = History(kind="diffusion", prompt_ids=[1], initial=[TINY_MASK_ID] * 5, mask_id=TINY_MASK_ID,
                      stop_ids=[TINY_EOS_ID])
    history.record([0, 1, 2, 3, 4], [20, 21, TINY_EOS_ID, 22, TINY_EOS_ID], [0.5] * 5, 0.1, 1)
    assert history.answer_ids() == [20, 21]
    assert history.canvas[3] == 22


def test_timings_are_recorded():
    history = diffuse(tiny_diffusion_lm(13), PROMPT, config(steps=8))
    assert all(s.seconds > 0 for s in history.steps)
    assert history.elapsed()[-1] == pytest.approx(history.seconds)
    assert [s.forward_passes for s in history.steps] == list(range(1, 9))
    assert history.seconds_to_first_token() == history.elapsed()[0]


@pytest.mark.parametrize("seed", range(20))
def test_answer_tokens_per_step_equals_counting_every_canvas(seed):
    """The one-pass count the race chart plots, against answer_tokens on each canvas (random stops, remasks, fixed)."""
    import random

    rng = random.Random(seed)
    length = 12
    fixed = sorted(rng.sample(range(length), rng.randint(0, 4)))
    history = diffusion_history(length, [])
    history.fixed = fixed
    tokens = [TINY_MASK_ID, TINY_EOS_ID, 5, 6, 7]
    for number in range(1, 15):
        positions = rng.sample([p for p in range(length) if p not in fixed], 2)
        history.record(positions, [rng.choice(tokens) for _ in positions], [None, None], 0.01, number)
    assert history.answer_tokens_per_step() == [history.answer_tokens(c) for _, _, c in history.canvases()]
    ar = ar_history([rng.choice([5, 6, TINY_EOS_ID]) for _ in range(10)])
    assert ar.answer_tokens_per_step() == [ar.answer_tokens(c) for _, _, c in ar.canvases()]


def test_history_keeps_cache_mode_and_computed_positions_through_json():
    history = diffuse(tiny_diffusion_lm(11), PROMPT, DiffusionConfig(gen_length=16, steps=8, block_length=8,
                                                                     cache="dual"))
    restored = History.from_json(history.to_json())
    assert restored == history and restored.cache == "dual"
    assert restored.computed_positions == sum(s.computed_positions for s in history.steps) > 0


def test_history_saved_before_caching_still_loads():
    data = json.loads(diffuse(tiny_diffusion_lm(12), PROMPT, DiffusionConfig(gen_length=8, steps=4)).to_json())
    del data["settings"]["cache"]
    for step in data["steps"]:
        del step["computed_positions"]
    old = History.from_json(json.dumps(data))
    assert old.cache == "none" and old.computed_positions is None and old.steps[0].computed_positions is None


def test_tokens_per_forward_and_work_saved_worked_example():
    """A prompt of 6 and a canvas of 16 (22 positions); 8 forwards commit 2 positions each and compute 44 in all,
    where uncached forwards would compute 8 x 22 = 176."""
    history = History(kind="diffusion", prompt_ids=list(range(6)), initial=[MASK] * 16, mask_id=MASK)
    for i, computed in enumerate([8, 4, 4, 4, 8, 4, 4, 8]):
        history.record([2 * i, 2 * i + 1], [5, 6], [0.9, 0.8], 0.01, i + 1, computed_positions=computed,
                       uncached_positions=22)
    assert history.committed() == 16 and history.tokens_per_forward() == 2.0
    assert history.computed_positions == 44 and history.work_saved() == 176 / 44 == 4.0
    assert four_steps().work_saved() is None and four_steps().tokens_per_forward() == 3 / 4  # positions not recorded


def test_out_of_order_counts_tokens_written_before_a_masked_position_to_their_left():
    history = History(kind="diffusion", prompt_ids=[1], initial=[MASK] * 3, mask_id=MASK, stop_ids=[EOS])
    history.record([2], [7], [0.5], 0.01, 1)
    history.record([0, 1], [5, 6], [0.5, 0.5], 0.01, 2)
    assert history.out_of_order() == pytest.approx(1 / 3)


def test_left_to_right_canvases_are_never_out_of_order():
    assert three_tokens().out_of_order() == 0.0
    history = History(kind="diffusion", prompt_ids=[1], initial=[MASK] * 3, mask_id=MASK, stop_ids=[EOS])
    for position in range(3):
        history.record([position], [5], [0.5], 0.01, position + 1)
    assert history.out_of_order() == 0.0 and history.revisions() == 0


def test_out_of_order_counts_a_position_from_the_step_it_last_left_the_mask():
    """A draft written early, sent back to the mask and written again counts from its last writing."""
    history = History(kind="diffusion", prompt_ids=[1], initial=[MASK] * 2, mask_id=MASK, stop_ids=[EOS])
    history.record([1], [7], [0.5], 0.01, 1)
    history.record([1], [MASK], [None], 0.01, 2)
    history.record([0], [5], [0.5], 0.01, 3)
    history.record([1], [6], [0.5], 0.01, 4)
    assert history.out_of_order() == 0.0
    assert history.revisions() == 1  # the draft 7 sent back to the mask; writing 6 into a mask is no revision


def test_revisions_count_changes_of_written_tokens_only():
    history = History(kind="diffusion", prompt_ids=[1], initial=[MASK] * 2, mask_id=MASK, stop_ids=[EOS])
    history.record([0], [5], [0.5], 0.01, 1)
    history.record([0, 1], [6, 7], [0.5, 0.5], 0.01, 2)
    history.record([1], [7], [0.5], 0.01, 3)  # the same token again: no change
    assert history.revisions() == 1


def test_a_noise_models_first_draw_over_its_initial_tokens_is_no_revision():
    history = History(kind="diffusion", prompt_ids=[1], initial=[7, 7], mask_id=None, stop_ids=[0])
    history.record([0, 1], [4, 5], [None] * 2, 0.01, 1, committed=[0])
    history.record([1], [9], [None], 0.01, 2, committed=[1])
    assert history.revisions() == 1 and history.out_of_order() == 0.0


def test_drafts_round_trip_json():
    history = History(kind="diffusion", prompt_ids=[1], initial=[MASK] * 3, mask_id=MASK, stop_ids=[EOS])
    history.record([0], [5], [0.5], 0.01, 1, draft_positions=[1, 2], draft_tokens=[6, 7])
    assert history.canvas == [5, MASK, MASK]
    again = History.from_json(history.to_json())
    assert again.steps[-1].draft_positions == [1, 2] and again.steps[-1].draft_tokens == [6, 7]


def test_changes_name_what_a_step_committed_revised_drafted_and_rejected():
    history = History(kind="diffusion", prompt_ids=[1], initial=[MASK] * 3, mask_id=MASK, stop_ids=[EOS])
    history.record([0], [5], [0.5], 0.01, 1, draft_positions=[1, 2], draft_tokens=[7, 8])
    history.record([1, 0], [7, 6], [0.5, 0.5], 0.01, 2)  # keeps the draft at 1, drops the one at 2, revises 0
    assert history.changes(1) == StepChanges(committed=[0], revised=[], drafted=[1, 2], rejected=[])
    assert history.changes(2) == StepChanges(committed=[1], revised=[0], drafted=[], rejected=[2])
    assert history.changes(0) == StepChanges([], [], [], []) and history.has_drafts()
    assert history.as_of(1).changes(1) == history.changes(1)
