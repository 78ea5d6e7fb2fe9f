"""generation/infill.py and the sampler started from it: templates and position:word constraints become a
canvas; on tiny random models the fixed tokens never change, every blank is filled, no stop id lands
left of given text, and the schedules (blocks, even split, Dream, threshold) still commit every mask."""

import pytest

from fakes import TINY_EOS_ID, TINY_MASK_ID, tiny_diffusion_lm
from fakes import small_config as config
from generation import ConfigError, History, diffuse, stream_diffusion
from generation.config import UNMASKING_ALGORITHMS, DiffusionConfig
from generation.infill import CONSTRAINTS, TEMPLATE, Infill, end_padding, parse_constraints, parse_template

PROMPT = [3, 14, 15, 92, 65]
END_OF_TURN, PAD = 1, TINY_EOS_ID  # the tiny model's stop ids are (0,); tests that pad pass both
STOPS = (TINY_EOS_ID,)


def encode(text: str) -> list[int]:
    """One id per character, never the mask or a stop id: encode('ab') -> [67, 68]."""
    return [2 + ord(c) % 90 for c in text]


def tiny_canvas(template: str, gen_length: int = 16, default_blank: int = 2) -> Infill:
    return parse_template(template, default_blank).canvas(encode, TINY_MASK_ID, STOPS, gen_length)


# ---------------------------------------------------------------- parsing


def test_template_pieces_blank_lengths_and_the_space_moves_into_the_blank():
    spec = parse_template("The capital is ___, famous for ___8.", default_blank=3)
    assert spec.kind == TEMPLATE and spec.pieces == ("The capital is", 3, ", famous for", 8, ".")
    assert spec.describe() == "2 blanks (3 + 8 tokens)"


