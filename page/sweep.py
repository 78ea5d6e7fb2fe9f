"""The page's steps sweep: the worker (`sweep_work`, the GPU work of a click: load both models, run
generation.sweep) and the page generator behind "Run the sweep" (`run_sweep_page`: a progress bar per
finished setting, the figure and the coloured answers, Stop, the rows into the session's JSON export).

The sweep's base config is the page's settings with one step per token and no threshold; each row
overrides it (a step count from the ladder or the user's list, a Fast-dLLM threshold row).
Left out: the sweep itself (generation.sweep) and its drawing (visualize.sweep).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial

import gradio as gr

import generation
from generation import ConfigError, DiffusionConfig
from generation.background import iterate_in_own_thread
from generation.config import require_prompt
from generation.runs import prepare_run
from generation.sweep import SweepRow, default_settings, stream_sweep, unmasking_overrides
from page.fragments import esc, message_html
from page.pickers import load_checked
from page.session import ON_ZERO_GPU, Session
from page.settings import Settings
from spaces_shim import gpu
from visualize import export
from visualize.sweep import answers_html, sweep_figure


@dataclass
class SweepPlan:
    """The worker's first yield: what the page needs before any row (plain data, it may cross processes)."""

    settings: list[dict]  # the rows to come, as DiffusionConfig overrides
    tokenizers: dict  # generation.DIFFUSION / AUTOREGRESSIVE -> tokenizer, to colour the answers
    note: str = ""  # e.g. the settings a model that runs its own loop ignores


def parse_steps(text: str | None) -> list[int]:
    """The user's step counts: parse_steps("8, 16 32") -> [8, 16, 32]; "" -> [] (the automatic ladder)."""
    words = (text or "").replace(",", " ").split()
    try:
        steps = [int(word) for word in words]
    except ValueError:
        raise ConfigError(f"step counts must be whole numbers separated by commas, got {text!r}") from None
    if any(s < 1 for s in steps):
        raise ConfigError(f"step counts must be at least 1, got {text!r}")
    return sorted(set(steps))


def base_config(settings: Settings) -> DiffusionConfig:
    """The page's diffusion settings with one step per token and no threshold: every row overrides it."""
    config, _ = replace(settings, threshold=0.0, steps=settings.gen_length).configs()
    return config


def sweep_settings(config: DiffusionConfig, model, steps: list[int], threshold: bool) -> list[dict]:
    """The rows: the user's step counts (or the ladder), and a threshold row when asked and possible."""
    rows = default_settings(config, model)
    if steps:
        rows = [{**unmasking_overrides(config, model), "steps": s} for s in steps] + [
            row for row in rows if "steps" not in row]
    return rows if threshold else [row for row in rows if "threshold" not in row]


@gpu(duration=300)
def sweep_work(load, names: tuple[str, str], prompt: str, config: DiffusionConfig, steps: list[int],
               threshold: bool, stop: threading.Event | None = None) -> Iterator[SweepPlan | SweepRow]:
    """Load the pair (checked like a race), yield the SweepPlan, then each finished SweepRow."""
    model = load_checked(load, names[0], generation.DIFFUSION, (names[1],))
    judge = load_checked(load, names[1], generation.AUTOREGRESSIVE)
    run = prepare_run(model, config, lenient=True)  # the config as the model runs it, and what it ignored
    settings = sweep_settings(run.config, model, steps, threshold)
    yield SweepPlan(settings, {generation.DIFFUSION: model.tokenizer, generation.AUTOREGRESSIVE: judge.tokenizer},
                    run.settings_note)
    yield from stream_sweep(model, judge, [{"role": "user", "content": prompt}], run.config, settings, stop=stop)


def progress_html(done: int, total: int, latest: str, state: str = "running") -> str:
    """A progress bar and a line: 'Sweep: 2 of 6 settings done (latest: 16 steps).'"""
    words = {"running": "Sweep", "finished": "Sweep finished", "stopped": "Sweep stopped"}[state]
    tail = f" (latest: {latest})" if latest else ""
    return (f'<div class="um-sweep-progress" data-state="{esc(state)}" data-done="{done}" data-total="{total}">'
            f'<progress max="{max(total, 1)}" value="{done}"></progress> '
            f'<span>{esc(words)}: {done} of {total} settings done{esc(tail)}.</span></div>')


def run_sweep_page(session: Session, load, views: dict, prompt: str, diffusion_name: str, ar_name: str,
                   settings: Settings, steps_text: str, threshold: bool):
    """The page generator behind "Run the sweep": validate, stream progress per finished row, then draw all."""
    if session.running:
        yield {views["sweep_status"]: message_html("Already generating", "Press Stop first, or wait for the end.",
                                                   "warning")}
        return
    try:
        prompt = require_prompt(prompt)
        config, steps = base_config(settings), parse_steps(steps_text)
    except ConfigError as error:
        yield {views["sweep_status"]: message_html("These settings cannot run", str(error))}
        return
    session.running = True
    session.stop = stop = threading.Event()
    session.panel_stops = (stop,)
    rows: list[SweepRow] = []
    plan = SweepPlan([], {})
    try:
        yield {views["sweep_status"]: progress_html(0, 0, "loading the models")}
        make_work = partial(sweep_work, load, (diffusion_name, ar_name), prompt, config, steps, threshold,
                            None if ON_ZERO_GPU else stop)
        # Here the models run in a thread that ends, not in this long-lived server worker (generation/background.py
        # says why); on ZeroGPU they run in a forked process already, and spaces.GPU wants the request's context.
        work = make_work() if ON_ZERO_GPU else iterate_in_own_thread(make_work, name="unmask-sweep")
        with closing(work):
            for item in work:
                if isinstance(item, SweepPlan):
                    plan = item
                else:
                    rows.append(item)
                total = len(plan.settings) + 1  # and the AR reference
                yield {views["sweep_status"]: progress_html(len(rows), total, rows[-1].label if rows else ""),
                       views["sweep_plot"]: sweep_figure(rows), views["sweep_answers"]: answers_html(rows, plan.tokenizers)}
                if ON_ZERO_GPU and stop.is_set():
                    break
    except (ConfigError, generation.ModelUnavailable) as error:
        yield {views["sweep_status"]: message_html("The sweep cannot run", str(error))}
        return
    finally:
        session.running = False
    yield finish_sweep(session, views, rows, plan, "stopped" if stop.is_set() else "finished")


def finish_sweep(session: Session, views: dict, rows: list[SweepRow], plan: SweepPlan, state: str) -> dict:
    """The last frame: keep the rows in the session and write them into the run's JSON export."""
    session.sweep = [row.to_dict() for row in rows]
    path = session.files_dir() / "unmask-run.json"
    path.write_text(export.run_json(session.diffusion, session.autoregressive, session.settings, sweep=session.sweep),
                    encoding="utf-8")
    note = f'<div class="um-note">{esc(plan.note)}</div>' if plan.note else ""
    return {views["sweep_status"]: note + progress_html(len(rows), len(plan.settings) + 1,
                                                        rows[-1].label if rows else "", state),
            views["sweep_plot"]: sweep_figure(rows), views["sweep_answers"]: answers_html(rows, plan.tokenizers),
            views["run_file"]: gr.DownloadButton(value=str(path), interactive=True)}
