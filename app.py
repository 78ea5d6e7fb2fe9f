"""Unmask's page: a diffusion LM and an autoregressive LM answer the same prompt, side by side.

This file is the page's wiring only: `build_demo` takes the components page/layout.py lays out and wires them
to handlers, section by section (`_wire_*`); `launch` serves it. The rooms behind it live in page/: the worker side of a race (page/race.py), the pickers
and memory checks (page/pickers.py), the settings and help texts (page/settings.py), a run's session,
its frames and replay (page/session.py), the HTML fragments around the canvases (page/fragments.py).
The canvas and charts are visualize/'s; models and sampling are generation/'s.

The page starts on the first preset that fits the hardware it finds (page/start.py) and says why in
one line; its settings start at the picked diffusion model's recommended ones
(generation.recommended_config, page/settings.py) and change with the diffusion model. With
UNMASK_PROFILE=space and CUDA present, that pair is loaded on "cuda:0" at startup (`preload`).
Custom model ids are refused unless UNMASK_ALLOW_CUSTOM_MODELS=1 (page/pickers.py).
Programs get plain data from /generate_data and /sweep_data (page/api.py); the page's own handlers are
undocumented or private, so the API docs and the MCP server (`--mcp` or GRADIO_MCP_SERVER=True) show
only those two. Left out: authentication, persistence of runs beyond a session.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

import generation
from generation import ConfigError
from page.api import data_endpoints
from page.fragments import diffusion_title_html, esc, message_html, placeholder_html, stats_html
from page import lesson_page
from page.layout import build_layout
from page.pickers import (ModelGate, custom_models_allowed, default_load, matching_preset, model_choices, picker_note,
                          preload, preset_named)
from page.session import Session, new_session, replay_length, replay_views, run_generation
from page.settings import ANSWER, DEFAULTS, RECOMMENDED_FIELDS, Settings, recommended_settings
from page.start import start_preset
from page.sweep import run_sweep_page
from visualize import export

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
CSS_PATHS = [ASSETS / "unmask.css", ASSETS / "page.css", ASSETS / "lessons.css"]  # lessons.css: the presenter view
JS_PATH = ASSETS / "page.js"  # first visit: How to read this open; the arrow keys step the replay
EXAMPLES_FILE = ASSETS / "examples.json"

CONCURRENCY_LIMIT = 4  # generations running at once across all users; the rest wait in the queue


def load_examples() -> list[str]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))["prompts"]


def build_demo(load=default_load, diffusion_model: str | None = None, ar_model: str | None = None,
               extra_choices: tuple[list[str], list[str]] = ([], []), custom_models: bool | None = None) -> gr.Blocks:
    """The page. `load(name)` returns a DiffusionLM or CausalLM (tests pass tiny models); the pickers
    start on the first preset that fits this machine (page/start.py) unless models are named. Only the
    pickers' models load unless `custom_models` (default: UNMASK_ALLOW_CUSTOM_MODELS when the page is
    built) allows any name."""
    start = start_preset()
    start_line = "" if diffusion_model or ar_model else start.reason
    diffusion_model = diffusion_model or start.preset.diffusion
    ar_model = ar_model or start.preset.autoregressive
    diffusion_choices, ar_choices = model_choices()
    picks = SimpleNamespace(
        diffusion_model=diffusion_model, ar_model=ar_model, picked_preset=matching_preset(diffusion_model, ar_model),
        diffusion_choices=list(dict.fromkeys([diffusion_model, *extra_choices[0], *diffusion_choices])),
        ar_choices=list(dict.fromkeys([ar_model, *extra_choices[1], *ar_choices])),
        custom=custom_models_allowed() if custom_models is None else custom_models)
    load = ModelGate(load, frozenset(picks.diffusion_choices + picks.ar_choices), picks.custom)
    defaults = recommended_settings(diffusion_model)  # the picked model's measured starting point

    with gr.Blocks(title="Unmask: watch a diffusion LM think") as demo:
        session = gr.State(new_session)
        ui = build_layout(defaults, load_examples(), start_line, picks)
        ui.session = session
        views = dict(banner=ui.banner, legend=ui.legend, diffusion_view=ui.diffusion_view,
                     diffusion_stats=ui.diffusion_stats, ar_view=ui.ar_view, ar_stats=ui.ar_stats,
                     progress=ui.progress, replay=ui.replay, previous=ui.previous, next=ui.next, play=ui.play,
                     pause=ui.pause, commits=ui.commits_plot,
                     race=ui.race_plot, map=ui.map_plot, scores=ui.scores_plot, run_file=ui.run_file,
                     animation_file=ui.animation_file, make_gif=ui.make_gif)
        run = _wire_run(ui, views, load, defaults)
        _wire_checks(ui)
        _wire_pickers(ui)
        sweep = _wire_sweep(ui, load)
        _wire_lessons(ui, run, sweep)
        # The API for programs (and the MCP tools): plain data, named parameters.
        for endpoint in data_endpoints(load, diffusion_model, ar_model):
            gr.api(endpoint, api_name=endpoint.__name__, concurrency_limit=CONCURRENCY_LIMIT,
                   concurrency_id="generate")
        _wire_start_over(ui)
        _wire_replay(ui)
    hide_session_loader(demo)
    return demo


def _sampling_inputs(ui: SimpleNamespace) -> list:
    return [ui.gen_length, ui.steps, ui.block_length, ui.algorithm, ui.temperature, ui.top_p, ui.repetition_penalty,
            ui.dry_multiplier, ui.alg_temp, ui.threshold, ui.seed, ui.cache]


def _settings_inputs(ui: SimpleNamespace) -> list:
    return [*_sampling_inputs(ui), ui.task, ui.template, ui.blank_length]  # the sweep takes no infilling


def _settings(gen_length, steps, block_length, algorithm, temperature, top_p, repetition_penalty, dry_multiplier,
              alg_temp, threshold, seed, cache, task=ANSWER, template="", blank_length=DEFAULTS.blank_length) -> Settings:
    """The controls' values (in `_settings_inputs` order) by name."""
    return Settings(gen_length=gen_length, steps=steps, block_length=block_length, algorithm=algorithm,
                    temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty,
                    dry_multiplier=dry_multiplier, alg_temp=alg_temp, threshold=threshold, seed=seed,
                    cache=cache, task=task, template=template, blank_length=blank_length)


