"""Unmask's page: a diffusion LM and an autoregressive LM answer the same prompt, side by side.

The page only wires controls to the generation core and the visualisation. One click runs `race`:
two worker threads (one per model) iterate `stream_diffusion` / `stream_autoregressive` and publish a
snapshot of their History after every step; `race` yields both panels as plain `PanelView`s at most
FRAMES_PER_SECOND times a second, and the Gradio generator `run` renders them with visualize/ (never
inside the denoising loop). Everything a user does lives in their own `Session` (gr.State): the
conversation, the last histories, the stop signal. Nothing is shared between users except the
loaded models, which are read-only.

Models: a preset picker pairs each diffusion model with its AR partner (generation.presets); the
model pickers say which entries cannot run on this machine and why (`generation.memory.can_run`, decided once per
entry from configs and free memory, loading nothing), and a run re-checks the picked pair before
loading. DiffusionGemma runs its own sampler: only answer length, steps and seed reach it, and the
panel says which settings it ignored.

GPU: `race` is the GPU work of a click, under `spaces.GPU` on a ZeroGPU Space (spaces_shim; a no-op
elsewhere). There it runs in a forked process and what it yields is pickled back, which is why it
yields plain data. With UNMASK_PROFILE=space and CUDA present, the default pair is loaded on
"cuda:0" at startup. Left out: batching several users into one forward pass; unloading models.
"""

from __future__ import annotations

import html
import json
import logging
import os
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import gradio as gr
import torch

import generation
from generation import ARConfig, CausalLM, ConfigError, DiffusionConfig, DiffusionLM, History, ModelUnavailable
from generation import memory, presets
from generation.config import ALGORITHMS
from generation.protocols import runs_own_loop
from spaces_shim import gpu
from visualize import charts, export
from visualize.canvas import default_total, render_history, render_legend

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
CSS_PATHS = [ASSETS / "unmask.css", ASSETS / "page.css"]
EXAMPLES_FILE = ASSETS / "examples.json"

FRAMES_PER_SECOND = 10  # page updates while generating; more only costs bandwidth and browser time
CONCURRENCY_LIMIT = 4  # generations running at once across all users; the rest wait in the queue
REPLAY_TICK_SECONDS = 0.25  # autoplay speed: one step per tick

TOGETHER = "Together (live race, both share the machine)"
ONE_AFTER_THE_OTHER = "One after the other (fair timings)"
MODES = (TOGETHER, ONE_AFTER_THE_OTHER)

SAME_SECONDS = "same seconds"
SAME_SHARE = "same share of the run"
TIMELINES = (SAME_SECONDS, SAME_SHARE)

log = logging.getLogger("unmask.app")

HOW_TO_READ = """\
**How to read this.** Each box is one token. Its colour says *when* it was written: early steps are
dark, late steps are light (the scale above, the same for both panels). The diffusion model starts
from a canvas of blank ░ boxes and fills them in any order, so its colours come out scattered; the
autoregressive model writes left to right, so its colours form a smooth gradient. Outlined boxes
changed in the step shown. Faded boxes come after the end of the answer: the canvas had room the
answer did not use. Hover a token to see its step and the model's confidence.
"""

SETTING_HELP = {
    "gen_length": "How many tokens the answer may have: the number of boxes on the diffusion canvas.",
    "steps": "Denoising steps. Fewer steps reveal more tokens at once: faster, usually rougher.",
    "block_length": "The canvas fills block by block, left to right; inside a block any order. "
                    "Equal to the answer length = one block.",
    "algorithm": "The rule that picks which boxes to reveal each step (low_confidence: the ones the model "
                 "is surest of; random: any).",
    "temperature": "0 = always the likeliest token (the same picture every run); higher = more varied words.",
    "top_p": "Keeps only the likeliest words summing to this probability (Dream rules and AR). 1 = off.",
    "alg_temp": "Dream rules: above 0, randomness in *where* to reveal, not only what.",
    "threshold": "Fast-dLLM: reveal every box the model is at least this sure of, in one step (0 = off). "
                 "The number of steps then depends on the model.",
    "seed": "Same seed and settings, same picture.",
    "mode": "Together shows a live race but both share the CPU; one after the other gives each model "
            "the machine to itself, for honest timings.",
}


