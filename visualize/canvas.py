"""A History at one step -> the HTML of its canvas, each token a chip coloured by when it last changed.

One <span class="um-tok"> per canvas position, in order:
- committed tokens carry the colour of the step in which they last changed (as of the shown step)
  and a tooltip "step N · score 0.93"; for AR that step is the one that produced the token, so an
  AR answer shows a left-to-right gradient and a diffusion answer shows the order it was unmasked;
  where the sampler recorded candidates (Step.candidates), the tooltip is the page's own (CSS, on hover
  or tap) and adds them: "sea 41% · ocean 22% · water 9% · ..." (`data-tip`, `data-candidates`);
- tokens changed in the shown step get the class `um-now` (outlined);
- still-masked positions show a placeholder (class `um-mask`);
- positions after the end of the answer (the first stop token onward) get `um-after` (dimmed);
- tokens of a noise-initialised canvas that no step has touched yet get `um-initial`;
- tokens given before the run (infilling: the template's text, pinned words, an AR prefix) get
  `um-fixed` and the tooltip "given": they never change.
Newlines become a visible "↵" and a line break, other control characters become their Unicode
control pictures (U+2400 block), and the container keeps runs of spaces (white-space: pre-wrap).
Every piece of text and every attribute value goes through html.escape(..., quote=True).

Left out: the CSS itself (assets/unmask.css; `CSS` reads it) and decoding, which is
`visualize.tokens.token_texts` (or use `render_history`, which does both).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from generation.history import AUTOREGRESSIVE, History
from visualize.colors import gradient_css, step_color, text_color_for
from visualize.tokens import token_texts

MASK_GLYPH = "░"  # a still-masked position: a patch of fog the size of one character
NEWLINE_GLYPH = "↵"
STOP_TEXT = "  "  # a stop token (the end of the answer, the unused room after it) shows as a blank chip
CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "unmask.css"


@cache
def css() -> str:
    """The stylesheet the canvas and legend classes need (assets/unmask.css)."""
    return CSS_PATH.read_text(encoding="utf-8")


def _control_picture(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400..U+241F: ␀ ␁ ... ␟
    return "␡" if code == 0x7F else f"\\x{code:02x}"  # DEL; C1 controls as an escape


_VISIBLE = {c: _control_picture(chr(c)) for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n"}


def visible_text(text: str) -> str:
    """Control characters as visible symbols (newline and tab kept): visible_text('a\\x00b') == 'a␀b'."""
    return text.translate(_VISIBLE)


def text_html(text: str) -> str:
    """Escaped, visible text; a newline becomes '↵' and a real line break."""
    lines = html.escape(visible_text(text), quote=True).split("\n")
    return f'<span class="um-nl">{NEWLINE_GLYPH}</span><br>'.join(lines)


def state_at(history: History, step: int) -> tuple[dict[int, int], dict[int, float | None], dict[int, list]]:
    """Per position, after `step` steps: the step (1-based) in which it last changed, that change's score, and the
    candidates the sampler recorded for it then ([[token id, probability], ...]; absent where none were)."""
    changed, scores, candidates = {}, {}, {}
    for number, record in enumerate(history.steps[:step], start=1):
        for i, (position, score) in enumerate(zip(record.positions, record.scores)):
            changed[position] = number
            scores[position] = score
            candidates.pop(position, None)
            if i < len(record.candidates):
                candidates[position] = record.candidates[i]
    return changed, scores, candidates


def default_total(history: History) -> int:
    """Steps the colour scale spans: the planned steps, or the steps taken once an AR run has ended."""
    done = len(history.steps)
    if history.kind == AUTOREGRESSIVE and (history.stopped or history.answer_length() < history.length):
        return max(done, 1)
    return max(history.planned_steps or 0, done, 1)


def _tooltip(step: int, score: float | None) -> str:
    return f"step {step}" if score is None else f"step {step} · score {score:.2f}"


@dataclass(frozen=True, slots=True)
class Cell:
    """One canvas position as shown after some step: what to draw, nothing about how."""
    text: str | None  # None = still masked
    step: int | None  # step in which it last changed (None = untouched since the initial canvas)
    score: float | None  # the sampler's score for that change
    now: bool  # changed in the shown step
    after: bool  # at or after the first stop token: canvas, not answer
    fixed: bool = False  # given before the run (infilling); never changes
    candidates: tuple[tuple[str, float], ...] = ()  # the likeliest tokens there when it was written (text, prob)
    ghost: str | None = None  # a draft the shown step proposed here, for the next step to check (text)
    rejected: str | None = None  # the previous step's draft here that the shown step did not keep (text)


def _clamp_step(history: History, step: int | None) -> int:
    return len(history.steps) if step is None else max(0, min(int(step), len(history.steps)))


def cells(history: History, texts: list[str | None], step: int | None = None,
          candidate_text=None, ghosts: dict[int, str] | None = None) -> list[Cell]:
    """The canvas after `step` steps (None = latest) as Cells; `texts` from token_texts(canvas_at(step)).
    `candidate_text(token id) -> str` names the recorded candidates and the previous step's rejected drafts (None:
    left out); `ghosts` {position: text}: the shown step's drafts (draft_texts)."""
    step = _clamp_step(history, step)
    canvas = history.canvas_at(step)
    if len(texts) != len(canvas):
        raise ValueError(f"got {len(texts)} texts for a canvas of {len(canvas)} positions at step {step}")
    changed, scores, candidates = state_at(history, step)
    now = set(history.steps[step - 1].positions) if step else set()
    end = history.answer_end(canvas)
    given = set(history.fixed)
    named = {}
    if candidate_text is not None:
        named = {i: tuple((candidate_text(int(token)), p) for token, p in top) for i, top in candidates.items()}
    ghosts, rejected = ghosts or {}, {}
    if candidate_text is not None and step > 1:
        earlier = history.steps[step - 2]
        drafted = dict(zip(earlier.draft_positions, earlier.draft_tokens))
        rejected = {i: candidate_text(drafted[i]) for i in history.changes(step).rejected if i < len(canvas)}
    return [Cell(text, changed.get(i), scores.get(i), i in now, i >= end, i in given, named.get(i, ()),
                 ghosts.get(i) if text is None else None, rejected.get(i)) for i, text in enumerate(texts)]


