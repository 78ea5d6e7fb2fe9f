"""Tours of the lessons in headless Debian chromium, shared by tests/test_browser.py and `make screenshots`
(tests/browser_tour.py's main): every lesson runs to the end and shows its text, the presenter view hides the
settings and steps with the arrow keys, and a lesson's take-away file opens from disk with the network blocked.
"""

from __future__ import annotations

from pathlib import Path

from browser_tour import LAPTOP, RUN_SECONDS, _in_view, _shown_steps, _wait_for_step, open_page

from page.lessons import lessons

PROJECTOR = {"width": 1280, "height": 720}
SETTINGS = ("#um-settings", "#um-models", "#um-infill", "#um-export", "#um-how-to-read", "#um-examples")


def _pick(page, title: str) -> None:
    page.click("#um-lesson-pick input")
    page.get_by_role("option", name=title).click()


def _wait_for_lesson(page, title: str, sweep: bool) -> None:
    """The lesson's text is shown, both panels are done, (its sweep finished,) and its take-away is ready."""
    page.wait_for_function("t => (document.querySelector('#um-lesson .um-lesson-title') || {}).textContent === t",
                           arg=title, timeout=30_000)
    seconds = RUN_SECONDS * (3 if sweep else 1)  # a sweep is several runs
    page.wait_for_selector("#um-lesson-takeaway:not([disabled])", state="attached", timeout=seconds * 1000)
    for panel in ("diffusion", "ar"):
        assert page.get_attribute(f"#um-{panel}-stats .um-stats", "data-status") == "done", panel
    if sweep:
        assert page.get_attribute("#um-sweep-status .um-sweep-progress", "data-state") == "finished"


def _whole_in_view(page, selector) -> bool:
    """Whether the whole element is on the first screen, nothing of it below the fold."""
    return page.evaluate("s => { const r = document.querySelector(s).getBoundingClientRect();"
                         " return window.scrollY === 0 && r.top >= 0 && r.bottom <= innerHeight; }", selector)


def _text_fits(page, text_html: str) -> bool:
    """Whether `text_html` shown in the lesson box fits it on screen, with nothing to scroll (the box's own
    text is put back after)."""
    return page.evaluate("""html => {
        const box = document.querySelector('#um-lesson-box'), text = document.querySelector('#um-lesson .prose');
        const shown = text.innerHTML;
        text.innerHTML = html;
        const fits = box.scrollHeight <= box.clientHeight + 1 && box.getBoundingClientRect().bottom <= innerHeight;
        text.innerHTML = shown;
        return fits;
    }""", text_html)


def every_lesson(browser, url, shots: Path) -> Path:
    """Pick the first lesson, then Next lesson through all of them: each sets its prompt, shows its text beside
    the panels (the diffusion panel's title saying how its decoder fills the canvas) and runs to the end. Saves
    screenshot-lesson.png (the last lesson) and the last take-away file, whose path it returns."""
    errors: list[str] = []
    page = open_page(browser, url, errors, viewport=LAPTOP)
    for number, lesson in enumerate(lessons()):
        if number == 0:
            _pick(page, lesson.title)
        else:
            page.click("#um-lesson-next")
        _wait_for_lesson(page, lesson.title, bool(lesson.sweep))
        assert page.input_value("#um-prompt textarea") == lesson.prompt
        first_words = " ".join(lesson.body.replace("*", "").split()[:4])
        assert first_words in page.inner_text("#um-lesson"), (lesson.slug, first_words)
        assert page.locator("#um-diffusion .um-mask").count() == 0, lesson.slug
        assert "Earlier turns" not in page.inner_text("#um-diffusion"), "a lesson starts a fresh conversation"
        speculative = lesson.settings.algorithm == "speculative"  # the one decoder that fills left to right
        title = page.inner_text("#um-diffusion-title")
        assert ("left to right" if speculative else "any order") in title, (lesson.slug, title)
        if lesson.missing:
            assert "Not in Unmask yet" in page.inner_text("#um-lesson")
    assert _in_view(page, "#um-lesson") and _in_view(page, "#um-diffusion .um-canvas")
    page.screenshot(path=str(shots / "screenshot-lesson.png"))
    with page.expect_download() as download:
        page.click("#um-lesson-takeaway")
    takeaway = shots / download.value.suggested_filename
    download.value.save_as(takeaway)
    assert errors == [], errors
    page.close()
    return takeaway


def presenter_view(browser, url, shots: Path) -> None:
    """?view=present at 1280x720: no settings, large canvases beside the lesson text; Next lesson runs one and the
    arrow keys step it. Saves screenshot-present.png."""
    errors: list[str] = []
    page = browser.new_page(viewport=PROJECTOR)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(f"{url}?__theme=light&view=present")
    page.wait_for_selector("body.um-present #um-prompt textarea", timeout=60_000)
    for hidden in SETTINGS:
        assert not page.locator(hidden).first.is_visible(), f"{hidden} is visible in the presenter view"
    lesson = lessons()[-1]
    _pick(page, lesson.title)
    _wait_for_lesson(page, lesson.title, bool(lesson.sweep))
    for hidden in SETTINGS:
        assert not page.locator(hidden).first.is_visible(), f"{hidden} is visible in the presenter view"
    page.screenshot(path=str(shots / "screenshot-present.png"))
    for whole in ("#um-lesson-box", "#um-diffusion .um-canvas", "#um-ar .um-canvas", "#um-diffusion .um-step-line"):
        assert _whole_in_view(page, whole), f"{whole} does not fit the 1280x720 screen"
    for other in lessons():  # every lesson's text fits its column without scrolling (the run is the last one's)
        assert _text_fits(page, other.text_html()), f"{other.slug}: the lesson text overflows the presenter view"
    assert float(page.evaluate("getComputedStyle(document.querySelector('#um-diffusion .um-canvas')).fontSize")
                 .rstrip("px")) >= 20
    last = _shown_steps(page)[0]
    page.locator("body").click(position={"x": 5, "y": 5})  # the focus off any field that uses the arrow keys
    page.keyboard.press("ArrowLeft")
    _wait_for_step(page, last - 1, 15_000)
    page.keyboard.press("ArrowRight")
    _wait_for_step(page, last, 15_000)
    page.screenshot(path=str(shots / "screenshot-present.png"))
    assert errors == [], errors
    page.close()


def takeaway_offline(browser, path: Path) -> None:
    """The take-away file from disk (file://) with every other request refused: the lesson's text, both replays
    (the slider moves the canvas) and the charts drawn by the inlined plotly."""
    context = browser.new_context(offline=True)
    refused: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "about:", "data:"))
                  else (refused.append(route.request.url), route.abort()))
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(path.resolve().as_uri())
    assert lessons()[-1].title in page.inner_text("h1")
    assert page.locator(".um-lesson-text").inner_text().strip()
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    replay = page.frame_locator("iframe.um-replay").first
    assert replay.locator("#um-frame .um-tok").count() > 0
    replay.locator("#um-slider").fill("0")
    assert replay.locator("#um-frame .um-mask").count() > 0  # the first frame: the blank canvas
    assert refused == [] and errors == [], (refused, errors)
    context.close()