# ------------------------------------------------------------------ per-user state


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

    def __deepcopy__(self, memo):
        # gr.State deep-copies its initial value; a fresh Session is already private to one session.
        return self

    def files_dir(self) -> Path:
        if self.export_dir is None:
            self.export_dir = Path(tempfile.mkdtemp(prefix="unmask-"))
        return self.export_dir


def new_session() -> Session:
    return Session()


# ------------------------------------------------------------------ the two generations


@dataclass
class Panel:
    """One model's generation, run by a worker thread and read by the page generator."""

    kind: str  # generation.DIFFUSION or generation.AUTOREGRESSIVE
    model_name: str
    status: str = "waiting"  # waiting, loading, queued, running, done, stopped, error
    snapshot: History | None = None  # a private copy of the History after the latest step
    model: object = None
    error: str | None = None
    error_title: str = ""
    note: str = ""  # shown above the canvas, e.g. the settings this model ignores
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, history: History, wake: threading.Event) -> None:
        copy = history.copy()
        with self.lock:
            self.snapshot = copy
        wake.set()

    def fail(self, title: str, message: str) -> None:
        self.status, self.error_title, self.error = "error", title, message


def run_panel(panel: Panel, load, messages: list[dict], config, loaded: threading.Barrier,
              wait_for: threading.Event | None, stop: threading.Event, wake: threading.Event,
              alongside: tuple[str, ...] = ()) -> None:
    """Worker thread body: check it fits, load, wait for our turn, stream, publishing each step."""
    try:
        panel.status = "loading"
        wake.set()
        try:
            panel.model = load_checked(load, panel.model_name, panel.kind, alongside)
            if runs_own_loop(panel.model):
                config, panel.note = own_loop_config(panel.model, config)
        except ModelUnavailable as error:
            panel.fail("Model unavailable", str(error))
        except Exception as error:  # noqa: BLE001 - any load failure is shown in its own panel
            log.exception("loading %s failed", panel.model_name)
            panel.fail("Model failed to load", f"{type(error).__name__}: {error}")
        finally:
            try:
                loaded.wait()  # together: both start at the same moment; one after the other: load first
            except threading.BrokenBarrierError:
                pass
        if panel.model is None:
            return
        if wait_for is not None:
            panel.status = "queued"
            wake.set()
            while not wait_for.wait(0.05) and not stop.is_set():
                pass
        if stop.is_set():
            panel.status = "stopped"
            return
        panel.status = "running"
        wake.set()
        stream = generation.stream_diffusion if panel.kind == generation.DIFFUSION \
            else generation.stream_autoregressive
        try:
            prompt_ids = panel.model.prompt_ids(messages)
            history = None
            for history in stream(panel.model, prompt_ids, config, stop):
                panel.publish(history, wake)
            if history is not None:
                panel.publish(history, wake)  # `stopped` is set after the last step
            stopped = history.stopped if history is not None else stop.is_set()
            panel.status = "stopped" if stopped else "done"
        except ConfigError as error:
            panel.fail("These settings do not work here", str(error))
        except Exception as error:  # noqa: BLE001 - shown in the panel, with the type, and logged
            log.exception("generation with %s failed", panel.model_name)
            panel.fail("Generation failed", f"{type(error).__name__}: {error}")
    finally:
        panel.finished.set()
        wake.set()


def load_checked(load, name: str, kind: str, alongside: tuple[str, ...] = ()):
    """load(name), refused first if it will not fit beside `alongside`, checked to be the kind this panel runs."""
    if not name or not str(name).strip():
        raise ModelUnavailable("no model picked; choose one from the list")
    name = str(name).strip()
    refuse_if_too_big(name, alongside)
    model = load(name)
    _loaded.add(name)
    wanted = DiffusionLM if kind == generation.DIFFUSION else CausalLM
    if not isinstance(model, wanted):
        other = "an autoregressive" if isinstance(model, CausalLM) else "a diffusion"
        raise ModelUnavailable(f"{name!r} is {other} model; pick it in the other panel's list")
    return model


# ------------------------------------------------------------------ which models run here


