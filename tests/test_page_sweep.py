"""page/sweep.py: the user's step counts, the rows a sweep runs, and the page generator driven directly with
tiny models: a progress frame per finished row, the figure and coloured answers, Stop, the rows in the export."""

from __future__ import annotations

import json
import threading

import pytest

from fakes import TINY_AR, TINY_DIFFUSION, tiny_load
from generation import ConfigError, DiffusionConfig
from generation.sweep import SweepRow
from page.session import Session
from page.settings import Settings
from page.sweep import base_config, parse_steps, progress_html, run_sweep_page, sweep_settings
from visualize.export import load_sweep

VIEWS = {name: name for name in ("sweep_status", "sweep_plot", "sweep_answers", "run_file")}


def test_parse_steps():
    assert parse_steps("16, 8 32,8") == [8, 16, 32] and parse_steps("") == [] and parse_steps(None) == []
    with pytest.raises(ConfigError, match="whole numbers"):
        parse_steps("8, lots")
    with pytest.raises(ConfigError, match="at least 1"):
        parse_steps("0")


def test_rows_are_the_ladder_or_the_users_counts_with_an_optional_threshold_row():
    config = base_config(Settings(gen_length=32, steps=5, block_length=16, threshold=0.7))
    assert config.steps == 32 and config.threshold is None  # the page's steps and threshold do not leak in
    assert sweep_settings(config, None, [], True) == [{"steps": 4}, {"steps": 8}, {"steps": 16}, {"steps": 32},
                                                      {"threshold": 0.9}]
    assert sweep_settings(config, None, [2, 32], False) == [{"steps": 2}, {"steps": 32}]


def test_progress_bar_counts_rows():
    assert '<progress max="5" value="2">' in progress_html(2, 5, "16 steps")
    assert "2 of 5 settings done (latest: 16 steps)" in progress_html(2, 5, "16 steps")


def run(session, steps="2, 16", threshold=False, prompt="Name three colours."):
    return run_sweep_page(session, tiny_load, VIEWS, prompt, TINY_DIFFUSION, TINY_AR,
                          Settings(gen_length=16, steps=16, block_length=8), steps, threshold)


def test_a_frame_per_finished_row_then_the_export_holds_the_rows():
    session = Session()
    frames = list(run(session))
    done = [int(f["sweep_status"].split('data-done="')[1].split('"')[0]) for f in frames if "sweep_status" in f]
    assert done[-1] == 3 and done == sorted(done) and 'data-state="finished"' in frames[-1]["sweep_status"]
    assert "um-sweep-answers" in frames[-1]["sweep_answers"] and frames[-1]["sweep_answers"].count("um-canvas") == 3
    assert "run_file" in frames[-1]
    rows = load_sweep((session.files_dir() / "unmask-run.json").read_text(encoding="utf-8"))
    assert [SweepRow.from_dict(r).label for r in rows] == ["AR reference", "2 steps", "16 steps"]
    assert not session.running


def test_the_models_run_in_a_thread_that_ends_not_in_the_servers_worker():
    """generation/background.py: a long-lived thread that ran torch slows every later run on CPU."""
    threads = set()

    def load(name):
        threads.add(threading.current_thread())
        return tiny_load(name)

    frames = list(run_sweep_page(Session(), load, VIEWS, "Hi", TINY_DIFFUSION, TINY_AR,
                                 Settings(gen_length=16, steps=16, block_length=8), "2", False))
    assert 'data-state="finished"' in frames[-1]["sweep_status"]
    assert [t.name for t in threads] == ["unmask-sweep"] and not any(t.is_alive() for t in threads)


def test_stop_ends_the_sweep_early_and_says_so():
    session = Session()
    frames = []
    for frame in run(session, steps="2, 4, 8, 16"):
        frames.append(frame)
        if 'data-done="2"' in frame.get("sweep_status", ""):
            session.request_stop()
    last = frames[-1]["sweep_status"]
    assert 'data-state="stopped"' in last and 'data-done="2"' in last
    assert len(json.loads((session.files_dir() / "unmask-run.json").read_text())["sweep"]) == 2


def test_an_empty_prompt_and_a_refused_model_say_why():
    assert "prompt is empty" in next(run(Session(), prompt=" "))["sweep_status"]
    frames = list(run_sweep_page(Session(), tiny_load, VIEWS, "Hi", "broken-model", TINY_AR,
                                 Settings(gen_length=16, steps=16, block_length=8), "", True))
    assert "The sweep cannot run" in frames[-1]["sweep_status"] and "broken-model weights are missing" in frames[-1]["sweep_status"]