@pytest.mark.parametrize("text, message", [
    ("no blank here", "has no blank"), ("", "has no blank"), ("a ___0 b", "0 tokens"), ("a __ b", "has no blank"),
])
def test_bad_templates_say_what_to_write(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_template(text)


def test_constraints_read_like_llada_and_fast_dllm_demos():
    spec = parse_constraints(" 5:upon, 0:Once ,")
    assert spec.kind == CONSTRAINTS and spec.words == ((0, "Once"), (5, "upon"))


@pytest.mark.parametrize("text, message", [
    ("", "no constraints"), ("Once", "cannot read"), ("x:Once", "cannot read"), ("3:", "cannot read"),
    ("1:a, 1:b", "two words at position 1"), ("-1:a", "cannot read"),
])
def test_bad_constraints_say_what_to_write(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_constraints(text)


# ---------------------------------------------------------------- the canvas


def test_template_canvas_masks_the_blanks_and_pads_with_the_end_of_turn():
    infill = parse_template("ab ___ c", 2).canvas(encode, TINY_MASK_ID, (END_OF_TURN, PAD), 8)
    assert infill.initial == encode("ab") + [TINY_MASK_ID] * 2 + encode(" c") + [END_OF_TURN, PAD]
    assert infill.fixed == [0, 1, 4, 5, 6, 7] and infill.blanks == 2


def test_end_padding_is_end_of_turn_then_padding():
    assert end_padding([2, 0], 3) == [2, 0, 0] and end_padding([2, 0], 0) == []


def test_constraints_canvas_places_each_word_with_its_leading_space():
    infill = parse_constraints("0:ab, 4:c").canvas(encode, TINY_MASK_ID, STOPS, 8)
    assert infill.initial == encode("ab") + [TINY_MASK_ID] * 2 + encode(" c") + [TINY_MASK_ID] * 2
    assert infill.fixed == [0, 1, 4, 5]


@pytest.mark.parametrize("build, message", [
    (lambda: tiny_canvas("ab ___20 c", gen_length=16), "blank of 20 tokens is longer than the whole answer canvas"),
    (lambda: tiny_canvas("a long text ___ here", gen_length=8), "raise the answer length to at least"),
    (lambda: parse_constraints("7:abc").canvas(encode, TINY_MASK_ID, STOPS, 8), "positions 0-7"),
    (lambda: parse_constraints("0:abc, 2:d").canvas(encode, TINY_MASK_ID, STOPS, 8), "overlaps"),
])
def test_what_does_not_fit_the_canvas_says_how_to_fix_it(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_the_prefix_is_the_given_text_before_the_first_blank():
    assert parse_template("ab ___ c").prefix(encode) == encode("ab")
    assert parse_template("___ c").prefix(encode) == []
    assert parse_constraints("0:ab, 5:c").prefix(encode) == encode("ab")


# ---------------------------------------------------------------- the sampler started from it


def fixed_never_change(history: History) -> bool:
    return all(history.canvas_at(k)[p] == history.initial[p]
               for k in range(len(history.steps) + 1) for p in history.fixed)


@pytest.mark.parametrize("algorithm", UNMASKING_ALGORITHMS)
def test_fixed_tokens_never_change_and_every_blank_is_filled(algorithm):
    infill = tiny_canvas("ab ___ cd ___3 e", gen_length=16)
    history = diffuse(tiny_diffusion_lm(4), PROMPT, config(algorithm, temperature=1.0), infill=infill)
    assert history.fixed == infill.fixed and fixed_never_change(history)
    assert TINY_MASK_ID not in history.canvas
    assert not {p for step in history.steps for p in step.positions} & set(infill.fixed)
    assert len(history.steps) == history.planned_steps


def test_no_stop_id_is_proposed_left_of_given_text():
    lm = tiny_diffusion_lm(5, never_propose=(TINY_MASK_ID, *range(1, 90)))  # left: ids 90-94 and the stop id 0
    infill = parse_constraints("13:a").canvas(encode, TINY_MASK_ID, STOPS, 16)
    history = diffuse(lm, PROMPT, config(temperature=1.0), infill=infill)
    assert TINY_EOS_ID not in history.canvas[:13]


def test_blocks_schedule_only_their_own_masks():
    """Blocks of 8, 4 steps each: block 0 has 3 masks (3 steps of 1), block 1 none (no step)."""
    initial = [TINY_MASK_ID] * 3 + encode("abcde") + encode("fghijklm")
    infill = Infill(initial, list(range(3, 16)))
    history = diffuse(tiny_diffusion_lm(6), PROMPT, config(steps=8, block_length=8), infill=infill)
    assert [len(step.positions) for step in history.steps] == [1, 1, 1]
    assert history.planned_steps == 3 and TINY_MASK_ID not in history.canvas


def test_the_even_split_counts_masks_not_positions():
    """One block of 16 with 10 masks over 4 steps: LLaDA's split 3, 3, 2, 2."""
    initial = encode("abc") + [TINY_MASK_ID] * 10 + encode("def")
    infill = Infill(initial, [0, 1, 2, 13, 14, 15])
    history = diffuse(tiny_diffusion_lm(7), PROMPT, DiffusionConfig(gen_length=16, steps=4), infill=infill)
    assert [len(step.positions) for step in history.steps] == [3, 3, 2, 2]


def test_a_threshold_run_also_commits_every_mask():
    infill = tiny_canvas("a ___ b ___ c", gen_length=16)
    history = diffuse(tiny_diffusion_lm(8), PROMPT, config(threshold=0.5), infill=infill)
    assert TINY_MASK_ID not in history.canvas and fixed_never_change(history)


def test_the_history_round_trips_json_with_its_fixed_positions():
    history = diffuse(tiny_diffusion_lm(9), PROMPT, config(), infill=tiny_canvas("ab ___ c"))
    again = History.from_json(history.to_json())
    assert again == history and again.fixed == history.fixed


def test_given_tokens_do_not_count_as_written():
    history = diffuse(tiny_diffusion_lm(9), PROMPT, config(), infill=tiny_canvas("ab ___ c"))
    assert history.answer_tokens(history.initial) == 0
    assert history.answer_tokens_per_step()[-1] == history.answer_tokens()


@pytest.mark.parametrize("infill, message", [
    (Infill([TINY_MASK_ID] * 8, []), "has 8 positions but gen_length is 16"),
    (Infill(encode("a" * 16), list(range(16))), "no blank"),
])
def test_a_canvas_that_does_not_match_the_config_is_refused(infill, message):
    with pytest.raises(ConfigError, match=message):
        next(stream_diffusion(tiny_diffusion_lm(1), PROMPT, config(), infill=infill))


def test_text_too_long_for_the_context_is_refused():
    lm = tiny_diffusion_lm(1)
    with pytest.raises(ConfigError, match="exceeds the model's context of 512"):
        next(stream_diffusion(lm, PROMPT * 100, config(), infill=tiny_canvas("ab ___ c")))


def test_a_model_that_runs_its_own_loop_cannot_infill():
    class OwnLoop:
        runs_own_loop = True
        name = "own-loop"

    with pytest.raises(ConfigError, match="cannot fill blanks"):
        next(stream_diffusion(OwnLoop(), PROMPT, config(), infill=tiny_canvas("ab ___ c")))