_loaded: set[str] = set()  # names this process has loaded: their memory is already in use, not to count again


def app_device() -> str | None:
    """Where the page loads models: "cuda:0" on a Space with a GPU (ZeroGPU attaches one device, and
    accelerate cannot plan device_map="auto" before it is attached), else the loader's default."""
    if presets.profile() == "space" and torch.cuda.is_available():
        return "cuda:0"
    return None


def default_load(name: str):
    """The page's loader (module level, so ZeroGPU can pickle it into its GPU process)."""
    return generation.load_model(name, device=app_device())


@lru_cache(maxsize=256)
def verdict(name: str) -> memory.Verdict:
    """Whether `name` alone fits this machine, decided once per name (reads configs, loads no weights)."""
    return memory.can_run(name, app_device())


def refuse_if_too_big(name: str, alongside: tuple[str, ...]) -> None:
    """ModelUnavailable with can_run's message when `name` and its not-yet-loaded partners will not fit now,
    even after unloading the models the pick does not use."""
    if name in _loaded:
        return
    picked = (name, *(n.strip() for n in alongside if n and n.strip()))
    partners = tuple(n for n in picked[1:] if n not in _loaded)
    for group in ((), partners):  # alone first: a partner of unknown size makes can_run give up, not pass
        fits = memory.can_run(name, app_device(), alongside=group)
        if not fits.ok and make_room(keep=picked):
            fits = memory.can_run(name, app_device(), alongside=group)
        if not fits.ok:
            raise ModelUnavailable(fits.message)


def make_room(keep: tuple[str, ...]) -> bool:
    """Unload the models this process holds that the picked pair does not use (the previous preset's,
    after a switch on a GPU). True when some were dropped, so the memory check is worth repeating."""
    stale = _loaded - set(keep)
    if not stale:
        return False
    generation.unload_models(keep=keep)
    _loaded.difference_update(stale)
    log.info("unloaded %s to make room for %s", ", ".join(sorted(stale)), ", ".join(keep))
    return True


def preload(load=default_load) -> list[str]:
    """With UNMASK_PROFILE=space and CUDA present, load the default pair at startup (ZeroGPU only lets
    weights move to its GPU then); elsewhere nothing. Returns the names loaded."""
    if presets.profile() != "space" or not torch.cuda.is_available():
        return []
    preset = presets.default_preset()
    done = []
    for name in (preset.diffusion, preset.autoregressive):
        try:
            refuse_if_too_big(name, ())
            load(name)
        except ModelUnavailable as error:
            log.warning("not preloading %s: %s", name, error)
            continue
        _loaded.add(name)
        done.append(name)
    return done


def picker_label(name: str) -> str:
    """The picker entry: the name, plus the short reason when it cannot run here, e.g.
    "Dream-org/Dream-v0-Instruct-7B — cannot run here: needs ~34.6 GiB, 21.6 GiB RAM free"."""
    fits = verdict(name)
    if fits.ok:
        return name
    if fits.need_bytes is None or fits.free_bytes is None:
        return f"{name} — cannot run here"
    where = "GPU" if fits.device.startswith("cuda") else "RAM"
    return f"{name} — cannot run here: needs ~{_gib(fits.need_bytes)}, {_gib(fits.free_bytes)} {where} free"


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def picker_choices(names) -> list[tuple[str, str]]:
    """(label, name) pairs for a gr.Dropdown: the value stays the bare name."""
    return [(picker_label(name), name) for name in names]


def matching_preset(diffusion: str | None, ar: str | None) -> presets.Preset | None:
    return next((p for p in presets.presets() if (p.diffusion, p.autoregressive) == (diffusion, ar)), None)


def preset_named(label: str | None) -> presets.Preset | None:
    return next((p for p in presets.presets() if p.label == label), None)


def preset_choices() -> list[tuple[str, str]]:
    """(label, value) pairs: presets whose diffusion model cannot run here say so."""
    return [(p.label if verdict(p.diffusion).ok and verdict(p.autoregressive).ok else f"{p.label} — cannot run here",
             p.label) for p in presets.presets()]


