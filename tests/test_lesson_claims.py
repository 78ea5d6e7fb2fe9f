"""Each lesson's key claim about what the visitor will see holds on the real embedded models at the lesson's own
settings (slow): its diffusion run as the page makes it (page.race.given_tokens: infilling, fallbacks, the model
loaded as the page loads it, seed and temperature as the lesson sets them). The lessons' numbers come from these
runs; a test failing here means a lesson's text no longer says what happens. The AR panel runs only where the
lesson's claim is about it (the sweep's judge); that it writes left to right holds by construction."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import pytest

import generation
from generation import History, diffuse, load_model
from page.lessons import Lesson, lessons
from page.race import Panel, given_tokens
from page.sweep import SweepPlan, base_config, parse_steps, sweep_work

pytestmark = pytest.mark.slow


@lru_cache(maxsize=None)
def model(name: str):
    return load_model(name, device="cpu")  # as the page loads it (tests/browser_tour.real_models)


def lesson(prefix: str) -> Lesson:
    return next(found for found in lessons() if found.slug.startswith(prefix))


def run(chosen: Lesson, **changes) -> History:
    """The lesson's diffusion run, with `changes` to its settings where the lesson asks the visitor to make them."""
    settings = replace(chosen.settings, **changes)
    lm = model(chosen.diffusion_model)
    config, given = given_tokens(Panel(generation.DIFFUSION, chosen.diffusion_model, model=lm), settings.infill(),
                                 settings.configs()[0])
    return diffuse(lm, lm.prompt_ids([{"role": "user", "content": chosen.prompt}]), config, **given)


def words(history: History, name: str) -> str:
    return model(name).tokenizer.decode(history.answer_ids(), skip_special_tokens=True)


def commits(history: History) -> list[int]:
    return [len(history.changes(step).committed) for step in range(1, len(history.steps) + 1)]


def test_two_orders_most_diffusion_tokens_are_written_with_a_blank_to_their_left():
    history = run(lesson("01"))
    assert history.out_of_order() > 0.6  # the lesson says 85%


def test_fewer_steps_only_the_most_steps_read_well_and_the_threshold_takes_about_one_token_a_step():
    chosen = lesson("02")
    rows = {item.label: item for item in sweep_work(model, (chosen.diffusion_model, chosen.ar_model), chosen.prompt,
                                                     base_config(chosen.settings), parse_steps(chosen.sweep), True)
            if not isinstance(item, SweepPlan)}
    best = rows["48 steps"].perplexity
    assert all(rows[f"{steps} steps"].perplexity > 3 * best for steps in (6, 12, 24)), rows  # 21, 64, 25 vs 3.4
    assert rows["6 steps"].entropy < rows["48 steps"].entropy - 1  # the loops: 1.8 vs 3.4 nats
    assert rows["threshold 0.9"].steps > 36  # 47 steps for 48 tokens


def test_parallel_conflicts_repeat_words_at_four_a_step_and_the_threshold_cures_it():
    chosen = lesson("03")
    hurried, sure = run(chosen), run(chosen, threshold=0.9)
    assert set(commits(hurried)) == {4}
    assert words(hurried, chosen.diffusion_model).count("Gra fruit:::") == 3
    per_step = commits(sure)
    assert per_step.count(1) > len(per_step) / 2  # here one token every step
    text = words(sure, chosen.diffusion_model)
    assert "fruit" not in text and "::" not in text and "Strawberries" in text


def test_infilling_writes_only_the_blanks_and_keeps_the_given_words():
    chosen = lesson("04")
    history = run(chosen)
    assert sum(commits(history)) == 12  # 4 + 8 blank positions, nothing else
    text = words(history, chosen.diffusion_model)
    assert text.startswith("Paris is the capital of") and "and it is famous for" in text


def test_the_dual_cache_saves_work_and_its_answer_parts_from_the_uncached_one():
    chosen = lesson("05")
    cached, uncached = run(chosen), run(chosen, cache="none")
    assert cached.work_saved() > 3  # the lesson says 4x
    assert cached.answer_ids() != uncached.answer_ids()


def test_speculative_decoding_fills_left_to_right_several_tokens_a_forward_and_drops_drafts():
    history = run(lesson("06"))
    changes = [history.changes(step) for step in range(1, len(history.steps) + 1)]
    assert history.out_of_order() == 0 and history.revisions() == 0
    assert history.tokens_per_forward() > 1.5  # 2.3
    assert any(change.rejected for change in changes) and any(change.drafted for change in changes)


def test_verified_diffusion_revises_tokens_and_writes_some_out_of_order():
    history = run(lesson("07"))
    assert history.revisions() > 10  # 54
    assert history.out_of_order() > 0.1  # 31%
    assert history.tokens_per_forward() > 1.3  # 48 tokens in 26 steps
