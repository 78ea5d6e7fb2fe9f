"""Lessons (page/lessons.py): every shipped file loads with settings the page can run; bad files fail naming the
file and what is wrong; the take-away page (visualize/takeaway.py) is one file that needs no network."""

from __future__ import annotations

import html
import re

import gradio as gr
import pytest

from generation.presets import AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_SMOLLM2
from page.lessons import (LESSONS_DIR, LOOK_AT, SECTIONS, LessonError, lessons, load_lessons, next_lesson,
                          parse_lesson)
from page.session import Session
from page.settings import RECOMMENDED_FIELDS, recommended_settings
from visualize import charts
from visualize.takeaway import takeaway_html

GOOD = """---
title: A lesson
prompt: Say hi.
settings: {gen_length: 48, algorithm: low_confidence, block_length: 48, steps: 12}
open: [charts]
look_at: map
---
Watch the map.
"""


def test_every_shipped_lesson_loads_and_its_settings_run():
    shipped = load_lessons(LESSONS_DIR)
    assert len(shipped) >= 7
    assert len({lesson.title for lesson in shipped}) == len(shipped)
    for lesson in shipped:
        diffusion, ar = lesson.settings.configs()  # ConfigError if any value is not one the page can run
        assert diffusion.gen_length <= 64, f"{lesson.slug}: keep lessons short, they run on a CPU"
        assert lesson.diffusion_model in (BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_SMOLLM2) and lesson.ar_model == AR_SMOLLM2
        assert lesson.look_at in LOOK_AT and set(lesson.open) <= set(SECTIONS)
        assert "arXiv" in lesson.body, f"{lesson.slug}: cite one source"


def test_the_issues_topics_each_have_a_lesson():
    algorithms = {lesson.settings.algorithm for lesson in lessons()}
    assert {"speculative", "verified", "low_confidence"} <= algorithms
    assert any(lesson.sweep for lesson in lessons())
    assert any(lesson.settings.infill() is not None for lesson in lessons())
    assert any(lesson.settings.cache == "dual" for lesson in lessons())


def test_a_lesson_fills_unnamed_settings_from_the_models_recommended_ones():
    lesson = parse_lesson(GOOD, "01-good")
    assert lesson.diffusion_model == BLOCK_DIFFUSION_SMOLLM2 and lesson.settings.steps == 12
    assert lesson.settings.cache == "prefix"  # the block model's recommended cache, not named by the lesson
    assert (lesson.settings.repetition_penalty, lesson.settings.dry_multiplier) == (1.0, 0.0)  # decoders as published
    assert lesson.settings.temperature == recommended_settings(BLOCK_DIFFUSION_SMOLLM2).temperature  # the page's
    penalised = parse_lesson(GOOD.replace("steps: 12}", "steps: 12, repetition_penalty: 1.2}"), "01-good")
    assert penalised.settings.repetition_penalty == 1.2


@pytest.mark.parametrize("change, message", [
    (("look_at: map", "look_at: map\ncolour: red"), "unknown key(s) colour"),
    (("steps: 12}", "steps: 12, speed: 3}"), "unknown setting(s) speed"),
    (("block_length: 48, steps: 12}", "block_length: 16, steps: 13}"), "steps 13 must be a multiple"),
    (("look_at: map", "look_at: ceiling"), "look_at 'ceiling'"),
    (("open: [charts]", "open: [attic]"), "open 'attic'"),
    (("title: A lesson\n", ""), "missing title"),
    (("Watch the map.", ""), "body is empty"),
])
def test_a_bad_lesson_says_which_file_and_what(change, message):
    with pytest.raises(LessonError, match=re.escape(message)) as error:
        parse_lesson(GOOD.replace(*change), "09-bad")
    assert str(error.value).startswith("09-bad:")


def test_a_file_without_front_matter_is_refused():
    with pytest.raises(LessonError, match="front matter"):
        parse_lesson("Just text.", "09-bad")


def test_next_lesson_goes_round():
    titles = [lesson.title for lesson in lessons()]
    assert next_lesson(None).title == titles[0]
    assert next_lesson(titles[0]).title == titles[1]
    assert next_lesson(titles[-1]).title == titles[0]


def test_a_missing_feature_is_said_and_the_body_is_escaped_markdown():
    lesson = parse_lesson(GOOD.replace("look_at: map", "look_at: map\nmissing: a dilated order")
                          .replace("Watch the map.", "*Watch* <script>x</script>"), "01-m")
    text = lesson.text_html()
    assert "Not in Unmask yet:</b> a dilated order" in text and "<em>Watch</em>" in text and "<script>" not in text


def test_the_takeaway_is_one_file_with_no_network(diffusion, autoregressive):
    from fakes import byte_level_tokenizer

    tokenizer = byte_level_tokenizer()
    page = takeaway_html("A lesson", "Say hi.", "<p>Watch the map.</p>",
                         [("Diffusion", diffusion, tokenizer), ("Autoregressive", autoregressive, tokenizer)],
                         [("Map", charts.denoising_map_figure(diffusion)), ("Race", charts.race_figure(diffusion,
                                                                                                     autoregressive))])
    assert "Watch the map." in page and page.count("<iframe") == 2
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page), "everything inline: no fetched files"
    assert page.count("Plotly.newPlot") >= 2 and page.count("plotly.js v") <= 2  # plotly inlined once