def picker_note(diffusion: str | None, ar: str | None) -> str:
    """Under the pickers: why this pairing (for a preset), and the full reason for a picked model that cannot run."""
    lines = []
    preset = matching_preset(diffusion, ar)
    if preset is not None:
        lines.append(f'<div class="um-fit-why">{_esc(preset.why)}.</div>')
    for role, name in (("Diffusion", diffusion), ("Autoregressive", ar)):
        name = (name or "").strip()
        if name and not verdict(name).ok:
            lines.append(f'<div class="um-fit-no"><b>{role}: {_esc(name)} cannot run here.</b> '
                         f'{_esc(verdict(name).message)}.</div>')
    return f'<div class="um-fit">{"".join(lines)}</div>'


IGNORED_NAMES = {"block_length": "block length", "algorithm": "algorithm", "temperature": "temperature",
                 "top_p": "top-p", "top_k": "top-k", "alg_temp": "position temperature",
                 "threshold": "confidence threshold", "cfg_scale": "guidance", "eps": "eps"}
APPLICABLE_NAMES = {"gen_length": "answer length", "steps": "steps", "seed": "seed"}


def own_loop_config(model, config: DiffusionConfig) -> tuple[DiffusionConfig, str]:
    """The config a model that runs its own loop takes (it decides), and the note that says what it ignored.

    For DiffusionGemma and DiffusionConfig(temperature=0.5) the note ends "Ignored this run: temperature 0.5."
    """
    applied, ignored = model.applicable_config(config)
    dropped = [f"{IGNORED_NAMES.get(name, name)} {getattr(config, name)}" for name in ignored]
    takes = ", ".join(APPLICABLE_NAMES.get(name, name) for name in model.applicable_settings)
    note = (f"DiffusionGemma runs its own sampler and takes only {takes} (the steps are a budget shared by its "
            f"canvases; it stops a canvas early once its drafts are stable). ")
    note += f"Ignored this run: {', '.join(dropped)}." if dropped else "The other settings do not apply."
    return applied, note


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    """The controls' values, as the page hands them over (numbers may arrive as floats or None)."""

    gen_length: float = 64
    steps: float = 32
    block_length: float | None = 32
    algorithm: str = "low_confidence"
    temperature: float = 0.0
    top_p: float = 1.0
    alg_temp: float = 0.0
    threshold: float = 0.0
    seed: float = 0

    def configs(self) -> tuple[DiffusionConfig, ARConfig]:
        """Both configs, or ConfigError with a message for the page."""
        gen_length = _whole("answer length", self.gen_length)
        block = None if self.block_length in (None, "", 0) else _whole("block length", self.block_length)
        threshold = None if not self.threshold else float(self.threshold)
        diffusion = DiffusionConfig(
            gen_length=gen_length, steps=_whole("steps", self.steps), block_length=block,
            algorithm=self.algorithm, temperature=float(self.temperature), top_p=float(self.top_p),
            alg_temp=float(self.alg_temp), threshold=threshold, seed=_whole("seed", self.seed),
        )
        ar = ARConfig(max_new_tokens=gen_length, temperature=float(self.temperature), top_p=float(self.top_p),
                      seed=diffusion.seed)
        return diffusion, ar