def _wire_run(ui: SimpleNamespace, views: dict, load, defaults: Settings) -> tuple:
    """Generate (the button, Enter in the prompt) and Stop; returns (handler, inputs, outputs) for the lessons."""
    def run(session_state: Session, prompt: str, diffusion_model: str, ar_model: str, mode: str,
            gen_length: float, steps: float, block_length: float | None, algorithm: str, temperature: float,
            top_p: float, repetition_penalty: float, dry_multiplier: float, alg_temp: float, threshold: float,
            seed: float, cache: str = "none", task: str = ANSWER, template: str = "",
            blank_length: float = defaults.blank_length):
        """Named parameters: an API client sees gen_length, steps, ... (not param_5). cache: none, prefix or
        dual. Infilling: task (one of the TASKS), template (text with ___ / ___8 blanks, or position:word
        pairs), blank_length."""
        settings = _settings(gen_length, steps, block_length, algorithm, temperature, top_p, repetition_penalty,
                             dry_multiplier, alg_temp, threshold, seed, cache, task, template, blank_length)
        yield from run_generation(session_state, load, views, prompt, diffusion_model, ar_model, mode, settings)

    inputs = [ui.session, ui.prompt, ui.diffusion_name, ui.ar_name, ui.mode, *_settings_inputs(ui)]
    ui.generate.click(run, inputs, list(views.values()), api_name="generate", api_visibility="undocumented",
                      concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate", show_progress="hidden")
    ui.prompt.submit(run, inputs, list(views.values()), api_visibility="private", concurrency_limit=CONCURRENCY_LIMIT,
                     concurrency_id="generate", show_progress="hidden")
    ui.stop.click(request_stop, [ui.session], None, api_name="stop", api_visibility="undocumented", queue=False)
    return run, inputs, list(views.values())


def request_stop(session_state: Session) -> None:
    session_state.request_stop()


def _wire_checks(ui: SimpleNamespace) -> None:
    """Say at once, inside the settings panel and under the template, when a change makes them unrunnable."""
    def check_settings(*values):
        try:
            _settings(*values).configs()
        except ConfigError as error:
            return message_html("These settings cannot run", str(error))
        return ""

    def check_infill(task: str, template: str, blank_length: float):
        """Whether the template can be read (lengths are checked per model at Generate)."""
        try:
            spec = Settings(task=task, template=template, blank_length=blank_length).infill()
        except ConfigError as error:
            return message_html("This cannot be filled in", str(error))
        return "" if spec is None else f'<div class="um-note">Reads as {esc(spec.describe())}.</div>'

    for control in _settings_inputs(ui):
        control.change(check_settings, _settings_inputs(ui), ui.settings_check, api_visibility="private", queue=False)
    ui.algorithm.change(diffusion_title_html, ui.algorithm, ui.diffusion_title, api_visibility="private", queue=False)
    for control in (ui.task, ui.template, ui.blank_length):
        control.change(check_infill, [ui.task, ui.template, ui.blank_length], ui.infill_check,
                       api_visibility="private", queue=False)


def _wire_pickers(ui: SimpleNamespace) -> None:
    """A preset sets both models; a model sets the preset (or none) and, for diffusion, its recommended settings."""
    def pick_preset(label: str):
        chosen = preset_named(label)
        if chosen is None:
            return gr.skip(), gr.skip(), gr.skip()
        return chosen.diffusion, chosen.autoregressive, picker_note(chosen.diffusion, chosen.autoregressive)

    def pick_model(diffusion_pick: str, ar_pick: str):
        chosen = matching_preset(diffusion_pick, ar_pick)
        return (chosen.label if chosen else None), picker_note(diffusion_pick, ar_pick)

    def recommend(diffusion_pick: str, gen_length: float, lesson: str | None = None):
        """A new diffusion model (picked, or set by a preset) starts from its recommended settings; the answer
        length, temperature, top-p, position temperature and seed stay as the user set them. A lesson's model
        keeps the lesson's settings (whichever of the two updates lands last)."""
        picked = lesson_page.picked(lesson)
        if picked is not None and picked.diffusion_model == diffusion_pick:
            return tuple(getattr(picked.settings, name) for name in RECOMMENDED_FIELDS)
        try:
            chosen = recommended_settings((diffusion_pick or "").strip(), gen_length)
        except ConfigError:  # no usable answer length yet: keep the controls as they are
            return tuple(gr.skip() for _ in RECOMMENDED_FIELDS)
        return tuple(getattr(chosen, name) for name in RECOMMENDED_FIELDS)

    ui.diffusion_name.change(recommend, [ui.diffusion_name, ui.gen_length, ui.lesson_pick],
                             [getattr(ui, name) for name in RECOMMENDED_FIELDS], api_visibility="private", queue=False)
    ui.preset.input(pick_preset, [ui.preset], [ui.diffusion_name, ui.ar_name, ui.note], api_name="preset",
                    api_visibility="undocumented", queue=False)
    for picker in (ui.diffusion_name, ui.ar_name):
        picker.change(pick_model, [ui.diffusion_name, ui.ar_name], [ui.preset, ui.note], api_visibility="private",
                      queue=False)


def _wire_sweep(ui: SimpleNamespace, load) -> tuple:
    """Run the sweep and Stop; returns (handler, inputs, outputs) for the lessons."""
    sweep_views = dict(sweep_status=ui.sweep_status, sweep_plot=ui.sweep_plot, sweep_answers=ui.sweep_answers,
                       run_file=ui.run_file)

    def sweep(session_state: Session, prompt: str, diffusion_model: str, ar_model: str, steps_text: str,
              threshold: bool, *sampling):
        yield from run_sweep_page(session_state, load, sweep_views, prompt, diffusion_model, ar_model,
                                  _settings(*sampling), steps_text, threshold)

    ui.sweep_stop.click(request_stop, [ui.session], None, api_visibility="private", queue=False)
    inputs = [ui.session, ui.prompt, ui.diffusion_name, ui.ar_name, ui.sweep_steps, ui.sweep_threshold,
              *_sampling_inputs(ui)]
    ui.sweep_run.click(sweep, inputs, list(sweep_views.values()), api_visibility="private",
                       concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate", show_progress="hidden")
    return sweep, inputs, list(sweep_views.values())


def _wire_lessons(ui: SimpleNamespace, run: tuple, sweep: tuple) -> None:
    """A lesson, picked or the next one: its prompt, models, settings and sections, then Generate, its sweep (if it
    has one) and its take-away file."""
    (run_fn, run_inputs, run_outputs), (sweep_fn, sweep_inputs, sweep_outputs) = run, sweep

    def lesson_sweep(title: str | None, *args):
        lesson = lesson_page.picked(title)
        if lesson is None or not lesson.sweep:
            yield tuple(gr.skip() for _ in sweep_outputs)  # no sweep: leave its views as they are
            return
        yield from sweep_fn(*args)

    busy = dict(api_visibility="private", concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate",
                show_progress="hidden")
    for event, choose in ((ui.lesson_pick.input, lesson_page.picked), (ui.lesson_next.click, lesson_page.after)):
        (event(lambda title, session, choose=choose: lesson_page.apply(ui, choose(title), session),
               [ui.lesson_pick, ui.session],
               lesson_page.apply_outputs(ui), api_visibility="private", queue=False)
         .success(run_fn, run_inputs, run_outputs, **busy)
         .then(lesson_sweep, [ui.lesson_pick, *sweep_inputs], sweep_outputs, **busy)
         .then(lesson_page.takeaway, [ui.session, ui.lesson_pick], ui.lesson_takeaway, api_visibility="private"))


def _wire_start_over(ui: SimpleNamespace) -> None:
    """Clear conversation: a fresh session, and every view as the page started."""
    def start_over(session_state: Session) -> dict:
        session_state.request_stop()
        off = gr.Button(interactive=False)
        return {ui.session: Session(), ui.prompt: "", ui.banner: "",
                ui.diffusion_view: placeholder_html("The canvas appears here."),
                ui.diffusion_stats: stats_html(None, "waiting", generation.DIFFUSION),
                ui.ar_view: placeholder_html("The answer streams here."),
                ui.ar_stats: stats_html(None, "waiting", generation.AUTOREGRESSIVE),
                ui.replay: gr.Slider(value=0, maximum=1, interactive=False), ui.previous: off, ui.next: off,
                ui.play: off, ui.pause: off,
                ui.ticker: gr.Timer(active=False), ui.commits_plot: None, ui.race_plot: None, ui.map_plot: None,
                ui.scores_plot: None, ui.run_file: gr.DownloadButton(value=None, interactive=False),
                ui.animation_file: gr.DownloadButton(value=None, interactive=False), ui.make_gif: off,
                ui.gif_file: gr.File(value=None, visible=False), ui.sweep_status: "", ui.sweep_plot: None,
                ui.sweep_answers: ""}

    outputs = [ui.session, ui.prompt, ui.diffusion_view, ui.diffusion_stats, ui.ar_view, ui.ar_stats, ui.banner,
               ui.replay, ui.previous, ui.next, ui.play, ui.pause, ui.ticker, ui.commits_plot, ui.race_plot, ui.map_plot, ui.scores_plot,
               ui.run_file, ui.animation_file, ui.make_gif, ui.gif_file, ui.sweep_status, ui.sweep_plot,
               ui.sweep_answers]
    ui.clear.click(start_over, [ui.session], outputs, api_name="clear", api_visibility="undocumented")


def _wire_replay(ui: SimpleNamespace) -> None:
    """The replay slider, Play / Pause (a timer), the AR panel's timeline, and the GIF."""
    def show_step(session_state: Session, step: float, follow: str):
        return replay_views(session_state, int(step or 0), follow)

    def step_by(delta: int):
        def move(session_state: Session, step: float, follow: str):
            """Previous / Next step: the slider and both panels one step back or on (within the run)."""
            moved = max(0, min(int(step or 0) + delta, replay_length(session_state)))
            return (gr.Slider(value=moved), *replay_views(session_state, moved, follow))
        return move

    def start_play(session_state: Session, step: float):
        last = replay_length(session_state)
        start = 0 if int(step or 0) >= last else int(step or 0)
        return gr.Timer(active=True), gr.Slider(value=start)

    def tick(session_state: Session, step: float, follow: str):
        last = replay_length(session_state)
        nxt = min(int(step or 0) + 1, last)
        return (gr.Slider(value=nxt), *replay_views(session_state, nxt, follow), gr.Timer(active=nxt < last))

    def gif(session_state: Session):
        if session_state.diffusion is None:
            raise gr.Error("Run a generation first: the GIF shows the diffusion canvas.")
        path = session_state.files_dir() / "unmask-denoising.gif"
        export.animation_gif(session_state.diffusion, session_state.diffusion_tokenizer, path)
        return gr.File(value=str(path), visible=True)

    shown = [ui.diffusion_view, ui.ar_view, ui.diffusion_stats, ui.ar_stats]
    ui.replay.input(show_step, [ui.session, ui.replay, ui.timeline], shown, api_name="replay",
                    api_visibility="undocumented", show_progress="hidden", trigger_mode="always_last")
    ui.timeline.change(show_step, [ui.session, ui.replay, ui.timeline], shown, api_visibility="private",
                       show_progress="hidden")
    for button, delta in ((ui.previous, -1), (ui.next, 1)):
        button.click(step_by(delta), [ui.session, ui.replay, ui.timeline], [ui.replay, *shown],
                     api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    ui.play.click(start_play, [ui.session, ui.replay], [ui.ticker, ui.replay], api_visibility="private", queue=False)
    ui.pause.click(lambda: gr.Timer(active=False), None, [ui.ticker], api_visibility="private", queue=False)
    ui.ticker.tick(tick, [ui.session, ui.replay, ui.timeline], [ui.replay, *shown, ui.ticker], api_visibility="private",
                   show_progress="hidden", trigger_mode="always_last")
    ui.make_gif.click(gif, [ui.session], [ui.gif_file], api_name="gif", api_visibility="undocumented")


def hide_session_loader(demo: gr.Blocks) -> None:
    """gr.State(new_session) registers a public load event, which would be an API endpoint and an MCP tool:
    keep it callable (the page needs it) but out of the docs and the tools."""
    for block_fn in demo.fns.values():
        if block_fn.fn is new_session:
            block_fn.api_visibility = "undocumented"
    demo.config = demo.get_config_file()


def launch(demo: gr.Blocks | None = None, **overrides):
    """Launch with the page's CSS and theme; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured by Gradio, and
    so is GRADIO_MCP_SERVER=True (the MCP server), unless `mcp_server` is passed."""
    demo = demo if demo is not None else build_demo()
    options = dict(css_paths=[str(p) for p in CSS_PATHS if p.exists()], theme=theme(), show_error=True,
                   js=JS_PATH.read_text(encoding="utf-8"))
    options.update(overrides)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT).launch(**options)


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def launch_options(argv: list[str] | None = None) -> dict:
    """`python app.py --mcp` -> {"mcp_server": True}; no flag -> {} (Gradio then reads GRADIO_MCP_SERVER)."""
    parser = argparse.ArgumentParser(description="Serve the Unmask page.")
    parser.add_argument("--mcp", action="store_true",
                        help="also serve the page as an MCP server (same as GRADIO_MCP_SERVER=True)")
    return {"mcp_server": True} if parser.parse_args(argv).mcp else {}


if __name__ == "__main__":
    options = launch_options()
    logging.basicConfig(level=os.environ.get("UNMASK_LOG", "INFO"))
    page = build_demo()  # the pickers' verdicts are taken before the preload fills the GPU
    preload(start_preset().preset)  # the same verdicts, cached: the preset the page starts on
    launch(page, **options)