# ---------------------------------------------------------------- the page's lesson handlers (tiny models, no browser)

CONTROL_IDS = {"gen_length": "um-gen-length", "steps": "um-steps", "block_length": "um-block-length",
               "algorithm": "um-algorithm", "temperature": "um-temperature", "top_p": "um-top-p",
               "alg_temp": "um-alg-temp", "threshold": "um-threshold", "seed": "um-seed", "cache": "um-cache",
               "task": "um-task", "template": "um-template", "blank_length": "um-blank-length"}
SECTION_IDS = {"infill": "um-infill", "settings": "um-settings", "charts": "um-charts", "sweep": "um-sweep",
               "export": "um-export"}


@pytest.fixture(scope="module")
def demo():
    import app
    from fakes import TINY_AR, TINY_DIFFUSION, tiny_load

    return app.build_demo(load=tiny_load, diffusion_model=TINY_DIFFUSION, ar_model=TINY_AR)


def lesson_event(demo, elem_id: str, event: str):
    """The registered handler behind a lesson trigger (the picker's input, Next lesson's click) and its index."""
    for index, fn in demo.fns.items():
        if any(getattr(demo.blocks.get(block), "elem_id", None) == elem_id and name == event
               for block, name in fn.targets):
            return index, fn.fn
    raise AssertionError(f"no {event} handler on #{elem_id}")


def by_id(update: dict) -> dict:
    """An event's {component: value} as {elem_id: value} (layout containers by their elem_id too)."""
    return {block.elem_id: value for block, value in update.items() if getattr(block, "elem_id", None)}


def test_picking_a_lesson_sets_prompt_models_every_setting_and_opens_its_sections(demo):
    _, pick = lesson_event(demo, "um-lesson-pick", "input")
    for lesson in lessons():
        update = by_id(pick(lesson.title, Session()))
        assert update["um-lesson-pick"] == lesson.title and update["um-prompt"] == lesson.prompt
        assert (update["um-diffusion-model"], update["um-ar-model"]) == (lesson.diffusion_model, lesson.ar_model)
        for name, elem_id in CONTROL_IDS.items():
            assert update[elem_id] == getattr(lesson.settings, name), (lesson.slug, name)
        assert update["um-sweep-steps"] == lesson.sweep
        for section, elem_id in SECTION_IDS.items():
            assert update[elem_id].open == (section in lesson.open), (lesson.slug, section)
        assert update["um-lesson-box"].visible and html.escape(lesson.title) in update["um-lesson"]
        assert update["um-lesson-takeaway"].interactive is False  # until this lesson's run has finished


def test_a_lesson_runs_generate_then_its_sweep_then_writes_its_takeaway(demo):
    for elem_id, event in (("um-lesson-pick", "input"), ("um-lesson-next", "click")):
        index, _ = lesson_event(demo, elem_id, event)
        chain = [index]
        while follower := next((i for i, fn in demo.fns.items() if fn.trigger_after == chain[-1]), None):
            chain.append(follower)
        names = [demo.fns[i].fn.__name__ for i in chain]
        assert names[1:] == ["run", "lesson_sweep", "takeaway"], names
        assert demo.fns[chain[1]].trigger_only_on_success  # no run when the lesson could not be applied


def test_next_lesson_moves_on_in_order_and_wraps_to_the_first(demo):
    _, following = lesson_event(demo, "um-lesson-next", "click")
    titles = [lesson.title for lesson in lessons()]
    seen, title = [], None  # none picked yet: Next lesson starts at the first
    for _ in range(len(titles) + 1):
        title = by_id(following(title, Session()))["um-lesson-pick"]
        seen.append(title)
    assert seen == [*titles, titles[0]]


def test_a_lesson_starts_a_fresh_conversation_but_not_under_a_running_one(demo):
    _, pick = lesson_event(demo, "um-lesson-pick", "input")
    earlier = Session(diffusion_messages=[{"role": "user", "content": "hi"}], turns=[("hi", "a", "b")])
    pick(lessons()[0].title, earlier)
    assert earlier.diffusion_messages == [] and earlier.turns == []
    running = Session(diffusion_messages=[{"role": "user", "content": "hi"}], running=True)
    pick(lessons()[0].title, running)
    assert running.diffusion_messages  # a run in progress keeps its chat; Generate then says it is busy
    with pytest.raises(gr.Error, match="Pick a lesson"):
        pick("No such lesson", Session())


def test_a_lessons_model_keeps_the_lessons_settings_when_its_change_lands_last(demo):
    recommend = next(fn.fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "recommend")
    for lesson in lessons():
        kept = recommend(lesson.diffusion_model, lesson.settings.gen_length, lesson.title)
        plain = recommend(lesson.diffusion_model, lesson.settings.gen_length, None)
        recommended = recommended_settings(lesson.diffusion_model, lesson.settings.gen_length)
        assert kept == tuple(getattr(lesson.settings, name) for name in RECOMMENDED_FIELDS), lesson.slug
        assert plain == tuple(getattr(recommended, name) for name in RECOMMENDED_FIELDS)
