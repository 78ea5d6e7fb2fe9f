"""The page's layout: every component of `app.build_demo`, section by section, in the order the page shows them.

Each section builds its components inside the caller's `gr.Blocks` and returns them by name; `build_layout`
returns them all (a namespace the wiring in app.py reads). Left out: what the components do (app.py wires them to
page/'s handlers) and the CSS (assets/).
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

import generation
from generation.decoders import ALGORITHMS, CACHE_MODES
from page.fragments import diffusion_title_html, legend_html, placeholder_html, start_line_html, stats_html
from page.lesson_page import lesson_box, lesson_picker
from page.pickers import picker_choices, picker_note, preset_choices
from page.settings import ANSWER, HOW_TO_READ, MODES, SAME_SECONDS, SETTING_HELP, SWEEP_HELP, TASKS, TIMELINES, TOGETHER

REPLAY_TICK_SECONDS = 0.25  # autoplay speed: one step per tick


def build_layout(defaults, examples: list[str], start_line: str, picks: SimpleNamespace) -> SimpleNamespace:
    """Every component, by name. `defaults`: the Settings the controls start at; `picks`: picked_preset (or None),
    diffusion_model, ar_model, diffusion_choices, ar_choices, custom (whether the pickers take any name).

    The stage (prompt, legend, both panels, replay) is the wide left column, so that on a laptop screen the
    canvases are in view as soon as a run starts; the side column holds how to read it, the models, the timing,
    infilling and settings. On a phone the columns stack, the stage first."""
    ui = {}
    gr.HTML('<header class="um-header"><h1>Unmask</h1><p>A diffusion LM fills blanks in any order, an '
            'autoregressive LM writes left to right: same prompt, each token coloured by the step that wrote it.'
            '</p></header>')
    with gr.Row(equal_height=False, elem_classes="um-main"):
        with gr.Column(scale=4, min_width=340, elem_classes="um-stage"):
            ui.update(_prompt(examples))
            ui.update(lesson_picker())
            ui.update(_panels_and_replay(defaults))
        with gr.Column(scale=1, min_width=300, elem_classes="um-side"):
            ui.update(lesson_box())
            gr.HTML(HOW_TO_READ, elem_id="um-how-to-read")
            ui.update(_pickers(start_line, picks))
            ui.update(_infill(defaults))
            ui.update(_settings(defaults))
    ui.update(_charts_and_sweep())
    ui.update(_export())
    return SimpleNamespace(**ui)


def _prompt(examples: list[str]) -> dict:
    with gr.Row(equal_height=True, elem_classes="um-prompt-row"):
        prompt = gr.Textbox(label="Prompt", show_label=False, placeholder="Your prompt: ask something…", lines=2,
                            max_lines=8, elem_id="um-prompt", autofocus=True, scale=5)
        with gr.Column(scale=1, min_width=130, elem_classes="um-run-buttons"):
            generate = gr.Button("Generate", variant="primary", elem_id="um-generate")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="um-stop", size="sm", min_width=60)
                clear = gr.Button("Clear", elem_id="um-clear", size="sm", min_width=60)
    gr.Examples(examples=[[p] for p in examples], inputs=[prompt], label="Try one", elem_id="um-examples")
    return dict(prompt=prompt, generate=generate, stop=stop, clear=clear)


def _infill(defaults) -> dict:
    with gr.Accordion("Fill in the blanks (infilling)", open=False, elem_id="um-infill") as infill_box:
        task = gr.Radio(list(TASKS), value=ANSWER, label="The diffusion model writes",
                        info=SETTING_HELP["task"], elem_id="um-task")
        template = gr.Textbox(label="Text with blanks, or position:word pairs", lines=2, max_lines=6,
                              placeholder="The capital of France is ___, and it is famous for ___8.",
                              info=SETTING_HELP["template"], elem_id="um-template")
        blank_length = gr.Number(value=defaults.blank_length, precision=0, minimum=1,
                                 label="Default blank length (tokens)",
                                 info=SETTING_HELP["blank_length"], elem_id="um-blank-length")
        infill_check = gr.HTML("", elem_id="um-infill-check")
    return dict(task=task, template=template, blank_length=blank_length, infill_check=infill_check,
                infill_box=infill_box)


def _pickers(start_line: str, picks: SimpleNamespace) -> dict:
    with gr.Accordion("Models and timing", open=True, elem_id="um-models"):
        preset = gr.Dropdown(preset_choices(), value=picks.picked_preset.label if picks.picked_preset else None,
                             label="Preset: a diffusion model and its AR partner", elem_id="um-preset",
                             info="Sets both models below; empty when they are a pair of your own.")
        gr.HTML(start_line_html(start_line), elem_id="um-start")
        diffusion_name = gr.Dropdown(picker_choices(picks.diffusion_choices), value=picks.diffusion_model,
                                     label="Diffusion model", allow_custom_value=picks.custom,
                                     elem_id="um-diffusion-model")
        ar_name = gr.Dropdown(picker_choices(picks.ar_choices), value=picks.ar_model, label="Autoregressive model",
                              allow_custom_value=picks.custom, elem_id="um-ar-model")
        note = gr.HTML(picker_note(picks.diffusion_model, picks.ar_model), elem_id="um-fit")
        mode = gr.Radio(list(MODES), value=TOGETHER, label="Timing", info=SETTING_HELP["mode"],
                        elem_id="um-mode")
    return dict(preset=preset, diffusion_name=diffusion_name, ar_name=ar_name, note=note, mode=mode)


def _settings(defaults) -> dict:
    with gr.Accordion("Settings", open=False, elem_id="um-settings") as settings_box:
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
            repetition_penalty = gr.Slider(1, 2, value=defaults.repetition_penalty, step=0.05,
                                           label="Repetition penalty", info=SETTING_HELP["repetition_penalty"],
                                           elem_id="um-repetition-penalty")
            dry_multiplier = gr.Slider(0, 3, value=defaults.dry_multiplier, step=0.1, label="Loop penalty (DRY)",
                                       info=SETTING_HELP["dry_multiplier"], elem_id="um-dry-multiplier")
            cache = gr.Radio(list(CACHE_MODES), value=defaults.cache, label="Cache", info=SETTING_HELP["cache"],
                             elem_id="um-cache")
        settings_check = gr.HTML("", elem_id="um-settings-check")

    return dict(gen_length=gen_length, steps=steps, block_length=block_length, algorithm=algorithm,
                temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty,
                dry_multiplier=dry_multiplier, alg_temp=alg_temp, threshold=threshold, seed=seed, cache=cache,
                settings_check=settings_check, settings_box=settings_box)


def _panels_and_replay(defaults) -> dict:
    banner = gr.HTML("", elem_id="um-banner")
    legend = gr.HTML(legend_html(defaults.steps), elem_id="um-legend")

    with gr.Row(equal_height=False, elem_classes="um-panels"):
        with gr.Column(elem_classes="um-panel um-panel-diffusion", min_width=300):
            diffusion_title = gr.HTML(diffusion_title_html(defaults.algorithm), elem_id="um-diffusion-title")
            diffusion_view = gr.HTML(placeholder_html("The canvas appears here."), elem_id="um-diffusion")
            diffusion_stats = gr.HTML(stats_html(None, "waiting", generation.DIFFUSION),
                                      elem_id="um-diffusion-stats")
        with gr.Column(elem_classes="um-panel um-panel-ar", min_width=300):
            gr.HTML('<h2 class="um-panel-title">Autoregressive <span>writes left to right</span></h2>')
            ar_view = gr.HTML(placeholder_html("The answer streams here."), elem_id="um-ar")
            ar_stats = gr.HTML(stats_html(None, "waiting", generation.AUTOREGRESSIVE), elem_id="um-ar-stats")

    with gr.Column(elem_classes="um-replay"):
        with gr.Row(equal_height=True):
            previous = gr.Button("◀ Previous", interactive=False, elem_id="um-previous", size="sm", min_width=90,
                                 scale=0)
            replay = gr.Slider(0, 1, value=0, step=1, label="Replay: diffusion step", interactive=False,
                               elem_id="um-replay", scale=6,
                               info="Drag, step with ◀ ▶ (or the ← → keys), or Play: both panels as they were "
                                    "after any step.")
            following = gr.Button("Next ▶", interactive=False, elem_id="um-next", size="sm", min_width=90, scale=0)
            with gr.Column(scale=0, min_width=90, elem_classes="um-replay-buttons"):
                play = gr.Button("▶ Play", interactive=False, elem_id="um-play", size="sm")
                pause = gr.Button("❚❚ Pause", interactive=False, elem_id="um-pause", size="sm")
        timeline = gr.Radio(list(TIMELINES), value=SAME_SECONDS, label="The autoregressive panel follows at",
                            info="same seconds: what it had written after as many seconds as the diffusion "
                                 "step took (a race); same share: the same fraction of its own run.",
                            elem_id="um-timeline")
    ticker = gr.Timer(REPLAY_TICK_SECONDS, active=False)

    return dict(banner=banner, legend=legend, diffusion_title=diffusion_title, diffusion_view=diffusion_view,
                diffusion_stats=diffusion_stats,
                ar_view=ar_view, ar_stats=ar_stats, replay=replay, previous=previous, next=following, play=play,
                pause=pause, timeline=timeline, ticker=ticker)


def _charts_and_sweep() -> dict:
    with gr.Accordion("Charts", open=True, elem_id="um-charts") as charts_box:
        with gr.Row():
            commits_plot = gr.Plot(label="Tokens committed per step", elem_id="um-chart-commits")
            race_plot = gr.Plot(label="The race: tokens against wall time", elem_id="um-chart-race")
        with gr.Row():
            map_plot = gr.Plot(label="Denoising map: when each position was last changed", elem_id="um-chart-map")
            scores_plot = gr.Plot(label="Scores per step", elem_id="um-chart-scores")

    with gr.Accordion("Steps sweep: what do fewer steps cost?", open=False, elem_id="um-sweep") as sweep_box:
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

    return dict(commits_plot=commits_plot, race_plot=race_plot, map_plot=map_plot, scores_plot=scores_plot,
                sweep_steps=sweep_steps, sweep_threshold=sweep_threshold, sweep_run=sweep_run, sweep_stop=sweep_stop,
                sweep_status=sweep_status, sweep_plot=sweep_plot, sweep_answers=sweep_answers, charts_box=charts_box,
                sweep_box=sweep_box)


def _export() -> dict:
    with gr.Accordion("Export", open=False, elem_id="um-export") as export_box:
        with gr.Row():
            run_file = gr.DownloadButton("Run (JSON)", value=None, interactive=False, elem_id="um-run-json")
            animation_file = gr.DownloadButton("Animation (HTML, for slides)", value=None, interactive=False,
                                               elem_id="um-animation-html")
            make_gif = gr.Button("Make a GIF", interactive=False, elem_id="um-make-gif")
        gif_file = gr.File(label="Animation (GIF)", visible=False, elem_id="um-gif")

    progress = gr.JSON(visible=False, elem_id="um-progress")

    return dict(run_file=run_file, animation_file=animation_file, make_gif=make_gif, gif_file=gif_file,
                progress=progress, export_box=export_box)