def _whole(name: str, value) -> int:
    """_whole("steps", 32.0) -> 32; 32.5, None or text raise ConfigError."""
    if value is None or isinstance(value, bool):
        raise ConfigError(f"{name} is empty; enter a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


# ------------------------------------------------------------------ HTML around the canvases


STATUS_WORDS = {
    "waiting": "waiting", "loading": "loading the model…", "queued": "waiting for its turn (fair timing)",
    "running": "generating…", "done": "done", "stopped": "stopped", "error": "error",
}


def panel_html(panel_kind: str, turns: list[tuple[str, str, str]], body: str) -> str:
    """The earlier turns of the conversation (plain text), then this turn's canvas or message."""
    if not turns:
        return f'<div class="um-panel-body">{body}</div>'
    index = 1 if panel_kind == generation.DIFFUSION else 2
    rows = "".join(
        f'<div class="um-turn"><div class="um-you">{_esc(turn[0])}</div>'
        f'<div class="um-said">{_esc(turn[index]) or "<i>(no answer)</i>"}</div></div>'
        for turn in turns
    )
    return (f'<div class="um-panel-body"><details class="um-transcript"><summary>Earlier turns '
            f'({len(turns)})</summary>{rows}</details>{body}</div>')


def legend_html(total_steps: int) -> str:
    return ('<div class="um-key"><div class="um-key-title">Colour = the step in which a token was written</div>'
            f'{render_legend(total_steps)}</div>')


def message_html(title: str, text: str, kind: str = "error", hint: str = "") -> str:
    role = ' role="alert"' if kind == "error" else ""
    hint_html = f'<div class="um-message-hint">{_esc(hint)}</div>' if hint else ""
    return (f'<div class="um-message um-{kind}"{role}><div class="um-message-title">{_esc(title)}</div>'
            f'<div class="um-message-text">{_esc(text)}</div>{hint_html}</div>')


def placeholder_html(text: str) -> str:
    return f'<div class="um-placeholder">{_esc(text)}</div>'


def stats_html(history: History | None, status: str, kind: str, label: str | None = None) -> str:
    """The live figures under a panel: steps, forward passes, elapsed, tokens/s, time to first token."""
    first_label = "first commit" if kind == generation.DIFFUSION else "first token"
    if history is None:
        cells = [("steps", "–"), ("forward passes", "–"), ("elapsed", "–"), ("tokens/s", "–"), (first_label, "–")]
    else:
        done = len(history.steps)
        total = history.planned_steps
        seconds = history.seconds
        tokens = history.answer_tokens()
        first = history.seconds_to_first_token()
        if total is None and status == "running" and label is None:
            label = "generating… (the model decides how many steps)"
        cells = [
            ("steps", f"{done} / {total}" if total else f"{done}"),
            ("forward passes", f"{history.forward_passes}"),
            ("elapsed", f"{seconds:.2f} s"),
            ("tokens/s", f"{tokens / seconds:.1f}" if seconds > 0 else "–"),
            (first_label, f"{first:.2f} s" if first is not None else "–"),
        ]
    figures = "".join(f'<div class="um-stat"><span class="um-stat-value">{_esc(value)}</span>'
                      f'<span class="um-stat-label">{_esc(label)}</span></div>' for label, value in cells)
    return (f'<div class="um-stats" data-status="{_esc(status)}"><div class="um-status um-status-{_esc(status)}">'
            f'{_esc(label or STATUS_WORDS.get(status, status))}</div>{figures}</div>')


def timing_note(mode: str, state: str) -> str:
    if mode == ONE_AFTER_THE_OTHER:
        how = "one after the other: each model had the machine to itself, so the timings are fair"
    else:
        how = "together: both models shared the machine, so each is slower than it would be alone"
    return f'<div class="um-timing">Timings {state}: <b>{_esc(how)}</b>.</div>'


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def panel_body(view: PanelView, tokenizer) -> str:
    if view.error is not None:
        return message_html(view.error_title, view.error, hint=fix_hint(view))
    note = f'<div class="um-note">{_esc(view.note)}</div>' if view.note else ""
    if view.history is None:
        return note + placeholder_html(STATUS_WORDS.get(view.status, view.status).capitalize())
    return note + render_history(view.history, tokenizer)


def fix_hint(view: PanelView) -> str:
    if view.error_title.startswith("Model"):
        return "The other panel still works."
    return ""


# ------------------------------------------------------------------ the page


def load_examples() -> list[str]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))["prompts"]


def model_choices() -> tuple[list[str], list[str]]:
    """Both pickers' names in preset order (the embedded pair first locally, the large ones on a Space)."""
    order = presets.presets()
    diffusion = list(dict.fromkeys([*(p.diffusion for p in order), *presets.DIFFUSION_CHOICES]))
    ar = list(dict.fromkeys([*(p.autoregressive for p in order), *presets.AR_CHOICES]))
    return diffusion, ar


