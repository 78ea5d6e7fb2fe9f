"""Lessons (page/lessons.py): every shipped file loads with settings the page can run; bad files fail naming the
file and what is wrong; the take-away page (visualize/takeaway.py) is one file that needs no network."""

from __future__ import annotations

import re

import pytest

from generation.presets import AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_SMOLLM2
from page.lessons import (LESSONS_DIR, LOOK_AT, SECTIONS, LessonError, lessons, load_lessons, next_lesson,
                          parse_lesson)
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
