"""Unmask's page: a diffusion LM and an autoregressive LM answer the same prompt, side by side.

This file is the page only: `build_demo` lays out the controls and wires them to handlers, `launch`
serves it. The rooms behind it live in page/: the worker side of a race (page/race.py), the pickers
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

import gradio as gr

import generation
from generation import ConfigError
from generation.config import ALGORITHMS, CACHE_MODES
from page.api import data_endpoints
from page.fragments import esc, legend_html, message_html, placeholder_html, start_line_html, stats_html
from page.pickers import (ModelGate, custom_models_allowed, default_load, matching_preset, model_choices,
                          picker_choices, picker_note, preload, preset_choices, preset_named)
from page.session import Session, new_session, replay_length, replay_views, run_generation
from page.settings import (ANSWER, HOW_TO_READ, MODES, RECOMMENDED_FIELDS, SAME_SECONDS, SETTING_HELP, SWEEP_HELP,
                           TASKS, TIMELINES, TOGETHER, Settings, recommended_settings)
from page.start import start_preset
from page.sweep import run_sweep_page
from visualize import export

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
CSS_PATHS = [ASSETS / "unmask.css", ASSETS / "page.css"]
EXAMPLES_FILE = ASSETS / "examples.json"

CONCURRENCY_LIMIT = 4  # generations running at once across all users; the rest wait in the queue
REPLAY_TICK_SECONDS = 0.25  # autoplay speed: one step per tick


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
    diffusion_choices = list(dict.fromkeys([diffusion_model, *extra_choices[0], *diffusion_choices]))
    ar_choices = list(dict.fromkeys([ar_model, *extra_choices[1], *ar_choices]))
    picked_preset = matching_preset(diffusion_model, ar_model)
    custom_models = custom_models_allowed() if custom_models is None else custom_models
    load = ModelGate(load, frozenset(diffusion_choices + ar_choices), custom_models)
    defaults = recommended_settings(diffusion_model)  # the picked model's measured starting point

    with gr.Blocks(title="Unmask: watch a diffusion LM think") as demo:
        session = gr.State(new_session)
        gr.HTML('<header class="um-header"><h1>Unmask</h1><p>A diffusion language model fills a canvas of '
                'blanks in any order; an autoregressive model writes left to right. Same prompt, side by '
                'side, every step coloured by when it happened.</p></header>')

        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", placeholder="Ask something…", lines=2, max_lines=8,
                                    elem_id="um-prompt", autofocus=True)
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", elem_id="um-generate")
                    stop = gr.Button("Stop", variant="stop", elem_id="um-stop")
                    clear = gr.Button("Clear conversation", elem_id="um-clear")
                gr.Examples(examples=[[p] for p in load_examples()], inputs=[prompt], label="Try one")
                with gr.Accordion("Fill in the blanks (infilling)", open=False, elem_id="um-infill"):
                    task = gr.Radio(list(TASKS), value=ANSWER, label="The diffusion model writes",
                                    info=SETTING_HELP["task"], elem_id="um-task")
                    template = gr.Textbox(label="Text with blanks, or position:word pairs", lines=2, max_lines=6,
                                          placeholder="The capital of France is ___, and it is famous for ___8.",
                                          info=SETTING_HELP["template"], elem_id="um-template")
                    blank_length = gr.Number(value=defaults.blank_length, precision=0, minimum=1,
                                             label="Default blank length (tokens)",
                                             info=SETTING_HELP["blank_length"], elem_id="um-blank-length")
                    infill_check = gr.HTML("", elem_id="um-infill-check")
            with gr.Column(scale=2):
                preset = gr.Dropdown(preset_choices(), value=picked_preset.label if picked_preset else None,
                                     label="Preset: a diffusion model and its AR partner", elem_id="um-preset",
                                     info="Sets both models below; empty when they are a pair of your own.")
                gr.HTML(start_line_html(start_line), elem_id="um-start")
                diffusion_name = gr.Dropdown(picker_choices(diffusion_choices), value=diffusion_model,
                                             label="Diffusion model", allow_custom_value=load.custom,
                                             elem_id="um-diffusion-model")
                ar_name = gr.Dropdown(picker_choices(ar_choices), value=ar_model, label="Autoregressive model",
                                      allow_custom_value=load.custom, elem_id="um-ar-model")
                note = gr.HTML(picker_note(diffusion_model, ar_model), elem_id="um-fit")
                mode = gr.Radio(list(MODES), value=TOGETHER, label="Timing", info=SETTING_HELP["mode"],
                                elem_id="um-mode")

        with gr.Accordion("Settings", open=False, elem_id="um-settings"):
            with gr.Row():
                gen_length = gr.Slider(8, 512, value=defaults.gen_length, step=8, label="Answer length (tokens)",
                                       info=SETTING_HELP["gen_length"], elem_id="um-gen-length")
                steps = gr.Slider(1, 512, value=defaults.steps, step=1, label="Steps",
                                  info=SETTING_HELP["steps"], elem_id="um-steps")
                block_length = gr.Number(value=defaults.block_length, precision=0, label="Block length",
                                         info=SETTING_HELP["block_length"], elem_id="um-block-length")
            with gr.Row():
                algorithm = gr.Dropdown(list(ALGORITHMS), value=defaults.algorithm, label="Algorithm",
                                        info=SETTING_HELP["algorithm"], elem_id="um-algorithm")
                temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature",
                                        info=SETTING_HELP["temperature"], elem_id="um-temperature")
                top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.05, label="Top-p",
                                  info=SETTING_HELP["top_p"], elem_id="um-top-p")
            with gr.Row():
                alg_temp = gr.Slider(0, 2, value=defaults.alg_temp, step=0.05, label="Position temperature "
                                     "(alg_temp)", info=SETTING_HELP["alg_temp"], elem_id="um-alg-temp")
                threshold = gr.Slider(0, 1, value=defaults.threshold, step=0.05, label="Confidence threshold",
                                      info=SETTING_HELP["threshold"], elem_id="um-threshold")
                seed = gr.Number(value=defaults.seed, precision=0, label="Seed", info=SETTING_HELP["seed"],
                                 elem_id="um-seed")
            with gr.Row():
                cache = gr.Radio(list(CACHE_MODES), value=defaults.cache, label="Cache", info=SETTING_HELP["cache"],
                                 elem_id="um-cache")
            settings_check = gr.HTML("", elem_id="um-settings-check")

        banner = gr.HTML("", elem_id="um-banner")
        with gr.Row(elem_classes="um-legend-row", equal_height=False):
            legend = gr.HTML(legend_html(defaults.steps), elem_id="um-legend", scale=2)
            gr.Markdown(HOW_TO_READ, elem_id="um-how-to-read", scale=3)

        with gr.Row(equal_height=False, elem_classes="um-panels"):
            with gr.Column(elem_classes="um-panel um-panel-diffusion"):
                gr.HTML('<h2 class="um-panel-title">Diffusion <span>fills blanks in any order</span></h2>')
                diffusion_view = gr.HTML(placeholder_html("The canvas appears here."), elem_id="um-diffusion")
                diffusion_stats = gr.HTML(stats_html(None, "waiting", generation.DIFFUSION),
                                          elem_id="um-diffusion-stats")
            with gr.Column(elem_classes="um-panel um-panel-ar"):
                gr.HTML('<h2 class="um-panel-title">Autoregressive <span>writes left to right</span></h2>')
                ar_view = gr.HTML(placeholder_html("The answer streams here."), elem_id="um-ar")
                ar_stats = gr.HTML(stats_html(None, "waiting", generation.AUTOREGRESSIVE), elem_id="um-ar-stats")

        with gr.Column(elem_classes="um-replay"):
            with gr.Row(equal_height=True):
                replay = gr.Slider(0, 1, value=0, step=1, label="Replay: diffusion step", interactive=False,
                                   elem_id="um-replay", scale=6,
                                   info="Drag to see the canvas as it was after any step; Play runs it forward.")
                with gr.Column(scale=1, min_width=180, elem_classes="um-replay-buttons"):
                    play = gr.Button("▶ Play", interactive=False, elem_id="um-play", size="md")
                    pause = gr.Button("❚❚ Pause", interactive=False, elem_id="um-pause", size="md")
            timeline = gr.Radio(list(TIMELINES), value=SAME_SECONDS, label="The autoregressive panel follows at",
                                info="same seconds: what it had written after as many seconds as the diffusion "
                                     "step took (a race); same share: the same fraction of its own run.",
                                elem_id="um-timeline")
        ticker = gr.Timer(REPLAY_TICK_SECONDS, active=False)

        with gr.Accordion("Charts", open=True, elem_id="um-charts"):
            with gr.Row():
                commits_plot = gr.Plot(label="Tokens committed per step", elem_id="um-chart-commits")
                race_plot = gr.Plot(label="The race: tokens against wall time", elem_id="um-chart-race")
            with gr.Row():
                map_plot = gr.Plot(label="Denoising map: when each position was last changed", elem_id="um-chart-map")
                scores_plot = gr.Plot(label="Scores per step", elem_id="um-chart-scores")

        with gr.Accordion("Steps sweep: what do fewer steps cost?", open=False, elem_id="um-sweep"):
            gr.Markdown(SWEEP_HELP)
            with gr.Row(equal_height=True):
                sweep_steps = gr.Textbox(label="Step counts", placeholder="empty: answer length × 1, ½, ¼, ⅛",
                                         elem_id="um-sweep-steps", scale=3)
                sweep_threshold = gr.Checkbox(value=True, label="Add a Fast-dLLM threshold 0.9 row",
                                              elem_id="um-sweep-threshold", scale=2)
                sweep_run = gr.Button("Run the sweep", variant="primary", elem_id="um-sweep-run", scale=1)
                sweep_stop = gr.Button("Stop", variant="stop", elem_id="um-sweep-stop", scale=1)
            sweep_status = gr.HTML("", elem_id="um-sweep-status")
            sweep_plot = gr.Plot(label="Quality against steps", elem_id="um-sweep-chart")
            sweep_answers = gr.HTML("", elem_id="um-sweep-answers")

        with gr.Accordion("Export", open=False, elem_id="um-export"):
            with gr.Row():
                run_file = gr.DownloadButton("Run (JSON)", value=None, interactive=False, elem_id="um-run-json")
                animation_file = gr.DownloadButton("Animation (HTML, for slides)", value=None, interactive=False,
                                                   elem_id="um-animation-html")
                make_gif = gr.Button("Make a GIF", interactive=False, elem_id="um-make-gif")
            gif_file = gr.File(label="Animation (GIF)", visible=False, elem_id="um-gif")

        progress = gr.JSON(visible=False, elem_id="um-progress")

        sampling_inputs = [gen_length, steps, block_length, algorithm, temperature, top_p, alg_temp, threshold, seed,
                           cache]
        settings_inputs = [*sampling_inputs, task, template, blank_length]  # the sweep takes no infilling
        run_outputs = [banner, legend, diffusion_view, diffusion_stats, ar_view, ar_stats, progress, replay, play,
                       pause, commits_plot, race_plot, map_plot, scores_plot, run_file, animation_file, make_gif]
        views = dict(banner=banner, legend=legend, diffusion_view=diffusion_view, diffusion_stats=diffusion_stats,
                     ar_view=ar_view, ar_stats=ar_stats, progress=progress, replay=replay, play=play, pause=pause,
                     commits=commits_plot, race=race_plot, map=map_plot, scores=scores_plot, run_file=run_file,
                     animation_file=animation_file, make_gif=make_gif)

        def run(session_state: Session, prompt: str, diffusion_model: str, ar_model: str, mode: str,
                gen_length: float, steps: float, block_length: float | None, algorithm: str, temperature: float,
                top_p: float, alg_temp: float, threshold: float, seed: float, cache: str = "none", task: str = ANSWER,
                template: str = "", blank_length: float = defaults.blank_length):
            """Named parameters: an API client sees gen_length, steps, ... (not param_5). cache: none, prefix or
            dual. Infilling: task (one of the TASKS), template (text with ___ / ___8 blanks, or position:word
            pairs), blank_length."""
            settings = Settings(gen_length, steps, block_length, algorithm, temperature, top_p, alg_temp, threshold,
                                seed, cache, task, template, blank_length)
            yield from run_generation(session_state, load, views, prompt, diffusion_model, ar_model, mode, settings)

        generate.click(run, [session, prompt, diffusion_name, ar_name, mode, *settings_inputs], run_outputs,
                       api_name="generate", api_visibility="undocumented", concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate",
                       show_progress="hidden")
        prompt.submit(run, [session, prompt, diffusion_name, ar_name, mode, *settings_inputs], run_outputs,
                      api_visibility="private", concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate",
                      show_progress="hidden")

        def check_settings(gen_length: float, steps: float, block_length: float | None, algorithm: str,
                           temperature: float, top_p: float, alg_temp: float, threshold: float, seed: float,
                           cache: str, task: str, template: str, blank_length: float):
            """Says at once, inside the settings panel, when a change makes the settings unrunnable."""
            settings = Settings(gen_length, steps, block_length, algorithm, temperature, top_p, alg_temp, threshold,
                                seed, cache, task, template, blank_length)
            try:
                settings.configs()
            except ConfigError as error:
                return message_html("These settings cannot run", str(error))
            return ""

        for control in settings_inputs:
            control.change(check_settings, settings_inputs, settings_check, api_visibility="private", queue=False)

        def check_infill(task: str, template: str, blank_length: float):
            """Says at once, under the template, whether it can be read (lengths are checked per model at Generate)."""
            try:
                spec = Settings(task=task, template=template, blank_length=blank_length).infill()
            except ConfigError as error:
                return message_html("This cannot be filled in", str(error))
            return "" if spec is None else f'<div class="um-note">Reads as {esc(spec.describe())}.</div>'

        for control in (task, template, blank_length):
            control.change(check_infill, [task, template, blank_length], infill_check, api_visibility="private",
                           queue=False)

        def pick_preset(label: str):
            chosen = preset_named(label)
            if chosen is None:
                return gr.skip(), gr.skip(), gr.skip()
            return chosen.diffusion, chosen.autoregressive, picker_note(chosen.diffusion, chosen.autoregressive)

        def pick_model(diffusion_pick: str, ar_pick: str):
            chosen = matching_preset(diffusion_pick, ar_pick)
            return (chosen.label if chosen else None), picker_note(diffusion_pick, ar_pick)

        def recommend(diffusion_pick: str, gen_length: float):
            """A new diffusion model (picked, or set by a preset) starts from its recommended settings; the answer
            length, temperature, top-p, position temperature and seed stay as the user set them."""
            try:
                chosen = recommended_settings((diffusion_pick or "").strip(), gen_length)
            except ConfigError:  # no usable answer length yet: keep the controls as they are
                return tuple(gr.skip() for _ in RECOMMENDED_FIELDS)
            return tuple(getattr(chosen, name) for name in RECOMMENDED_FIELDS)

        recommended_controls = dict(steps=steps, block_length=block_length, algorithm=algorithm, threshold=threshold,
                                    cache=cache)
        diffusion_name.change(recommend, [diffusion_name, gen_length],
                              [recommended_controls[name] for name in RECOMMENDED_FIELDS], api_visibility="private",
                              queue=False)

        preset.input(pick_preset, [preset], [diffusion_name, ar_name, note], api_name="preset",
                     api_visibility="undocumented", queue=False)
        for picker in (diffusion_name, ar_name):
            picker.change(pick_model, [diffusion_name, ar_name], [preset, note], api_visibility="private",
                          queue=False)

        def request_stop(session_state: Session) -> None:
            session_state.request_stop()

        stop.click(request_stop, [session], None, api_name="stop", api_visibility="undocumented", queue=False)
        sweep_stop.click(request_stop, [session], None, api_visibility="private", queue=False)

        sweep_views = dict(sweep_status=sweep_status, sweep_plot=sweep_plot, sweep_answers=sweep_answers,
                           run_file=run_file)

        def sweep(session_state: Session, prompt: str, diffusion_model: str, ar_model: str, steps_text: str,
                  threshold: bool, gen_length: float, steps: float, block_length: float | None, algorithm: str,
                  temperature: float, top_p: float, alg_temp: float, threshold_setting: float, seed: float,
                  cache: str):
            settings = Settings(gen_length, steps, block_length, algorithm, temperature, top_p, alg_temp,
                                threshold_setting, seed, cache)
            yield from run_sweep_page(session_state, load, sweep_views, prompt, diffusion_model, ar_model, settings,
                                      steps_text, threshold)

        sweep_run.click(sweep, [session, prompt, diffusion_name, ar_name, sweep_steps, sweep_threshold,
                                *sampling_inputs], list(sweep_views.values()), api_visibility="private",
                        concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate", show_progress="hidden")

        # The API for programs (and the MCP tools): plain data, named parameters.
        for endpoint in data_endpoints(load, diffusion_model, ar_model):
            gr.api(endpoint, api_name=endpoint.__name__, concurrency_limit=CONCURRENCY_LIMIT,
                   concurrency_id="generate")

        def start_over(session_state: Session):
            session_state.request_stop()
            fresh = Session()
            return (fresh, "", placeholder_html("The canvas appears here."),
                    stats_html(None, "waiting", generation.DIFFUSION), placeholder_html("The answer streams here."),
                    stats_html(None, "waiting", generation.AUTOREGRESSIVE), "",
                    gr.Slider(value=0, maximum=1, interactive=False),
                    gr.Button(interactive=False), gr.Button(interactive=False), gr.Timer(active=False),
                    None, None, None, None,
                    gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(value=None, interactive=False),
                    gr.Button(interactive=False), gr.File(value=None, visible=False), "", None, "")

        clear.click(start_over, [session], [session, prompt, diffusion_view, diffusion_stats, ar_view, ar_stats,
                                            banner, replay, play, pause, ticker, commits_plot, race_plot, map_plot,
                                            scores_plot, run_file, animation_file, make_gif, gif_file,
                                            sweep_status, sweep_plot, sweep_answers],
                    api_name="clear", api_visibility="undocumented")

        def show_step(session_state: Session, step: float, follow: str):
            return replay_views(session_state, int(step or 0), follow)

        replay_outputs = [diffusion_view, ar_view, diffusion_stats, ar_stats]
        replay.input(show_step, [session, replay, timeline], replay_outputs, api_name="replay",
                     api_visibility="undocumented",
                     show_progress="hidden", trigger_mode="always_last")
        timeline.change(show_step, [session, replay, timeline], replay_outputs, api_visibility="private",
                        show_progress="hidden")

        def start_play(session_state: Session, step: float):
            last = replay_length(session_state)
            start = 0 if int(step or 0) >= last else int(step or 0)
            return gr.Timer(active=True), gr.Slider(value=start)

        def tick(session_state: Session, step: float, follow: str):
            last = replay_length(session_state)
            nxt = min(int(step or 0) + 1, last)
            views_now = replay_views(session_state, nxt, follow)
            return (gr.Slider(value=nxt), *views_now, gr.Timer(active=nxt < last))

        play.click(start_play, [session, replay], [ticker, replay], api_visibility="private", queue=False)
        pause.click(lambda: gr.Timer(active=False), None, [ticker], api_visibility="private", queue=False)
        ticker.tick(tick, [session, replay, timeline], [replay, *replay_outputs, ticker], api_visibility="private",
                    show_progress="hidden", trigger_mode="always_last")

        def gif(session_state: Session):
            if session_state.diffusion is None:
                raise gr.Error("Run a generation first: the GIF shows the diffusion canvas.")
            path = session_state.files_dir() / "unmask-denoising.gif"
            export.animation_gif(session_state.diffusion, session_state.diffusion_tokenizer, path)
            return gr.File(value=str(path), visible=True)

        make_gif.click(gif, [session], [gif_file], api_name="gif", api_visibility="undocumented")
    hide_session_loader(demo)
    return demo


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
    options = dict(css_paths=[str(p) for p in CSS_PATHS if p.exists()], theme=theme(), show_error=True)
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