def draft_texts(history: History, tokenizer, step: int, canvas: list[int]) -> dict[int, str]:
    """{position: text} of the drafts step `step` proposed at positions still masked in `canvas`, decoded as if
    written there (with the text before them, so byte-level pieces join)."""
    if not step or history.mask_id is None:
        return {}
    record = history.steps[step - 1]
    drafts = {p: t for p, t in zip(record.draft_positions, record.draft_tokens)
              if p < len(canvas) and canvas[p] == history.mask_id}
    if not drafts:
        return {}
    drafted = [drafts.get(i, token) for i, token in enumerate(canvas)]
    texts = token_texts(tokenizer, drafted, hidden_ids=(history.mask_id,))
    return {p: texts[p] or "" for p in drafts}


def cell_html(cell: Cell, total: int) -> str:
    """One <span> for one Cell, coloured on a scale of `total` steps."""
    classes = "um-tok" + (" um-after" if cell.after else "") + (" um-now" if cell.now else "")
    if cell.text is None and cell.ghost is not None:
        return (f'<span class="{classes} um-mask um-ghost" title="draft: the next step keeps it or drops it">'
                f'{text_html(cell.ghost)}</span>')
    if cell.text is None:
        return f'<span class="{classes} um-mask" title="masked">{MASK_GLYPH}</span>'
    if cell.fixed:
        return f'<span class="{classes} um-fixed" title="given: fixed, never changes">{text_html(cell.text)}</span>'
    if cell.step is None:
        return f'<span class="{classes} um-initial" title="not yet changed">{text_html(cell.text)}</span>'
    background = step_color(cell.step, total)
    tip = _tooltip(cell.step, cell.score)
    if cell.rejected is not None:
        classes += " um-rejected"
        tip += f" · the draft '{visible_text(cell.rejected).strip() or cell.rejected}' was rejected here"
    tip = html.escape(tip, quote=True)
    # with candidates, the page's own tooltip (CSS, on hover or on a tap that focuses the token) replaces `title`
    hint = (f'title="{tip}"' if not cell.candidates else
            f'data-tip="{tip}" data-candidates="{html.escape(candidates_text(cell.candidates), quote=True)}" '
            f'tabindex="0"')
    return (f'<span class="{classes}" style="background:{background};color:{text_color_for(background)}" '
            f'{hint} data-step="{cell.step}">{text_html(cell.text)}</span>')


