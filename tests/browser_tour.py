"""Tours of the real page in headless Debian chromium (playwright), shared by the browser test and
`make screenshots`: each drives the page, asserts what a user should see, and saves screenshots into
the folder it is given (the test: a temporary folder; `make screenshots`: docs/, for the README).

    python tests/browser_tour.py docs    # serve the page with the embedded models, take the screenshots

Both models are the real embedded pair. Fails, never skips, when the browser cannot run.
"""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the repository root

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PROMPT = "Write a short poem about the sea."
TEMPLATE = "The capital of France is ___, and it is famous for ___8."
RUN_SECONDS = 240
LAPTOP = {"width": 1366, "height": 768}  # the screen on which the stage must fit once a run starts
PHONE = {"width": 390, "height": 844}  # a phone held upright (CSS pixels)
SWEEP_STEPS = "8 16 32"  # the sweep tour's step counts (answers of the page's default length)


def real_models():
    """The page's loader on CPU and the embedded pair's names (the pair a visitor sees first), both loaded
    before any clock starts."""
    from generation import load_model
    from generation.presets import AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2

    def load(name):
        return load_model(name, device="cpu")

    load(AR_SMOLLM2), load(BLOCK_DIFFUSION_SMOLLM2)
    return load, BLOCK_DIFFUSION_SMOLLM2, AR_SMOLLM2


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install it with `make chromium` (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url, errors, theme="light", viewport=None, **options):
    """A new page at `url`, its errors collected; `options` go to playwright's new_page (is_mobile, has_touch)."""
    page = browser.new_page(viewport=viewport or {"width": 1440, "height": 1100}, **options)
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(f"{url}?__theme={theme}")
    page.wait_for_selector("#um-prompt textarea", timeout=60_000)
    return page


def _status(page, panel):
    return page.get_attribute(f"#um-{panel}-stats .um-stats", "data-status")


def _wait_for_step(page, step, timeout_ms):
    page.wait_for_function(
        "n => { const c = document.querySelector('#um-diffusion .um-canvas');"
        " return c && Number(c.dataset.step) === n; }", arg=step, timeout=timeout_ms)


def _in_view(page, selector) -> bool:
    """Whether the element is wholly inside the viewport, the page not scrolled."""
    return page.evaluate("s => { const r = document.querySelector(s).getBoundingClientRect();"
                         " return window.scrollY === 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight"
                         " && r.right <= innerWidth; }", selector)


def _shown_steps(page) -> tuple[int, int]:
    return tuple(int(page.get_attribute(f"#um-{panel} .um-canvas", "data-step")) for panel in ("diffusion", "ar"))


def _candidates(page, panel, tap: bool = False) -> list[str]:
    """Hover a token of `panel` that has candidates (or tap it: a tap focuses it, the mouse elsewhere); the
    percentages its tooltip shows."""
    token = page.locator(f"#um-{panel} .um-tok[data-candidates]").first
    if tap:
        page.mouse.move(0, 0)
        token.focus()
    else:
        token.hover()
    shown = page.evaluate("el => getComputedStyle(el, '::after').content", token.element_handle())
    return re.findall(r"<?\d+%", shown)


