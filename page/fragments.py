"""HTML fragments around the canvases: a panel with its earlier turns, the live figures under it,
messages, placeholders, the legend box, the timing note, the start line. Strings in, HTML out; the
canvas itself is visualize.canvas's. Colours and layout live in assets/*.css.
"""

from __future__ import annotations

import html

import generation
from generation import History
from generation.decoders import ANY_ORDER, decoder
from page.settings import ONE_AFTER_THE_OTHER
from visualize.canvas import render_history, render_legend, render_step_line

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
        f'<div class="um-turn"><div class="um-you">{esc(turn[0])}</div>'
        f'<div class="um-said">{esc(turn[index]) or "<i>(no answer)</i>"}</div></div>'
        for turn in turns
    )
    return (f'<div class="um-panel-body"><details class="um-transcript"><summary>Earlier turns '
            f'({len(turns)})</summary>{rows}</details>{body}</div>')


def legend_html(total_steps: int, fixed: bool = False) -> str:
    return ('<div class="um-key"><div class="um-key-title">Colour = the step that wrote a token</div>'
            f'{render_legend(total_steps, fixed)}</div>')


def message_html(title: str, text: str, kind: str = "error", hint: str = "") -> str:
    role = ' role="alert"' if kind == "error" else ""
    hint_html = f'<div class="um-message-hint">{esc(hint)}</div>' if hint else ""
    return (f'<div class="um-message um-{kind}"{role}><div class="um-message-title">{esc(title)}</div>'
            f'<div class="um-message-text">{esc(text)}</div>{hint_html}</div>')


def diffusion_title_html(algorithm: str) -> str:
    """The diffusion panel's title, saying how the chosen decoder fills the canvas: in any order, or (speculative
    decoding) left to right, like the AR panel beside it. `algorithm` is one the picker offers (ALGORITHMS)."""
    how = ("fills blanks in any order" if decoder(algorithm).order == ANY_ORDER
           else "fills left to right, a few drafted tokens a step")
    return f'<h2 class="um-panel-title">Diffusion <span>{esc(how)}</span></h2>'


def placeholder_html(text: str) -> str:
    return f'<div class="um-placeholder">{esc(text)}</div>'


def stats_html(history: History | None, status: str, kind: str, label: str | None = None) -> str:
    """The live figures under a panel: steps, forward passes, tokens per forward, (diffusion) positions computed
    and, with a KV cache, the work it saved, the share of tokens written out of order and the revisions; elapsed,
    tokens/s, time to first token."""
    diffusion = kind == generation.DIFFUSION
    first_label = "first commit" if diffusion else "first token"
    if history is None:
        names = ["steps", "forward passes", "tokens/forward",
                 *(["positions computed", "out of order", "revisions"] if diffusion else []), "elapsed", "tokens/s",
                 first_label]
        cells = [(name, "–") for name in names]
    else:
        done = len(history.steps)
        total = history.planned_steps
        seconds = history.seconds
        tokens = history.answer_tokens()
        first = history.seconds_to_first_token()
        per_forward = history.tokens_per_forward()
        if total is None and status == "running" and label is None:
            label = "generating… (the model decides how many steps)"
        cells = [
            ("steps", f"{done} / {total}" if total else f"{done}"),
            ("forward passes", f"{history.forward_passes}"),
            ("tokens/forward", f"{per_forward:.2f}" if per_forward is not None else "–"),
            *(work_cells(history) + order_cells(history) if diffusion else []),
            ("elapsed", f"{seconds:.2f} s"),
            ("tokens/s", f"{tokens / seconds:.1f}" if seconds > 0 else "–"),
            (first_label, f"{first:.2f} s" if first is not None else "–"),
        ]
    figures = "".join(f'<div class="um-stat"><span class="um-stat-value">{esc(value)}</span>'
                      f'<span class="um-stat-label">{esc(label)}</span></div>' for label, value in cells)
    return (f'<div class="um-stats" data-status="{esc(status)}"><div class="um-status um-status-{esc(status)}">'
            f'{esc(label or STATUS_WORDS.get(status, status))}</div>{figures}</div>')


def work_cells(history: History) -> list[tuple[str, str]]:
    """Positions the forwards computed and, where the run used a KV cache, how many times fewer than without one:
    [("positions computed", "4,748"), ("less work (dual cache)", "4.4×")]."""
    computed = history.computed_positions
    cells = [("positions computed", f"{computed:,}" if computed is not None else "–")]
    saved = history.work_saved()
    if history.cache != "none" and saved is not None:
        cells.append((f"less work ({history.cache} cache)", f"{saved:.1f}×"))
    return cells


def order_cells(history: History) -> list[tuple[str, str]]:
    """How the canvas filled: the share of answer tokens written while a blank was left of them (0% left to right)
    and how many written tokens were changed again: [("out of order", "30%"), ("revisions", "12")]."""
    return [("out of order", f"{100 * history.out_of_order():.0f}%"), ("revisions", f"{history.revisions():,}")]


def timing_note(mode: str, state: str) -> str:
    if mode == ONE_AFTER_THE_OTHER:
        how, why = "one after the other", "each model had the machine to itself, so the timings are fair"
    else:
        how, why = "together", "both models shared the machine, so each is slower than it would be alone"
    return f'<div class="um-timing">Timings {state}: <b>{esc(how)}</b> ({esc(why)}).</div>'


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def panel_body(view, tokenizer) -> str:
    """A panel's canvas, or its message (`view` is a page.race.PanelView)."""
    if view.error is not None:
        return message_html(view.error_title, view.error, hint=fix_hint(view))
    note = note_html(view.note)
    if view.history is None:
        return note + placeholder_html(STATUS_WORDS.get(view.status, view.status).capitalize())
    return note + canvas_html(view.history, tokenizer)


def canvas_html(history: History, tokenizer, step: int | None = None) -> str:
    """The canvas after `step` steps (None = the latest) and, under it, the line saying what that step did."""
    return render_history(history, tokenizer, step=step) + render_step_line(history, step)


def note_html(note: str) -> str:
    """A panel's note folded to its opening words (up to the first ':' or '.'), so the canvas stays in view;
    the whole note opens on a click. note_html("Speculative decoding: each step ...") -> summary "Speculative
    decoding", then the note."""
    if not note:
        return ""
    cut = min((i for i in (note.find(":"), note.find(". ")) if i > 0), default=len(note))
    return (f'<details class="um-note"><summary>{esc(note[:cut])}</summary>'
            f'<div class="um-note-text">{esc(note)}</div></details>')


def fix_hint(view) -> str:
    if view.error_title.startswith("Model"):
        return "The other panel still works."
    return ""


def start_line_html(line: str) -> str:
    """Under the preset picker: why the page started on its preset (empty when the models were named)."""
    return f'<div class="um-fit um-start">{esc(line)}</div>' if line else ""