def build_demo(load=default_load, diffusion_model: str | None = None, ar_model: str | None = None,
               extra_choices: tuple[list[str], list[str]] = ([], [])) -> gr.Blocks:
    """The page. `load(name)` returns a DiffusionLM or CausalLM (tests pass tiny models); the pickers
    start on the default preset unless models are named."""
    start = presets.default_preset()
    diffusion_model = diffusion_model or start.diffusion
    ar_model = ar_model or start.autoregressive
    diffusion_choices, ar_choices = model_choices()
    diffusion_choices = list(dict.fromkeys([diffusion_model, *extra_choices[0], *diffusion_choices]))
    ar_choices = list(dict.fromkeys([ar_model, *extra_choices[1], *ar_choices]))
    start_preset = matching_preset(diffusion_model, ar_model)
    defaults = Settings()

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
            with gr.Column(scale=2):
                preset = gr.Dropdown(preset_choices(), value=start_preset.label if start_preset else None,
                                     label="Preset: a diffusion model and its AR partner", elem_id="um-preset",
                                     info="Sets both models below; empty when they are a pair of your own.")
                diffusion_name = gr.Dropdown(picker_choices(diffusion_choices), value=diffusion_model,
                                             label="Diffusion model", allow_custom_value=True,
                                             elem_id="um-diffusion-model")
                ar_name = gr.Dropdown(picker_choices(ar_choices), value=ar_model, label="Autoregressive model",
                                      allow_custom_value=True, elem_id="um-ar-model")
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

        with gr.Accordion("Export", open=False, elem_id="um-export"):
            with gr.Row():
                run_file = gr.DownloadButton("Run (JSON)", value=None, interactive=False, elem_id="um-run-json")
                animation_file = gr.DownloadButton("Animation (HTML, for slides)", value=None, interactive=False,
                                                   elem_id="um-animation-html")
                make_gif = gr.Button("Make a GIF", interactive=False, elem_id="um-make-gif")
            gif_file = gr.File(label="Animation (GIF)", visible=False, elem_id="um-gif")

        progress = gr.JSON(visible=False, elem_id="um-progress")

        settings_inputs = [gen_length, steps, block_length, algorithm, temperature, top_p, alg_temp, threshold, seed]
        run_outputs = [banner, legend, diffusion_view, diffusion_stats, ar_view, ar_stats, progress, replay, play,
                       pause, commits_plot, race_plot, map_plot, scores_plot, run_file, animation_file, make_gif]
        views = dict(banner=banner, legend=legend, diffusion_view=diffusion_view, diffusion_stats=diffusion_stats,
                     ar_view=ar_view, ar_stats=ar_stats, progress=progress, replay=replay, play=play, pause=pause,
                     commits=commits_plot, race=race_plot, map=map_plot, scores=scores_plot, run_file=run_file,
                     animation_file=animation_file, make_gif=make_gif)

        def run(session_state: Session, prompt_text: str, diffusion_pick: str, ar_pick: str, mode_pick: str,
                *values):
            yield from run_generation(session_state, load, views, prompt_text, diffusion_pick, ar_pick,
                                      mode_pick, Settings(*values))

        generate.click(run, [session, prompt, diffusion_name, ar_name, mode, *settings_inputs], run_outputs,
                       api_name="generate", concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate",
                       show_progress="hidden")
        prompt.submit(run, [session, prompt, diffusion_name, ar_name, mode, *settings_inputs], run_outputs,
                      api_visibility="private", concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="generate",
                      show_progress="hidden")

        def check_settings(*values):
            """Says at once, inside the settings panel, when a change makes the settings unrunnable."""
            try:
                Settings(*values).configs()
            except ConfigError as error:
                return message_html("These settings cannot run", str(error))
            return ""

        for control in settings_inputs:
            control.change(check_settings, settings_inputs, settings_check, api_visibility="private", queue=False)

        def pick_preset(label: str):
            chosen = preset_named(label)
            if chosen is None:
                return gr.skip(), gr.skip(), gr.skip()
            return chosen.diffusion, chosen.autoregressive, picker_note(chosen.diffusion, chosen.autoregressive)

        def pick_model(diffusion_pick: str, ar_pick: str):
            chosen = matching_preset(diffusion_pick, ar_pick)
            return (chosen.label if chosen else None), picker_note(diffusion_pick, ar_pick)

        preset.input(pick_preset, [preset], [diffusion_name, ar_name, note], api_name="preset", queue=False)
        for picker in (diffusion_name, ar_name):
            picker.change(pick_model, [diffusion_name, ar_name], [preset, note], api_visibility="private",
                          queue=False)

        def request_stop(session_state: Session) -> None:
            session_state.stop.set()
            for event in session_state.panel_stops:
                event.set()

        stop.click(request_stop, [session], None, api_name="stop", queue=False)

        def start_over(session_state: Session):
            request_stop(session_state)
            fresh = Session()
            return (fresh, "", placeholder_html("The canvas appears here."),
                    stats_html(None, "waiting", generation.DIFFUSION), placeholder_html("The answer streams here."),
                    stats_html(None, "waiting", generation.AUTOREGRESSIVE), "",
                    gr.Slider(value=0, maximum=1, interactive=False),
                    gr.Button(interactive=False), gr.Button(interactive=False), gr.Timer(active=False),
                    None, None, None, None,
                    gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(value=None, interactive=False),
                    gr.Button(interactive=False), gr.File(value=None, visible=False))

        clear.click(start_over, [session], [session, prompt, diffusion_view, diffusion_stats, ar_view, ar_stats,
                                            banner, replay, play, pause, ticker, commits_plot, race_plot, map_plot,
                                            scores_plot, run_file, animation_file, make_gif, gif_file],
                    api_name="clear")

        def show_step(session_state: Session, step: float, follow: str):
            return replay_views(session_state, int(step or 0), follow)

        replay_outputs = [diffusion_view, ar_view, diffusion_stats, ar_stats]
        replay.input(show_step, [session, replay, timeline], replay_outputs, api_name="replay",
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

        make_gif.click(gif, [session], [gif_file], api_name="gif")
    return demo


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
                                  render_history(d, session.diffusion_tokenizer, step=step)))
    else:
        outputs.append(gr.skip())
    if a is not None:
        ar_step = ar_step_for(d, a, step, follow)
        outputs.append(panel_html(generation.AUTOREGRESSIVE, session.turns[:-1],
                                  render_history(a, session.ar_tokenizer, step=ar_step)))
    else:
        outputs.append(gr.skip())
    outputs.append(stats_html(d.as_of(step), "replay", generation.DIFFUSION, f"replay · step {step}")
                   if d is not None else gr.skip())
    outputs.append(stats_html(a.as_of(ar_step), "replay", generation.AUTOREGRESSIVE, f"replay · token {ar_step}")
                   if a is not None else gr.skip())
    return tuple(outputs)


