"""Lessons: guided scenarios for a teaching session, one short Markdown file each in assets/lessons/.

A lesson file is YAML front matter between `---` lines, then a body of a few sentences (the question, what
to watch, why it happens, one citation). The front matter names what a click sets:

    title: Two orders of writing                 # the picker's label
    prompt: Write a short poem about the sea.
    diffusion_model: smollm2-135m-block-diffusion  # optional: the embedded pair by default
    ar_model: smollm2-135m-instruct
    settings: {gen_length: 48, algorithm: low_confidence}  # page Settings fields; the rest: the model's recommended,
                                                 # no penalties (NO_PENALTIES)
    open: [charts]                               # the sections to open (SECTIONS); the others fold
    look_at: map                                 # where to look (LOOK_AT)
    sweep: 6 12 24 48                            # optional: run the steps sweep at these step counts after Generate
    missing: a dilated order is not in Unmask yet  # optional: what the lesson would show that is not built yet

`load_lessons()` reads them all, in file-name order, and `Lesson.check()` refuses unknown keys, unknown
settings, settings no config accepts and models the pickers do not offer, naming the file. Left out: the page's
components and handlers (page/lesson_page.py), the take-away file's drawing (visualize/takeaway.py).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import yaml

from generation import ConfigError, DiffusionConfig
from generation.config import PENALTIES
from generation.presets import AR_CHOICES, AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_CHOICES
from page.settings import Settings, recommended_settings
from page.sweep import parse_steps

LESSONS_DIR = Path(__file__).resolve().parent.parent / "assets" / "lessons"
SECTIONS = ("infill", "settings", "charts", "sweep", "export")  # the page's foldable sections a lesson can open
LOOK_AT = {  # where a lesson points, as the lesson box names it
    "both": "both canvases, side by side",
    "diffusion": "the diffusion canvas",
    "ar": "the autoregressive canvas",
    "stats": "the figures under each canvas",
    "commits": "the chart of tokens committed per step",
    "map": "the denoising map (when each position was last changed)",
    "race": "the race chart (tokens against wall time)",
    "sweep": "the steps sweep's chart and its coloured answers",
}
KEYS = ("title", "prompt", "diffusion_model", "ar_model", "settings", "open", "look_at", "sweep", "missing")
REQUIRED = ("title", "prompt", "look_at")
SETTING_NAMES = tuple(f.name for f in fields(Settings))
# A lesson shows the decoders as published: without the page's repetition penalty (which would hide, say, the words
# that parallel decoding repeats), unless it sets one.
NO_PENALTIES = {name: getattr(DiffusionConfig(), name) for name in PENALTIES}


class LessonError(ValueError):
    """A lesson file that cannot be read or whose settings cannot run; the message names the file."""


@dataclass(frozen=True)
class Lesson:
    slug: str  # the file's name without .md: the order and the take-away file's name
    title: str
    prompt: str
    diffusion_model: str
    ar_model: str
    settings: Settings  # every control's value: the model's recommended settings, then the lesson's
    open: tuple[str, ...]
    look_at: str
    sweep: str  # step counts for the steps sweep; "" = no sweep
    missing: str  # what the lesson cannot show yet; "" = nothing missing
    body: str  # Markdown

    def check(self) -> None:
        """LessonError unless every control value runs and every name is one the page knows."""
        try:
            self.settings.configs()
            self.settings.infill()
            parse_steps(self.sweep)
        except ConfigError as error:
            raise LessonError(f"{self.slug}: {error}") from None
        _one_of(self.slug, "diffusion_model", self.diffusion_model, DIFFUSION_CHOICES)
        _one_of(self.slug, "ar_model", self.ar_model, AR_CHOICES)
        _one_of(self.slug, "look_at", self.look_at, tuple(LOOK_AT))
        for section in self.open:
            _one_of(self.slug, "open", section, SECTIONS)
        if not self.body.strip():
            raise LessonError(f"{self.slug}: the body is empty; say what to watch and why")

    def text_html(self) -> str:
        """The lesson's text as HTML: the title, where to look, what is missing, the body."""
        missing = (f'<p class="um-lesson-missing"><b>Not in Unmask yet:</b> {html.escape(self.missing)}</p>'
                   if self.missing else "")
        return (f'<h3 class="um-lesson-title">{html.escape(self.title)}</h3>'
                f'<p class="um-lesson-look"><b>Look at</b> {html.escape(LOOK_AT[self.look_at])}.</p>'
                f'{missing}<div class="um-lesson-body">{markdown_html(self.body)}</div>')


