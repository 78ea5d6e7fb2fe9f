"""A run's session: everything one browser tab owns (`Session`), the page generator behind Generate
(`run_generation`: validate, run the race, render its frames, `finish`), and replay of the last run
(the two panels and their figures as they were at any step, the AR panel following the diffusion
timeline). Rendering happens here, between frames, never inside a denoising loop.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

import generation
from generation import ConfigError, History
from generation.config import require_prompt
from page.fragments import canvas_html, legend_html, message_html, panel_body, panel_html, stats_html, timing_note
from page.race import PanelView, race
from page.settings import SAME_SHARE, TOGETHER, Settings
from visualize import charts, export
from visualize.canvas import default_total


@dataclass
class Session:
    """Everything one browser tab (or API client) owns; Gradio keeps one per session in gr.State."""

    diffusion_messages: list[dict] = field(default_factory=list)  # the diffusion model's chat so far
    ar_messages: list[dict] = field(default_factory=list)  # the AR model's chat so far
    turns: list[tuple[str, str, str]] = field(default_factory=list)  # (prompt, diffusion answer, AR answer)
    diffusion: History | None = None  # the latest turn's histories, for replay and export
    autoregressive: History | None = None
    diffusion_tokenizer: object = None
    ar_tokenizer: object = None
    mode: str = TOGETHER
    settings: dict = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)  # the user pressed Stop
    panel_stops: tuple[threading.Event, ...] = ()  # the running panels' own stop signals
    running: bool = False
    export_dir: Path | None = None
    sweep: list[dict] = field(default_factory=list)  # the latest steps sweep's rows (SweepRow.to_dict), for export

    def __deepcopy__(self, memo):
        # gr.State deep-copies its initial value; a fresh Session is already private to one session.
        return self

    def request_stop(self) -> None:
        """Stop: the page stops showing the run, and both panels' own signals end their workers."""
        self.stop.set()
        for event in self.panel_stops:
            event.set()

    def files_dir(self) -> Path:
        if self.export_dir is None:
            self.export_dir = Path(tempfile.mkdtemp(prefix="unmask-"))
        return self.export_dir


def new_session() -> Session:
    return Session()


ON_ZERO_GPU = bool(os.environ.get("SPACES_ZERO_GPU"))  # set by Hugging Face on ZeroGPU Spaces
# Live charts redraw at most this often: each redraw is Python time taken from the models on a small CPU, and
# once a second measurably slowed the embedded pair's runs; every 2 s halves that (`python -m bench.render`
# times a redraw, and its share of the frames between two).
LIVE_CHART_SECONDS = 2.0
REPLAY_BUTTONS = ("previous", "next", "play", "pause")  # off while a run goes, on once it has steps to replay