def stream_replay_and_play(browser, url, shots: Path) -> None:
    """On a 1366x768 screen: Generate, both canvases in view at once, watch both panels stream, a token's 5
    candidates on hover (both panels) and on a tap (diffusion), step through with Previous / Next and the arrow
    keys, replay an early step, autoplay to the end. Saves screenshot-light.png and screenshot-replay.png."""
    errors: list[str] = []
    page = open_page(browser, url, errors, viewport=LAPTOP)
    assert "early" in page.inner_text("#um-legend") and "late" in page.inner_text("#um-legend")
    assert "How to read this" in page.inner_text("#um-how-to-read")
    assert page.locator("#um-how-to-read details[open]").count() == 1  # open on a first visit

    page.fill("#um-prompt textarea", PROMPT)
    page.click("#um-generate")
    page.wait_for_selector("#um-diffusion .um-canvas", timeout=RUN_SECONDS * 1000)
    page.wait_for_selector("#um-ar .um-canvas", timeout=RUN_SECONDS * 1000)
    assert _in_view(page, "#um-diffusion .um-canvas") and _in_view(page, "#um-ar .um-canvas")
    assert _in_view(page, "#um-prompt textarea") and _in_view(page, "#um-generate")
    diffusion_steps, ar_tokens, live_chart = set(), set(), False
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        step = page.get_attribute("#um-diffusion .um-canvas", "data-step") if page.query_selector(
            "#um-diffusion .um-canvas") else None
        if step is not None:
            diffusion_steps.add(int(step))
        if _status(page, "diffusion") == "running" and page.query_selector("#um-chart-race .js-plotly-plot"):
            live_chart = True  # the race chart was drawn while the run was still going
        ar_tokens.add(page.locator("#um-ar .um-tok").count())
        if _status(page, "diffusion") in ("done", "stopped", "error") and _status(page, "ar") in ("done", "stopped", "error"):
            break
        time.sleep(0.05)
    assert _status(page, "diffusion") == "done" and _status(page, "ar") == "done"
    assert len(diffusion_steps) >= 3, f"the diffusion canvas changed in too few frames: {sorted(diffusion_steps)}"
    assert len([n for n in ar_tokens if n > 0]) >= 2, f"AR tokens did not stream: {sorted(ar_tokens)}"
    assert page.locator("#um-diffusion .um-mask").count() == 0
    assert live_chart, "no chart appeared while the diffusion model was running"
    assert _in_view(page, "#um-diffusion .um-canvas") and _in_view(page, "#um-ar .um-canvas")
    assert len(_candidates(page, "ar")) == 5
    # verified diffusion (the embedded model's default decoder) records the candidates of the tokens it writes
    assert len(_candidates(page, "diffusion")) == 5 and len(_candidates(page, "diffusion", tap=True)) == 5
    page.evaluate("document.activeElement.blur()")  # no tooltip in the screenshot
    for chart in ("commits", "race", "map", "scores"):
        page.wait_for_selector(f"#um-chart-{chart} .js-plotly-plot", timeout=30_000)
    page.screenshot(path=str(shots / "screenshot-light.png"), full_page=True)

    # Replay: back to an early step, the canvas shows masks again and the AR panel has fewer tokens.
    total = int(page.get_attribute("#um-diffusion .um-canvas", "data-step"))
    ar_at_end = page.locator("#um-ar .um-tok").count()
    page.locator("#um-replay input[type=range]").fill(str(max(total // 4, 1)))
    _wait_for_step(page, max(total // 4, 1), 15_000)
    assert page.locator("#um-diffusion .um-mask").count() > 0
    assert page.locator("#um-ar .um-tok").count() <= ar_at_end
    page.locator(".um-panels").screenshot(path=str(shots / "screenshot-replay.png"))

    # Autoplay runs the slider forward to the end.
    page.click("#um-play")
    _wait_for_step(page, total, 60_000)
    assert page.locator("#um-diffusion .um-mask").count() == 0
    step_through(page)
    assert errors == [], errors
    page.close()


def step_through(page) -> None:
    """Previous / Next and the left / right arrow keys move both panels one step on the shared timeline (the AR
    panel following at the same share of its run), and the line under the canvas names the step."""
    page.get_by_label("same share of the run").check()
    total = _shown_steps(page)[0]
    start = max(total // 4, 1)
    page.locator("#um-replay input[type=range]").fill(str(start))
    _wait_for_step(page, start, 15_000)
    before = _shown_steps(page)
    for move, delta in (("#um-next", 1), ("#um-previous", 0), ("ArrowRight", 1), ("ArrowLeft", 0)):
        page.click(move) if move.startswith("#") else page.keyboard.press(move)
        _wait_for_step(page, start + delta, 15_000)
        page.wait_for_function("n => Number(document.querySelector('#um-ar .um-canvas').dataset.step) !== n",
                               arg=-1 if delta == 0 else before[1], timeout=15_000)
        shown = _shown_steps(page)
        assert (shown == before) if delta == 0 else (shown[0] == before[0] + 1 and shown[1] > before[1]), shown
        assert f"Step {start + delta}" in page.inner_text("#um-diffusion .um-step-line")


def _box(page, selector) -> dict:
    return page.evaluate("s => { const r = document.querySelector(s).getBoundingClientRect();"
                         " return {top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left, right: r.right}; }",
                         selector)


def on_a_phone(browser, url, shots: Path) -> None:
    """On a phone (390 px wide, touch): the prompt and Generate first, then the panels stacked, diffusion above AR,
    both canvases before the model pickers and settings; nothing wider than the screen; a tapped token shows its
    candidates; Previous moves the replay back a step. Saves screenshot-phone.png."""
    errors: list[str] = []
    page = open_page(browser, url, errors, viewport=PHONE, is_mobile=True, has_touch=True)
    page.fill("#um-prompt textarea", PROMPT)
    page.tap("#um-generate")
    page.wait_for_selector('#um-diffusion-stats .um-stats[data-status="done"]', timeout=RUN_SECONDS * 1000)
    page.wait_for_selector('#um-ar-stats .um-stats[data-status="done"]', timeout=RUN_SECONDS * 1000)
    width = PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    prompt, diffusion, ar = (_box(page, s) for s in ("#um-prompt textarea", "#um-diffusion .um-canvas",
                                                     "#um-ar .um-canvas"))
    settings = _box(page, "#um-settings")
    assert prompt["bottom"] <= diffusion["top"] and diffusion["bottom"] <= ar["top"] <= settings["top"], (
        prompt, diffusion, ar, settings)
    for canvas in (diffusion, ar):
        assert 0 <= canvas["left"] and canvas["right"] <= width and canvas["right"] - canvas["left"] > width / 2
    assert len(_candidates(page, "diffusion", tap=True)) == 5
    page.screenshot(path=str(shots / "screenshot-phone.png"))
    last = _shown_steps(page)[0]
    page.tap("#um-previous")  # the replay's buttons are reachable by thumb
    _wait_for_step(page, last - 1, 15_000)
    assert errors == [], errors
    page.close()


def dark_theme_and_a_bad_setting(browser, url, shots: Path) -> None:
    """A bad block length is flagged in the settings and refused by Generate; fixed, the run completes.
    Saves screenshot-dark.png."""
    errors: list[str] = []
    page = open_page(browser, url, errors, theme="dark")
    page.fill("#um-prompt textarea", PROMPT)
    page.click("#um-settings button, #um-settings .label-wrap")  # open the settings accordion
    block = page.locator("#um-block-length input")
    recommended = block.input_value()
    block.fill("-8")
    block.press("Tab")
    page.wait_for_selector("#um-settings-check .um-error", timeout=30_000)  # checked as soon as it changes
    assert "block_length must be >= 1" in page.inner_text("#um-settings-check")
    page.click("#um-generate")
    page.wait_for_selector("#um-banner .um-error", timeout=30_000)
    assert "block_length must be >= 1" in page.inner_text("#um-banner")
    block.fill(recommended)
    block.press("Tab")
    page.wait_for_selector("#um-settings-check .um-error", state="detached", timeout=30_000)
    page.click("#um-generate")
    page.wait_for_selector('#um-diffusion-stats .um-stats[data-status="done"]', timeout=RUN_SECONDS * 1000)
    page.wait_for_selector('#um-ar-stats .um-stats[data-status="done"]', timeout=RUN_SECONDS * 1000)
    page.wait_for_selector("#um-chart-map .js-plotly-plot", timeout=30_000)
    page.screenshot(path=str(shots / "screenshot-dark.png"), full_page=True)
    assert errors == [], errors
    page.close()


def fill_the_blanks(browser, url, shots: Path) -> None:
    """Infilling: a template with two blanks; the given text keeps its own style, every blank is filled, the
    AR panel says why it only continues the text before the first blank. Saves screenshot-infill.png."""
    errors: list[str] = []
    page = open_page(browser, url, errors)
    page.fill("#um-prompt textarea", "Tell me about France.")
    page.click("#um-infill button, #um-infill .label-wrap")  # open the infilling accordion
    page.get_by_label("Fill the blanks (___)").check()
    page.fill("#um-template textarea", TEMPLATE)
    page.wait_for_selector("#um-infill-check .um-note", timeout=30_000)
    assert "2 blanks (4 + 8 tokens)" in page.inner_text("#um-infill-check")
    page.click("#um-generate")
    page.wait_for_selector('#um-diffusion-stats .um-stats[data-status="done"]', timeout=RUN_SECONDS * 1000)
    page.wait_for_selector('#um-ar-stats .um-stats[data-status="done"]', timeout=RUN_SECONDS * 1000)
    assert page.locator("#um-diffusion .um-mask").count() == 0
    given = "".join(page.locator("#um-diffusion .um-fixed").all_inner_texts())
    assert given.startswith("The capital of France is") and "and it is famous for" in given
    assert "cannot fill one" in page.inner_text("#um-ar") and page.locator("#um-ar .um-fixed").count() > 0
    assert "given (fixed)" in page.inner_text("#um-legend")
    assert "endoftext" not in page.inner_text("#um-diffusion")  # unused room shows as blanks
    assert len(_candidates(page, "diffusion")) == 5 and len(_candidates(page, "ar")) == 5
    page.locator(".um-panels").screenshot(path=str(shots / "screenshot-infill.png"))
    assert errors == [], errors
    page.close()


def steps_sweep(browser, url, shots: Path) -> None:
    """The steps sweep: the prompt answered at several step counts and a threshold row, each judged by the AR
    model; a progress bar while it runs, then the figure and every answer coloured by step. Saves
    screenshot-sweep.png."""
    errors: list[str] = []
    page = open_page(browser, url, errors)
    page.fill("#um-prompt textarea", PROMPT)
    page.click("#um-sweep button, #um-sweep .label-wrap")  # open the sweep accordion
    page.fill("#um-sweep-steps textarea", SWEEP_STEPS)
    page.click("#um-sweep-run")
    page.wait_for_selector('#um-sweep-status .um-sweep-progress[data-state="running"]', timeout=60_000)
    page.wait_for_selector('#um-sweep-status .um-sweep-progress[data-state="finished"]', timeout=RUN_SECONDS * 1000)
    rows = len(SWEEP_STEPS.split()) + 3  # each step count (low_confidence), the threshold row, the page's speculative
    # decoding, the AR reference
    assert page.get_attribute("#um-sweep-status .um-sweep-progress", "data-done") == str(rows)
    assert page.locator("#um-sweep-answers .um-sweep-row").count() == rows
    assert page.locator("#um-sweep-answers .um-tok").count() > 0  # answers coloured by step
    page.wait_for_selector("#um-sweep-chart .js-plotly-plot", timeout=30_000)
    page.locator("#um-sweep").screenshot(path=str(shots / "screenshot-sweep.png"))
    assert errors == [], errors
    page.close()


def main(argv: list[str]) -> None:
    """Take the README's screenshots into the folder named (docs/ by default)."""
    import os

    from page_server import serve

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shots = Path(argv[0] if argv else "docs")
    shots.mkdir(parents=True, exist_ok=True)
    load, diffusion, ar = real_models()
    demo, url = serve(load=load, diffusion=diffusion, ar=ar)
    try:
        with chromium() as browser:
            stream_replay_and_play(browser, url, shots)
            on_a_phone(browser, url, shots)
            dark_theme_and_a_bad_setting(browser, url, shots)
            fill_the_blanks(browser, url, shots)
            steps_sweep(browser, url, shots)
            import lesson_tour  # the lessons' tours build on this module's helpers, so they load after it

            takeaway = lesson_tour.every_lesson(browser, url, shots)
            lesson_tour.takeaway_offline(browser, takeaway)
            takeaway.unlink()  # checked, not a README picture
            lesson_tour.presenter_view(browser, url, shots)
    finally:
        demo.close()
    print(f"screenshots written to {shots}/")


if __name__ == "__main__":
    main(sys.argv[1:])