def candidates_text(candidates: tuple[tuple[str, float], ...]) -> str:
    """The candidates as one line: candidates_text(((" sea", 0.41), (" ocean", 0.22))) -> 'sea 41% · ocean 22%'.
    Blank-only tokens show as ␣ (or ↵), under 1% as '<1%'."""
    def name(text: str) -> str:
        shown = visible_text(text).strip()
        return shown or ("↵" if "\n" in text else "␣")
    return " · ".join(f"{name(text)} {f'{p:.0%}' if p >= 0.005 else '<1%'}" for text, p in candidates)


def canvas_open(history: History, step: int, total: int) -> str:
    """The opening tag of the canvas container (close it with '</div>')."""
    kind = html.escape(history.kind, quote=True)
    return f'<div class="um-canvas" data-kind="{kind}" data-step="{step}" data-total="{total}">'


def render_canvas(history: History, texts: list[str | None], step: int | None = None,
                  total_steps: int | None = None) -> str:
    """HTML of the canvas after `step` steps (None = latest); `texts` from token_texts(canvas_at(step))."""
    step = _clamp_step(history, step)
    total = total_steps or default_total(history)
    spans = [cell_html(cell, total) for cell in cells(history, texts, step)]
    return canvas_open(history, step, total) + "".join(spans) + "</div>"


def render_history(history: History, tokenizer, step: int | None = None, total_steps: int | None = None) -> str:
    """Decode and render in one call: the canvas of `history` after `step` steps (None = latest)."""
    step = _clamp_step(history, step)
    hidden = () if history.mask_id is None else (history.mask_id,)
    canvas = history.canvas_at(step)
    texts = token_texts(tokenizer, canvas, hidden_ids=hidden)
    stops = set(history.stop_ids)  # room the answer did not use (an infilled blank's tail): a blank, not the token's name
    texts = [STOP_TEXT if token in stops else text for token, text in zip(canvas, texts)]
    total = total_steps or default_total(history)
    ghosts = draft_texts(history, tokenizer, step, canvas)
    spans = [cell_html(cell, total) for cell in cells(history, texts, step, candidate_namer(tokenizer), ghosts)]
    return canvas_open(history, step, total) + "".join(spans) + "</div>"


def candidate_namer(tokenizer):
    """token id -> its text, decoded one token at a time and remembered (a candidate stands alone, so a byte of a
    longer character shows as '\ufffd')."""
    return cache(lambda token: tokenizer.decode([token], skip_special_tokens=False,
                                                clean_up_tokenization_spaces=False))


def render_legend(total_steps: int, fixed: bool = False) -> str:
    """The colour bar, early to late, with step labels, and swatches for the other token states
    (with `fixed`, also the given tokens of an infilling run)."""
    total = max(int(total_steps), 1)
    middle = (total + 1) // 2
    early, late = step_color(1, total), step_color(total, total)
    return (
        '<div class="um-legend">'
        '<div class="um-legend-scale">'
        f'<div class="um-legend-bar" style="background:{gradient_css()}" '
        f'title="colour = the step in which a token last changed"></div>'
        '<div class="um-legend-labels">'
        f'<span>step 1 · early</span><span>step {middle}</span><span>step {total} · late</span>'
        '</div></div>'
        '<div class="um-legend-keys">'
        f'<span class="um-legend-key"><span class="um-tok um-mask">{MASK_GLYPH}</span> masked</span>'
        f'<span class="um-legend-key"><span class="um-tok um-now" style="background:{late};'
        f'color:{text_color_for(late)}">ab</span> changed this step</span>'
        f'<span class="um-legend-key"><span class="um-tok um-after" style="background:{early};'
        f'color:{text_color_for(early)}">ab</span> after the answer</span>'
        + ('<span class="um-legend-key"><span class="um-tok um-fixed">ab</span> given (fixed)</span>' if fixed else '')
        + '</div></div>'
    )


def render_step_line(history: History, step: int | None = None) -> str:
    """One line under the canvas: the step shown and what it did (History.changes); drafts and rejections only
    where the decoder drafts. 'Step 3 of 8 · 2 committed · 1 revised'."""
    step = _clamp_step(history, step)
    total = history.planned_steps or len(history.steps)
    if step == 0:
        return '<div class="um-step-line">Step 0: the canvas before the first step</div>'
    changes = history.changes(step)
    parts = [f"<strong>Step {step}</strong> of {max(total, step)}", f"{len(changes.committed)} committed"]
    if changes.revised:
        parts.append(f"{len(changes.revised)} revised")
    if history.has_drafts():
        parts += [f"{len(changes.drafted)} drafted", f"{len(changes.rejected)} rejected"]
    return f'<div class="um-step-line" data-step="{step}">{" · ".join(parts)}</div>'