def run_generation(session: Session, load, views: dict, prompt: str, diffusion_name: str, ar_name: str,
                   mode: str, settings: Settings):
    """The page generator behind Generate: validate, run `race`, render its frames, finish."""
    frame = 0

    def progress(state: str, panels: tuple[PanelView, PanelView] | None = None, **extra) -> dict:
        nonlocal frame
        frame += 1
        info = {"frame": frame, "state": state, "mode": mode, **extra}
        for view in panels or ():
            history = view.history
            info[view.kind] = {"status": view.status, "model": view.model_name, "error": view.error,
                               "steps": len(history.steps) if history else 0,
                               "planned_steps": history.planned_steps if history else None}
        return info

    if session.running:
        yield {views["banner"]: message_html("Already generating", "Press Stop first, or wait for the end.",
                                             "warning"), views["progress"]: progress("busy")}
        return
    try:
        prompt = require_prompt(prompt)
        diffusion_config, ar_config = settings.configs()
        spec = settings.infill()
    except ConfigError as error:
        gr.Warning(f"Bad settings: {error}")
        yield {views["banner"]: message_html("These settings cannot run", str(error)),
               views["progress"]: progress("bad-settings", error=str(error))}
        return

    session.running = True
    # Each panel has its own stop signal (the AR streamer sets its own when it ends); Stop sets both.
    stops = (threading.Event(), threading.Event())
    session.panel_stops = stops
    session.stop = stop = threading.Event()
    session.mode = mode
    session.settings = {"prompt": prompt, "mode": mode, "diffusion_model": diffusion_name, "ar_model": ar_name,
                        "diffusion": diffusion_config.to_dict(), "autoregressive": ar_config.to_dict(),
                        "task": settings.task, "template": settings.template if spec is not None else ""}
    user = {"role": "user", "content": prompt}
    messages = ([*session.diffusion_messages, user], [*session.ar_messages, user])
    earlier = list(session.turns)
    panels = (PanelView(generation.DIFFUSION, diffusion_name, "loading"),
              PanelView(generation.AUTOREGRESSIVE, ar_name, "loading"))
    tokenizers: dict[str, object] = {}
    try:
        yield {views["banner"]: timing_note(mode, "in progress"),
               views["legend"]: legend_html(diffusion_config.steps, fixed=spec is not None),
               views["replay"]: gr.Slider(value=0, maximum=1, interactive=False),
               **{views[name]: gr.Button(interactive=False) for name in REPLAY_BUTTONS},
               views["run_file"]: gr.DownloadButton(interactive=False),
               views["animation_file"]: gr.DownloadButton(interactive=False),
               views["make_gif"]: gr.Button(interactive=False),
               **live_views(views, panels, earlier, tokenizers), views["progress"]: progress("running", panels)}
        frames = race(load, (diffusion_name, ar_name), messages, (diffusion_config, ar_config), mode,
                      None if ON_ZERO_GPU else stops, spec)
        charts_due = LiveCharts()
        with closing(frames):
            for panels in frames:
                tokenizers.update({view.kind: view.tokenizer for view in panels if view.tokenizer is not None})
                yield {**live_views(views, panels, earlier, tokenizers), **charts_due(views, panels),
                       views["progress"]: progress("running", panels)}
                if ON_ZERO_GPU and stop.is_set():
                    break  # Stop cannot reach ZeroGPU's process: stop showing the run instead
    finally:
        stop_requested = stop.is_set()
        session.running = False
    yield finish(session, views, panels, tokenizers, prompt, earlier, mode, stop_requested,
                 lambda state: progress(state, panels))


def live_views(views: dict, panels: tuple[PanelView, PanelView], earlier: list, tokenizers: dict) -> dict:
    out = {}
    for panel, view, stats in zip(panels, ("diffusion_view", "ar_view"), ("diffusion_stats", "ar_stats")):
        out[views[view]] = panel_html(panel.kind, earlier, panel_body(panel, tokenizers.get(panel.kind)))
        out[views[stats]] = stats_html(panel.history, panel.status, panel.kind)
    return out


class LiveCharts:
    """The charts that update while a run goes (commits per step, denoising map, race), redrawn at most
    every LIVE_CHART_SECONDS and only when a step landed since the last redraw; {} when not due."""

    def __init__(self, interval: float = LIVE_CHART_SECONDS) -> None:
        self.interval = interval
        self.last = -float("inf")
        self.drawn: tuple[int, int] = (0, 0)

    def __call__(self, views: dict, panels: tuple[PanelView, PanelView]) -> dict:
        d, a = (panel.history for panel in panels)
        steps = (len(d.steps) if d else 0, len(a.steps) if a else 0)
        now = time.perf_counter()
        if steps == self.drawn or now - self.last < self.interval:
            return {}
        self.last, self.drawn = now, steps
        out = {views["race"]: charts.race_figure(d, a)}
        if d is not None and steps[0] != 0:
            out[views["commits"]] = charts.commits_figure(d)
            out[views["map"]] = charts.denoising_map_figure(d)
        return out