# ------------------------------------------------------------------ one click, two generations


@dataclass
class PanelView:
    """One panel as the page draws it: plain data, so it also crosses ZeroGPU's process boundary."""

    kind: str
    model_name: str
    status: str
    history: History | None = None
    error: str | None = None
    error_title: str = ""
    note: str = ""
    tokenizer: object = None  # sent once, in the first view after the model loaded


def view_of(panel: Panel, sent: set) -> PanelView:
    with panel.lock:
        history = panel.snapshot
    tokenizer = getattr(panel.model, "tokenizer", None)
    if panel.kind in sent:
        tokenizer = None
    elif tokenizer is not None:
        sent.add(panel.kind)
    return PanelView(panel.kind, panel.model_name, panel.status, history, panel.error, panel.error_title,
                     panel.note, tokenizer)


@gpu(duration=120)
def race(load, names: tuple[str, str], messages: tuple[list, list], configs: tuple, mode: str,
         stops: tuple[threading.Event, threading.Event] | None = None):
    """The GPU work of one click: load both models and run them, together or one after the other, yielding
    both panels' views at most FRAMES_PER_SECOND times a second and once more at the end.

    `stops` (diffusion, AR) end the runs early; closing the generator ends them too. On a ZeroGPU Space
    this runs in a forked process: the page's Stop events cannot reach it (they are not even picklable,
    so the page passes None there), and Stop only ends the page's view of the run."""
    stops = stops or (threading.Event(), threading.Event())
    panels = (Panel(generation.DIFFUSION, names[0]), Panel(generation.AUTOREGRESSIVE, names[1]))
    wake = threading.Event()
    loaded = threading.Barrier(2)
    ar_after = panels[0].finished if mode == ONE_AFTER_THE_OTHER else None
    partners = ((names[1],), ())  # the diffusion check counts the AR model too: both stay loaded
    workers = [
        threading.Thread(target=run_panel, name=f"unmask-{panel.kind}", daemon=True,
                         args=(panel, load, panel_messages, config, loaded, after, stop, wake, alongside))
        for panel, panel_messages, config, after, stop, alongside
        in zip(panels, messages, configs, (None, ar_after), stops, partners)
    ]
    sent: set = set()
    for worker in workers:
        worker.start()
    try:
        interval = 1.0 / FRAMES_PER_SECOND
        last_frame = time.perf_counter()
        while not all(panel.finished.is_set() for panel in panels):
            wake.wait(timeout=0.5)
            pause = interval - (time.perf_counter() - last_frame)
            if pause > 0:
                time.sleep(pause)  # let several steps land in one frame
            wake.clear()
            last_frame = time.perf_counter()
            yield tuple(view_of(panel, sent) for panel in panels)
    finally:
        if not all(panel.finished.is_set() for panel in panels):
            for event in stops:  # the page went away mid-run: end the workers rather than leave them running
                event.set()
        for worker in workers:
            worker.join()
    yield tuple(view_of(panel, sent) for panel in panels)


