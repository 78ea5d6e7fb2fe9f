"""History: plain data that replays itself (canvas at step k, the History as of step k, where the answer ends)."""

from generation.history import AUTOREGRESSIVE, DIFFUSION, History, collect

MASK, EOS = 9, 0


def diffusion_history() -> History:
    """Four positions; step 1 writes 0, step 2 writes 2 (EOS), step 3 revises 0, step 4 writes 1."""
    h = History(kind=DIFFUSION, prompt_ids=[1], initial=[MASK] * 4, mask_id=MASK, stop_ids=[EOS])
    h.record([0], [5], [0.5], 0.1, 1)
    h.record([2], [EOS], [0.6], 0.1, 2)
    h.record([0], [6], [0.7], 0.1, 3)
    h.record([1], [7], [0.8], 0.1, 4)
    return h


def ar_history(tokens=(5, 6, EOS)) -> History:
    h = History(kind=AUTOREGRESSIVE, prompt_ids=[1], initial=[], stop_ids=[EOS])
    for i, token in enumerate(tokens):
        h.record([i], [token], [0.5], 0.1, i + 1)
    return h


def test_canvases_yields_every_steps_canvas_as_canvas_at_does():
    h = diffusion_history()
    assert [canvas for _, _, canvas in h.canvases()] == [h.canvas_at(k) for k in range(1, 5)]
    assert [number for number, _, _ in h.canvases()] == [1, 2, 3, 4]


def test_answer_end_is_the_first_stop_token_or_the_canvas_end():
    h = diffusion_history()
    assert h.answer_end() == 2 and h.answer_end([5, 7]) == 2 and h.answer_end([EOS, 5]) == 0
    assert h.answer_length(1) == 4 and h.answer_length() == 2


def test_answer_tokens_counts_written_answer_positions_not_masks():
    h = diffusion_history()
    assert h.answer_tokens(h.canvas_at(1)) == 1  # [5, M, M, M]: one written, no stop yet
    assert h.answer_tokens() == 2  # [6, 7, EOS, M]
    assert ar_history().answer_tokens() == 2


def test_as_of_is_the_history_a_replay_shows():
    h = diffusion_history()
    past = h.as_of(2)
    assert len(past.steps) == 2 and past.canvas == h.canvas_at(2) == [5, MASK, EOS, MASK]
    assert past.last_changed == [1, None, 2, None] and past.first_committed == [1, None, 2, None]
    assert past.seconds == 0.2 and past.forward_passes == 2
    assert h.as_of(99).canvas == h.canvas and h.as_of(-1).canvas == h.initial
    assert len(h.steps) == 4  # the original is untouched


def test_as_of_an_ar_history_shortens_the_canvas():
    h = ar_history()
    past = h.as_of(1)
    assert past.canvas == [5] and past.last_changed == [1] and past.first_committed == [1]


def test_a_copy_does_not_change_when_the_run_goes_on():
    h = diffusion_history()
    copy = h.copy()
    h.record([3], [8], [0.9], 0.1, 5)
    assert len(copy.steps) == 4 and copy.canvas[3] == MASK and copy.last_changed[3] is None
    assert h.canvas[3] == 8


def test_collect_returns_the_last_history_or_none():
    h = diffusion_history()
    assert collect(iter([h.as_of(1), h])) is h
    assert collect(iter([])) is None


def test_json_round_trip_keeps_what_replay_needs():
    h = diffusion_history()
    back = History.from_json(h.to_json())
    assert back == h and back.as_of(2).canvas == h.as_of(2).canvas