def finish(session: Session, views: dict, panels: tuple[PanelView, PanelView], tokenizers: dict, prompt: str,
           earlier: list, mode: str, stopped: bool, progress) -> dict:
    """The last frame: store the turn, enable replay and export, draw the charts."""
    diffusion, ar = panels
    d, a = diffusion.history, ar.history
    session.diffusion, session.autoregressive = d, a
    session.diffusion_tokenizer = tokenizers.get(generation.DIFFUSION)
    session.ar_tokenizer = tokenizers.get(generation.AUTOREGRESSIVE)
    if d is not None:
        session.settings["diffusion"] = dict(d.settings)  # what the model actually took (DiffusionGemma: fewer)
    d_text = answer_text(d, session.diffusion_tokenizer)
    a_text = answer_text(a, session.ar_tokenizer)
    session.diffusion_messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": d_text}]
    session.ar_messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": a_text}]
    session.turns.append((prompt, d_text, a_text))

    steps = replay_length(session)
    out = {**live_views(views, panels, earlier, tokenizers),
           views["banner"]: timing_note(mode, "stopped early" if stopped else "of this run"),
           views["replay"]: gr.Slider(value=steps, minimum=0, maximum=max(steps, 1), step=1,
                                      interactive=steps > 0,
                                      label="Replay: diffusion step" if d is not None else "Replay: AR token"),
           **{views[name]: gr.Button(interactive=steps > 0) for name in REPLAY_BUTTONS}}
    if d is not None:
        out[views["legend"]] = legend_html(default_total(d), fixed=bool(d.fixed))
        out[views["commits"]] = charts.commits_figure(d)
        out[views["map"]] = charts.denoising_map_figure(d)
        out[views["scores"]] = charts.scores_figure(d)
    if d is not None or a is not None:
        out[views["race"]] = charts.race_figure(d, a)
        folder = session.files_dir()
        run_path = folder / "unmask-run.json"
        run_path.write_text(export.run_json(d, a, session.settings, sweep=session.sweep), encoding="utf-8")
        out[views["run_file"]] = gr.DownloadButton(value=str(run_path), interactive=True)
    if d is not None:
        animation_path = folder / "unmask-denoising.html"
        animation_path.write_text(export.animation_html(d, session.diffusion_tokenizer, title=prompt),
                                  encoding="utf-8")
        out[views["animation_file"]] = gr.DownloadButton(value=str(animation_path), interactive=True)
        out[views["make_gif"]] = gr.Button(interactive=True)
    out[views["progress"]] = progress("stopped" if stopped else "finished")
    return out


def answer_text(history: History | None, tokenizer) -> str:
    """The answer as text for the next turn's chat template ('' when there is none)."""
    if history is None or tokenizer is None:
        return ""
    return tokenizer.decode(history.answer_ids(), skip_special_tokens=True).strip()


def replay_length(session: Session) -> int:
    if session.diffusion is not None:
        return len(session.diffusion.steps)
    return len(session.autoregressive.steps) if session.autoregressive is not None else 0


def ar_step_for(diffusion: History | None, ar: History, step: int, follow: str) -> int:
    """The AR step shown beside diffusion step `step`: by elapsed seconds, or by share of each run.

    ar_step_for(d, a, 0, ...) -> 0; at the last diffusion step, every AR step that had happened by then.
    """
    if diffusion is None:
        return min(step, len(ar.steps))
    if step <= 0 or not diffusion.steps:
        return 0
    if follow == SAME_SHARE:
        return round(len(ar.steps) * step / len(diffusion.steps))
    at = diffusion.elapsed()[step - 1]
    return sum(1 for seconds in ar.elapsed() if seconds <= at + 1e-9)


def replay_views(session: Session, step: int, follow: str):
    """The two panels and their figures as they were at diffusion step `step`."""
    d, a = session.diffusion, session.autoregressive
    outputs = []
    if d is not None:
        step = max(0, min(step, len(d.steps)))
        outputs.append(panel_html(generation.DIFFUSION, session.turns[:-1],
                                  canvas_html(d, session.diffusion_tokenizer, step)))
    else:
        outputs.append(gr.skip())
    if a is not None:
        ar_step = ar_step_for(d, a, step, follow)
        outputs.append(panel_html(generation.AUTOREGRESSIVE, session.turns[:-1],
                                  canvas_html(a, session.ar_tokenizer, ar_step)))
    else:
        outputs.append(gr.skip())
    outputs.append(stats_html(d.as_of(step), "replay", generation.DIFFUSION, f"replay · step {step}")
                   if d is not None else gr.skip())
    outputs.append(stats_html(a.as_of(ar_step), "replay", generation.AUTOREGRESSIVE, f"replay · token {ar_step}")
                   if a is not None else gr.skip())
    return tuple(outputs)
