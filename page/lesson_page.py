"""Lessons on the page: the picker near the prompt, the lesson box beside the panels, and the handlers that
apply a lesson (prompt, models, every setting, the sections to open) and write its take-away file.

app.py chains them: pick (or Next lesson) -> `apply` -> Generate -> the lesson's sweep, if any -> `takeaway`.
The presenter view (`?view=present`) is CSS over the same components (assets/lessons.css, assets/page.js).
Left out: what a lesson is (page/lessons.py) and the take-away's drawing (visualize/takeaway.py).
"""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace

import gradio as gr

from generation.sweep import SweepRow
from page.lessons import SECTIONS, Lesson, lesson_named, lessons, next_lesson
from page.session import Session
from page.settings import Settings
from visualize import charts
from visualize.sweep import sweep_figure
from visualize.takeaway import takeaway_html

CONTROLS = tuple(f.name for f in fields(Settings))  # every control a lesson sets, named as layout.py names them


def lesson_picker() -> dict:
    """The picker and Next lesson, one row under the prompt."""
    with gr.Row(equal_height=True, elem_classes="um-lesson-row"):
        pick = gr.Dropdown([lesson.title for lesson in lessons()], value=None, label="Lessons",
                           show_label=False, container=False, scale=4, elem_id="um-lesson-pick",
                           filterable=False)
        following = gr.Button("Next lesson ▶", size="sm", scale=1, min_width=120, elem_id="um-lesson-next")
    return dict(lesson_pick=pick, lesson_next=following)


def lesson_box() -> dict:
    """The lesson's text and its take-away file, hidden until a lesson is picked."""
    with gr.Column(visible=False, elem_id="um-lesson-box") as box:
        text = gr.HTML("", elem_id="um-lesson")
        takeaway = gr.DownloadButton("Take-away (HTML)", value=None, interactive=False, size="sm",
                                     elem_id="um-lesson-takeaway")
    return dict(lesson_box=box, lesson_text=text, lesson_takeaway=takeaway)


def apply_outputs(ui: SimpleNamespace) -> list:
    """What applying a lesson changes, in `apply`'s keys."""
    return [ui.lesson_pick, ui.prompt, ui.diffusion_name, ui.ar_name, *(getattr(ui, name) for name in CONTROLS),
            ui.sweep_steps, *(getattr(ui, f"{name}_box") for name in SECTIONS), ui.lesson_box, ui.lesson_text,
            ui.lesson_takeaway]


def apply(ui: SimpleNamespace, lesson: Lesson | None, session: Session) -> dict:
    """The page as the lesson wants it: prompt, models, settings, open sections, its text shown, and a fresh
    conversation (an earlier lesson's turns would change the answer)."""
    if lesson is None:
        raise gr.Error("Pick a lesson first.")
    if not session.running:
        session.diffusion_messages, session.ar_messages, session.turns, session.sweep = [], [], [], []
    return {ui.lesson_pick: lesson.title, ui.prompt: lesson.prompt, ui.diffusion_name: lesson.diffusion_model,
            ui.ar_name: lesson.ar_model, **{getattr(ui, name): getattr(lesson.settings, name) for name in CONTROLS},
            ui.sweep_steps: lesson.sweep,
            **{getattr(ui, f"{name}_box"): gr.Accordion(open=name in lesson.open) for name in SECTIONS},
            ui.lesson_box: gr.Column(visible=True), ui.lesson_text: lesson.text_html(),
            ui.lesson_takeaway: gr.DownloadButton(value=None, interactive=False)}


def picked(title: str | None) -> Lesson | None:
    return lesson_named(title)


def after(title: str | None) -> Lesson:
    return next_lesson(title)


def takeaway(session: Session, title: str | None):
    """Write the lesson's run as one self-contained HTML file; the button then downloads it."""
    lesson = lesson_named(title)
    if lesson is None or session.diffusion is None:
        return gr.DownloadButton(value=None, interactive=False)
    path = session.files_dir() / f"unmask-lesson-{lesson.slug}.html"
    path.write_text(lesson_takeaway(lesson, session), encoding="utf-8")
    return gr.DownloadButton(value=str(path), interactive=True)


def lesson_takeaway(lesson: Lesson, session: Session) -> str:
    """The take-away page for a finished lesson run in `session`."""
    d, a = session.diffusion, session.autoregressive
    figures = [("Denoising map: when each position was last changed", charts.denoising_map_figure(d)),
               ("Tokens committed per step", charts.commits_figure(d)),
               ("The race: tokens against wall time", charts.race_figure(d, a))]
    if lesson.sweep and session.sweep:
        figures.insert(0, ("Quality against steps", sweep_figure([SweepRow.from_dict(row) for row in session.sweep])))
    panels = [("Diffusion", d, session.diffusion_tokenizer), ("Autoregressive", a, session.ar_tokenizer)]
    return takeaway_html(lesson.title, lesson.prompt, lesson.text_html(), panels, figures)
