"""page/race.py: the worker side of a click: load failures land in their own panel, and `race` takes and
yields only plain, picklable data (ZeroGPU)."""

import threading

import pytest

from fakes import TINY_AR, TINY_BLOCK, TINY_DIFFUSION, tiny_load
from generation import ARConfig, DiffusionConfig, ModelUnavailable
from page.race import Panel, race, run_panel
from page.settings import TOGETHER
from page_server import unmask_threads


def user(text):
    return {"role": "user", "content": text}


def run_alone(load, name="some-model"):
    """One diffusion panel run by its worker body with `load`; returns the panel when it is finished."""
    panel = Panel("diffusion", name)
    run_panel(panel, load, [user("Hi.")], DiffusionConfig(gen_length=16, steps=8), threading.Barrier(1), None,
              threading.Event(), threading.Event())
    assert panel.finished.is_set()
    return panel


@pytest.mark.parametrize("error, title", [
    (ModelUnavailable("the weights are not there; fix: download them"), "Model unavailable"),
    (OSError("disk on fire"), "Model failed to load"),
])
def test_a_load_failure_is_reported_in_its_own_panel(error, title):
    calls = []

    def load(name):
        calls.append(name)
        raise error

    panel = run_alone(load)
    assert calls == ["some-model"]
    assert (panel.status, panel.error_title) == ("error", title) and str(error) in panel.error
    assert panel.snapshot is None


def test_each_panel_loads_in_a_thread_that_ends_and_runs_in_its_own():
    """A panel waiting for its turn holds no torch threads: it loaded in a thread that has ended
    (generation/background.py: an idle thread that ran torch slows the other panel's run on CPU)."""
    threads = {}

    def load(name):
        threads.setdefault(name, threading.current_thread())
        return tiny_load(name)

    *_, (diffusion, ar) = race(load, (TINY_DIFFUSION, TINY_AR), ([user("Hi.")], [user("Hi.")]),
                              (DiffusionConfig(gen_length=16, steps=8), ARConfig(max_new_tokens=8)), TOGETHER, None)
    assert (diffusion.status, ar.status) == ("done", "done")
    assert {t.name for t in threads.values()} == {"unmask-load-diffusion", "unmask-load-autoregressive"}
    assert not any(t.is_alive() for t in threads.values())


def test_race_takes_and_yields_only_what_zero_gpu_can_pickle():
    """On ZeroGPU `race` runs in a forked process: its arguments go there and its frames come back pickled."""
    import pickle

    messages = ([user("Hi.")], [user("Hi.")])
    configs = (DiffusionConfig(gen_length=16, steps=8), ARConfig(max_new_tokens=8))
    arguments = (tiny_load, (TINY_DIFFUSION, TINY_AR), messages, configs, TOGETHER, None)
    pickle.dumps(arguments)
    frames = [pickle.loads(pickle.dumps(frame)) for frame in race(*arguments)]
    diffusion, ar = frames[-1]
    assert (diffusion.status, ar.status) == ("done", "done") and len(diffusion.history.steps) == 8
    assert sum(view.tokenizer is not None for frame in frames for view in frame) == 2  # each tokenizer sent once
    assert unmask_threads() == []


def test_an_infilling_race_fills_the_blanks_and_the_ar_panel_continues_the_prefix():
    from generation.infill import parse_template
    from page.race import AR_CANNOT_INFILL

    spec = parse_template("The capital of France is ___, and it is famous for ___.")
    messages = ([user("Tell me about France.")], [user("Tell me about France.")])
    configs = (DiffusionConfig(gen_length=32, steps=8, block_length=16), ARConfig(max_new_tokens=8))
    *_, (diffusion, ar) = race(tiny_load, (TINY_DIFFUSION, TINY_AR), messages, configs, TOGETHER, None, spec)
    d, a = diffusion.history, ar.history
    tokenizer = tiny_load(TINY_DIFFUSION).tokenizer
    assert (diffusion.status, ar.status) == ("done", "done") and "2 blanks (4 + 4 tokens)" in diffusion.note
    # blanks at 5-8 and 15-18: block 0 holds 5 masks (4 steps), block 1 holds 3 (3 steps of one)
    assert d.mask_id not in d.canvas and len(d.steps) == d.planned_steps == 7
    text = tokenizer.decode(d.canvas[: d.answer_end()])
    assert text.startswith("The capital of France is") and "and it is famous for" in text and text.endswith(".")
    assert tokenizer.decode(a.canvas[: len(a.fixed)]) == "The capital of France is"
    assert ar.note == AR_CANNOT_INFILL


def speculative(**overrides):
    return DiffusionConfig(**{"gen_length": 32, "block_length": 4, "algorithm": "speculative", "cache": "prefix",
                              **overrides})


def test_a_speculative_race_says_how_the_canvas_fills():
    from generation.decoders import SPECULATIVE
    SPECULATIVE_NOTE = SPECULATIVE.note

    configs = (speculative(), ARConfig(max_new_tokens=8))
    *_, (diffusion, ar) = race(tiny_load, (TINY_BLOCK, TINY_AR), ([user("Hi.")], [user("Hi.")]), configs, TOGETHER, None)
    assert (diffusion.status, ar.status) == ("done", "done")
    assert diffusion.note == SPECULATIVE_NOTE.format(block=4) and diffusion.history.settings["algorithm"] == "speculative"


def test_blanks_are_filled_by_low_confidence_when_the_settings_say_speculative():
    from generation.infill import parse_template

    spec = parse_template("The capital of France is ___, and it is famous for ___.")
    messages = ([user("Tell me about France.")], [user("Tell me about France.")])
    configs = (speculative(steps=32), ARConfig(max_new_tokens=8))
    *_, (diffusion, _) = race(tiny_load, (TINY_BLOCK, TINY_AR), messages, configs, TOGETHER, None, spec)
    history = diffusion.history
    assert diffusion.status == "done" and history.mask_id not in history.canvas
    assert history.settings["algorithm"] == "low_confidence" and "low_confidence fills them" in diffusion.note
    assert "Speculative decoding:" not in diffusion.note

