"""The page in a real browser: Debian chromium driven by playwright, against the app on loopback.

The tours (tests/browser_tour.py, shared with `make screenshots`) type a prompt, press Generate, watch
the diffusion canvas change over several frames and AR tokens appear, use the replay slider and
autoplay, check the legend, flag a bad setting, fill blanks, run the steps sweep, and fail on any
console error. Here the screenshots go to a temporary folder, so the suite leaves docs/ untouched.
Both models are the real embedded pair.

This test fails, never skips, when the browser cannot run: `make test` installs chromium first.
"""

from __future__ import annotations

import pytest

import browser_tour
import lesson_tour
from page_server import serve


@pytest.fixture(scope="module")
def page_url():
    load, diffusion, ar = browser_tour.real_models()
    demo, url = serve(load=load, diffusion=diffusion, ar=ar)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with browser_tour.chromium() as browser:
        yield browser


@pytest.mark.browser
def test_the_page_streams_replays_and_explains_itself(browser, page_url, tmp_path):
    browser_tour.stream_replay_and_play(browser, page_url, tmp_path)
    assert (tmp_path / "screenshot-light.png").stat().st_size > 0 and (tmp_path / "screenshot-replay.png").exists()


@pytest.mark.browser
def test_dark_theme_and_a_bad_setting(browser, page_url, tmp_path):
    browser_tour.dark_theme_and_a_bad_setting(browser, page_url, tmp_path)
    assert (tmp_path / "screenshot-dark.png").stat().st_size > 0


@pytest.mark.browser
def test_fill_the_blanks(browser, page_url, tmp_path):
    browser_tour.fill_the_blanks(browser, page_url, tmp_path)
    assert (tmp_path / "screenshot-infill.png").stat().st_size > 0


@pytest.mark.browser
def test_steps_sweep(browser, page_url, tmp_path):
    browser_tour.steps_sweep(browser, page_url, tmp_path)
    assert (tmp_path / "screenshot-sweep.png").stat().st_size > 0


@pytest.mark.browser
def test_lesson_presenter_view(browser, page_url, tmp_path):
    lesson_tour.presenter_view(browser, page_url, tmp_path)
    assert (tmp_path / "screenshot-present.png").stat().st_size > 0


@pytest.mark.browser
def test_every_lesson_runs_and_its_takeaway_opens_offline(browser, page_url, tmp_path):
    takeaway = lesson_tour.every_lesson(browser, page_url, tmp_path)
    lesson_tour.takeaway_offline(browser, takeaway)
    assert (tmp_path / "screenshot-lesson.png").stat().st_size > 0


@pytest.mark.browser
def test_on_a_phone(browser, page_url, tmp_path):
    browser_tour.on_a_phone(browser, page_url, tmp_path)
    assert (tmp_path / "screenshot-phone.png").stat().st_size > 0