ON_ZERO_GPU = bool(os.environ.get("SPACES_ZERO_GPU"))  # set by Hugging Face on ZeroGPU Spaces


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
    prompt = (prompt or "").strip()
    try:
        if not prompt:
            raise ConfigError("the prompt is empty; type something for the models to answer")
        diffusion_config, ar_config = settings.configs()
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
                        "diffusion": diffusion_config.to_dict(), "autoregressive": ar_config.to_dict()}
    user = {"role": "user", "content": prompt}
    messages = ([*session.diffusion_messages, user], [*session.ar_messages, user])
    earlier = list(session.turns)
    panels = (PanelView(generation.DIFFUSION, diffusion_name, "loading"),
              PanelView(generation.AUTOREGRESSIVE, ar_name, "loading"))
    tokenizers: dict[str, object] = {}
    try:
        yield {views["banner"]: timing_note(mode, "in progress"), views["legend"]: legend_html(diffusion_config.steps),
               views["replay"]: gr.Slider(value=0, maximum=1, interactive=False),
               views["play"]: gr.Button(interactive=False), views["pause"]: gr.Button(interactive=False),
               views["run_file"]: gr.DownloadButton(interactive=False),
               views["animation_file"]: gr.DownloadButton(interactive=False),
               views["make_gif"]: gr.Button(interactive=False),
               **live_views(views, panels, earlier, tokenizers), views["progress"]: progress("running", panels)}
        frames = race(load, (diffusion_name, ar_name), messages, (diffusion_config, ar_config), mode,
                      None if ON_ZERO_GPU else stops)
        with closing(frames):
            for panels in frames:
                tokenizers.update({view.kind: view.tokenizer for view in panels if view.tokenizer is not None})
                yield {**live_views(views, panels, earlier, tokenizers), views["progress"]: progress("running", panels)}
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
           views["play"]: gr.Button(interactive=steps > 0), views["pause"]: gr.Button(interactive=steps > 0)}
    if d is not None:
        out[views["legend"]] = legend_html(default_total(d))
        out[views["commits"]] = charts.commits_figure(d)
        out[views["map"]] = charts.denoising_map_figure(d)
        out[views["scores"]] = charts.scores_figure(d)
    if d is not None or a is not None:
        out[views["race"]] = charts.race_figure(d, a)
        folder = session.files_dir()
        run_path = folder / "unmask-run.json"
        run_path.write_text(export.run_json(d, a, session.settings), encoding="utf-8")
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


# ------------------------------------------------------------------ launch


def launch(demo: gr.Blocks | None = None, **overrides):
    """Launch with the page's CSS and theme; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured by Gradio."""
    demo = demo if demo is not None else build_demo()
    options = dict(css_paths=[str(p) for p in CSS_PATHS if p.exists()], theme=theme(), show_error=True)
    options.update(overrides)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT).launch(**options)


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("UNMASK_LOG", "INFO"))
    page = build_demo()  # the pickers' verdicts are taken before the preload fills the GPU
    preload()
    launch(page)