def markdown_html(text: str) -> str:
    """The body's Markdown as HTML (raw HTML in it is escaped): markdown_html("*why*") -> '<p><em>why</em></p>\\n'."""
    from markdown_it import MarkdownIt  # gradio's own Markdown stack

    return MarkdownIt("commonmark", {"html": False}).render(text)


def parse_lesson(text: str, slug: str) -> Lesson:
    """A lesson from a file's text: parse_lesson("---\\ntitle: T\\n...\\n---\\nBody.", "01-t")."""
    head, body = _split(text, slug)
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as error:
        raise LessonError(f"{slug}: the front matter is not YAML: {error}") from None
    if not isinstance(meta, dict):
        raise LessonError(f"{slug}: the front matter must be key: value lines")
    unknown = sorted(set(meta) - set(KEYS))
    if unknown:
        raise LessonError(f"{slug}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(KEYS)}")
    absent = [key for key in REQUIRED if not meta.get(key)]
    if absent:
        raise LessonError(f"{slug}: missing {', '.join(absent)}")
    diffusion_model = str(meta.get("diffusion_model") or BLOCK_DIFFUSION_SMOLLM2)
    lesson = Lesson(slug=slug, title=str(meta["title"]), prompt=str(meta["prompt"]).strip(),
                    diffusion_model=diffusion_model, ar_model=str(meta.get("ar_model") or AR_SMOLLM2),
                    settings=_settings(slug, diffusion_model, meta.get("settings") or {}),
                    open=tuple(meta.get("open") or ()), look_at=str(meta["look_at"]),
                    sweep=str(meta.get("sweep") or ""), missing=str(meta.get("missing") or "").strip(),
                    body=body.strip())
    lesson.check()
    return lesson


def _split(text: str, slug: str) -> tuple[str, str]:
    """(front matter, body) of a file that starts with a `---` line and closes it with another."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise LessonError(f"{slug}: a lesson starts with front matter between '---' lines")
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise LessonError(f"{slug}: the front matter has no closing '---' line") from None
    return "\n".join(lines[1:end]), "\n".join(lines[end + 1:])


def _settings(slug: str, diffusion_model: str, given) -> Settings:
    """The model's recommended settings at the lesson's answer length without the page's penalties, then the lesson's
    own values."""
    if not isinstance(given, dict):
        raise LessonError(f"{slug}: settings must be a mapping of name: value")
    unknown = sorted(set(given) - set(SETTING_NAMES))
    if unknown:
        raise LessonError(f"{slug}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(SETTING_NAMES)}")
    try:
        base = recommended_settings(diffusion_model, given.get("gen_length", Settings.gen_length))
    except ConfigError as error:
        raise LessonError(f"{slug}: {error}") from None
    return replace(base, **{**NO_PENALTIES, **given})


def _one_of(slug: str, key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise LessonError(f"{slug}: {key} {value!r} is not one of {', '.join(valid)}")


def load_lessons(folder: Path = LESSONS_DIR) -> tuple[Lesson, ...]:
    """Every lesson in `folder`, in file-name order (01-..., 02-...)."""
    return tuple(parse_lesson(path.read_text(encoding="utf-8"), path.stem) for path in sorted(folder.glob("*.md")))


@lru_cache(maxsize=1)
def lessons() -> tuple[Lesson, ...]:
    """The shipped lessons, read once."""
    return load_lessons()


def lesson_named(title: str | None) -> Lesson | None:
    return next((lesson for lesson in lessons() if lesson.title == title), None)


def next_lesson(title: str | None) -> Lesson:
    """The lesson after `title`, the first after the last (or when none is picked)."""
    titles = [lesson.title for lesson in lessons()]
    at = titles.index(title) + 1 if title in titles else 0
    return lessons()[at % len(titles)]
