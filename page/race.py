"""The worker side of a race: one click loads both models and runs them, together or one after the
other. Each model runs in its own worker thread (`run_panel`) that publishes a copy of its History
after every step into its `Panel`; `race` yields both panels as plain `PanelView`s at most
FRAMES_PER_SECOND times a second. It never renders: the page's generator does (page/session.py).

GPU: `race` is the GPU work of a click, under `spaces.GPU` on a ZeroGPU Space (spaces_shim; a no-op
elsewhere). There it runs in a forked process and what it yields is pickled back, which is why it
takes and yields plain data. Left out: batching several users into one forward pass.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

import generation
from generation import ConfigError, History, ModelUnavailable
from generation.background import call_in_own_thread
from generation.infill import Spec, encoder
from generation.runs import prepare_run
from page.pickers import load_checked
from page.settings import ONE_AFTER_THE_OTHER
from spaces_shim import gpu

AR_CANNOT_INFILL = ("An autoregressive model writes left to right and never sees what comes after a blank, so "
                    "it cannot fill one: it only continues what is given before the first blank (shown as given).")
FRAMES_PER_SECOND = 10  # page updates while generating; more only costs bandwidth and browser time

log = logging.getLogger("unmask.page")


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
              alongside: tuple[str, ...] = (), spec: Spec | None = None) -> None:
    """Worker thread body: check it fits, load, wait for our turn, stream, publishing each step."""
    try:
        panel.status = "loading"
        wake.set()
        try:
            # in a thread that ends: this one does no model work while it waits (generation/background.py)
            panel.model = call_in_own_thread(lambda: load_checked(load, panel.model_name, panel.kind, alongside),
                                             name=f"unmask-load-{panel.kind}")
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
            config, given = given_tokens(panel, spec, config)
            history = None
            for history in stream(panel.model, prompt_ids, config, stop, **given):
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


def given_tokens(panel: Panel, spec: Spec | None, config) -> tuple:
    """(the config to run, the stream's infilling argument in this model's own ids: diffusion: the canvas;
    AR: the prefix before the first blank; {} without a spec), with the panel's note saying what the model was
    given and how its decoder runs (generation.runs.prepare_run decides: fallbacks, refusals, the settings a
    model that runs its own loop ignores)."""
    if panel.kind != generation.DIFFUSION:
        if spec is None:
            return config, {}
        panel.note = AR_CANNOT_INFILL
        return config, {"prefix": spec.prefix(encoder(panel.model.tokenizer))}
    run = prepare_run(panel.model, config, infilling=spec is not None, lenient=True)
    given, infilling = {}, ""
    if spec is not None:
        infill = spec.canvas(encoder(panel.model.tokenizer), panel.model.mask_id, panel.model.stop_ids,
                             run.config.gen_length)
        given, infilling = {"infill": infill}, f"Infilling {spec.describe()}: the model writes only the " \
                                               f"{infill.blanks} blank positions."
    panel.note = " ".join(filter(None, [run.settings_note, run.note, infilling, run.fallback_note]))
    return run.config, given


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
         stops: tuple[threading.Event, threading.Event] | None = None, spec: Spec | None = None):
    """The GPU work of one click: load both models and run them, together or one after the other, yielding
    both panels' views at most FRAMES_PER_SECOND times a second and once more at the end.

    `stops` (diffusion, AR) end the runs early; closing the generator ends them too. On a ZeroGPU Space
    this runs in a forked process: the page's Stop events cannot reach it (they are not even picklable,
    so the page passes None there), and Stop only ends the page's view of the run. `spec`: what an infilling
    run is given (each model tokenizes it with its own tokenizer)."""
    stops = stops or (threading.Event(), threading.Event())
    panels = (Panel(generation.DIFFUSION, names[0]), Panel(generation.AUTOREGRESSIVE, names[1]))
    wake = threading.Event()
    loaded = threading.Barrier(2)
    ar_after = panels[0].finished if mode == ONE_AFTER_THE_OTHER else None
    partners = ((names[1],), ())  # the diffusion check counts the AR model too: both stay loaded
    workers = [
        threading.Thread(target=run_panel, name=f"unmask-{panel.kind}", daemon=True,
                         args=(panel, load, panel_messages, config, loaded, after, stop, wake, alongside, spec))
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
