"""Take a run away: the run as JSON, and the denoising as an animation for slides.

- `run_json` / `load_run`: both histories (each via History.to_json) and the settings, under a
  format name and version; `load_run(run_json(d, a, s)) == (d, a, s)`. A steps sweep's rows
  (generation.sweep.SweepRow.to_dict) ride along under "sweep" when there are any; `load_sweep` reads them.
- `animation_html`: one self-contained HTML file (inline CSS and JS, no network) that replays the
  canvas frame by frame with play/pause and a slider, with the legend. Frames are rendered here by
  the same code as the page (visualize.canvas); the file stores each distinct token <span> once
  and every frame as a list of indices into them, so a 512-token, 64-step run stays small.
- `animation_gif`: the same replay as an animated GIF drawn with Pillow, with a legend strip.

Left out: video formats, and fonts beyond DejaVu Sans Mono or Pillow's default (glyphs the font
lacks, such as emoji, are drawn as boxes in the GIF; the HTML animation uses the browser's fonts).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from generation.history import History
from visualize.canvas import (MASK_GLYPH, Cell, canvas_open, cell_html, cells, css, default_total, render_legend,
                              visible_text)
from visualize.colors import scale_color, step_color, text_color_for
from visualize.tokens import token_texts

FORMAT = "unmask-run"
FORMAT_VERSION = 1
MAX_FRAMES = 240  # longer runs are sampled evenly (first and last frame kept) to bound file size and time


def run_json(diffusion: History | None, autoregressive: History | None, settings: dict,
             sweep: list[dict] | None = None) -> str:
    """Both histories and the settings as one JSON document (settings must be JSON-serialisable), and the
    latest steps sweep's rows when given."""
    data = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "settings": settings,
        "diffusion": None if diffusion is None else json.loads(diffusion.to_json()),
        "autoregressive": None if autoregressive is None else json.loads(autoregressive.to_json()),
    }
    if sweep:
        data["sweep"] = sweep
    return json.dumps(data, allow_nan=False, ensure_ascii=False, indent=1)


def load_run(text: str) -> tuple[History | None, History | None, dict]:
    """Read what run_json wrote: (diffusion, autoregressive, settings)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not a JSON document: {error}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not an Unmask run file (expected \"format\": \"{FORMAT}\")")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"Unmask run format version {data.get('version')!r}; this code reads {FORMAT_VERSION}")

    def history(key: str) -> History | None:
        return None if data.get(key) is None else History.from_json(json.dumps(data[key]))

    return history("diffusion"), history("autoregressive"), dict(data.get("settings") or {})


def load_sweep(text: str) -> list[dict]:
    """The sweep rows a run file carries (SweepRow.to_dict each; SweepRow.from_dict reads one), [] when none."""
    return list(json.loads(text).get("sweep") or [])


def frame_steps(history: History, max_frames: int = MAX_FRAMES) -> list[int]:
    """The steps to show, 0 (the initial canvas) to the last: frame_steps(h with 10 steps, 4) == [0, 3, 7, 10]."""
    last = len(history.steps)
    if last + 1 <= max_frames:
        return list(range(last + 1))
    count = max(max_frames, 2)
    return sorted({round(i * last / (count - 1)) for i in range(count)})


def _frame_cells(history: History, tokenizer, step: int) -> list[Cell]:
    hidden = () if history.mask_id is None else (history.mask_id,)
    return cells(history, token_texts(tokenizer, history.canvas_at(step), hidden_ids=hidden), step)


def _script_json(data) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em;
       background: #ffffff; color: #1a1a1a; }
@media (prefers-color-scheme: dark) {
  body { background: #16181c; color: #e8e8e8; }
  :root { --um-mask-bg: #3a3a3a; --um-mask-fg: #9a9a9a; --um-now: #ff5fb0; }
}
.um-controls { display: flex; align-items: center; gap: 1em; margin: 1em 0; }
.um-controls input[type=range] { flex: 1; }
.um-controls button { font-size: 1em; min-width: 5em; }
.um-meta { opacity: 0.7; font-size: 0.9em; }
"""

_PAGE_JS = """
(function () {
  const data = JSON.parse(document.getElementById("um-data").textContent);
  const canvas = document.getElementById("um-frame");
  const slider = document.getElementById("um-slider");
  const label = document.getElementById("um-label");
  const button = document.getElementById("um-play");
  let timer = null;
  function show(i) {
    const frame = data.frames[i];
    canvas.innerHTML = data.open[i] + frame.map(function (k) { return data.spans[k]; }).join("") + "</div>";
    slider.value = i;
    label.textContent = "step " + data.steps[i] + " / " + data.steps[data.steps.length - 1];
  }
  function stop() { clearInterval(timer); timer = null; button.textContent = "Play"; }
  function play() {
    if (Number(slider.value) >= data.frames.length - 1) show(0);
    button.textContent = "Pause";
    timer = setInterval(function () {
      const next = Number(slider.value) + 1;
      if (next >= data.frames.length) { stop(); return; }
      show(next);
    }, data.interval_ms);
  }
  button.addEventListener("click", function () { timer ? stop() : play(); });
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  show(data.frames.length - 1);
})();
"""


def animation_html(history: History, tokenizer, title: str = "", max_frames: int = MAX_FRAMES,
                   interval_ms: int = 250) -> str:
    """A self-contained HTML page replaying `history` frame by frame (play/pause, slider, legend)."""
    if history is None:
        raise ValueError("no run to animate: generate first")
    total = default_total(history)
    steps = frame_steps(history, max_frames)
    index: dict[str, int] = {}
    frames, opens = [], []
    for step in steps:
        spans = [cell_html(cell, total) for cell in _frame_cells(history, tokenizer, step)]
        frames.append([index.setdefault(span, len(index)) for span in spans])
        opens.append(canvas_open(history, step, total))
    data = {"spans": list(index), "frames": frames, "open": opens, "steps": steps, "interval_ms": interval_ms}
    heading = html.escape(title or f"Unmask · {history.kind} · {history.model or 'model'}", quote=True)
    facts = [history.kind, history.model, f"{len(history.steps)} steps", f"{history.forward_passes} forward passes",
             f"{history.seconds:.2f} s"]
    meta = html.escape(" · ".join(fact for fact in facts if fact), quote=True)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{heading}</title>"
        f"<style>{css()}{_PAGE_CSS}</style></head><body>"
        f"<h1>{heading}</h1><p class=\"um-meta\">{meta}</p>{render_legend(total, fixed=bool(history.fixed))}"
        "<div class=\"um-controls\"><button id=\"um-play\" type=\"button\">Play</button>"
        f"<input id=\"um-slider\" type=\"range\" min=\"0\" max=\"{len(steps) - 1}\" step=\"1\" "
        f"value=\"{len(steps) - 1}\">"
        "<span id=\"um-label\"></span></div><div id=\"um-frame\"></div>"
        f"<script type=\"application/json\" id=\"um-data\">{_script_json(data)}</script>"
        f"<script>{_PAGE_JS}</script></body></html>\n"
    )


# --- GIF -----------------------------------------------------------------------------------------

_GIF_BACKGROUND = "#ffffff"
_GIF_TEXT = "#1a1a1a"
_GIF_MASK = "#d9d9d9"
_GIF_NOW = "#d6006f"
_GIF_FIXED = "#f0f0f0"  # given text (infilling): near-white, outside the step scale
_DIM = 0.35  # opacity of positions after the answer, as on the page


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSansMono.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _blend(color: str, background: str, alpha: float) -> str:
    from visualize.colors import _hex, _rgb

    return _hex(tuple(alpha * c + (1 - alpha) * b for c, b in zip(_rgb(color), _rgb(background))))


def _layout(frame: list[Cell], font, width: int, margin: int, line_height: int):
    """Place each cell's pieces left to right, wrapping at `width`: [(x, y, text, cell)], height."""
    x, y, placed = margin, margin, []
    for cell in frame:
        text = MASK_GLYPH if cell.text is None else visible_text(cell.text).replace("\t", "    ")
        lines = text.split("\n")
        for number, line in enumerate(lines):
            if number:
                placed.append((x, y, "↵", cell))
                x, y = margin, y + line_height
            w = font.getlength(line)
            if x + w > width - margin and x > margin:
                x, y = margin, y + line_height
            placed.append((x, y, line, cell))
            x += w + 1
    return placed, y + line_height + margin


def _draw_cells(draw, placed, font, total: int, line_height: int) -> None:
    for x, y, text, cell in placed:
        w = font.getlength(text)
        if cell.text is None:
            fill, ink = _GIF_MASK, "#8a8a8a"
        elif cell.fixed:
            fill, ink = _GIF_FIXED, _GIF_TEXT
        elif cell.step is None:
            fill, ink = _GIF_BACKGROUND, "#8a8a8a"
        else:
            fill = step_color(cell.step, total)
            ink = text_color_for(fill)
        if cell.after:
            fill, ink = _blend(fill, _GIF_BACKGROUND, _DIM), _blend(ink, _GIF_BACKGROUND, _DIM)
        box = (x, y + 2, x + max(w, 1), y + line_height - 2)
        if text:
            draw.rectangle(box, fill=fill)
            draw.text((x, y + line_height / 2), text, font=font, fill=ink, anchor="lm")
        if cell.now:
            draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), outline=_GIF_NOW, width=2)


def _draw_legend(draw, top: int, width: int, margin: int, font, small, step: int, total: int) -> None:
    bar_left, bar_right, bar_top = margin, width // 2, top + 8
    for px in range(bar_left, bar_right):
        draw.line((px, bar_top, px, bar_top + 14), fill=scale_color((px - bar_left) / (bar_right - bar_left - 1)))
    draw.text((bar_left, bar_top + 18), "step 1 · early", font=small, fill=_GIF_TEXT)
    draw.text((bar_right, bar_top + 18), f"step {total} · late", font=small, fill=_GIF_TEXT, anchor="ra")
    x = bar_right + 24
    draw.rectangle((x, bar_top, x + 14, bar_top + 14), fill=_GIF_MASK)
    draw.text((x + 20, bar_top + 7), "masked", font=small, fill=_GIF_TEXT, anchor="lm")
    x += 20 + small.getlength("masked") + 16
    draw.rectangle((x, bar_top, x + 14, bar_top + 14), outline=_GIF_NOW, width=2)
    draw.text((x + 20, bar_top + 7), "changed now", font=small, fill=_GIF_TEXT, anchor="lm")
    draw.text((width - margin, bar_top + 18), f"step {step} / {total}", font=font, fill=_GIF_TEXT, anchor="ra")


def animation_gif(history: History, tokenizer, path, width: int = 900, font_size: int = 18,
                  max_frames: int = 120, frame_ms: int = 200, hold_ms: int = 2500) -> Path:
    """Write the replay of `history` as an animated GIF at `path` (one frame per shown step) and return the path."""
    from PIL import Image, ImageDraw

    if history is None:
        raise ValueError("no run to animate: generate first")
    total = default_total(history)
    font, small = _font(font_size), _font(max(font_size - 5, 10))
    margin, line_height, legend_height = 16, int(font_size * 1.8), 60
    steps = frame_steps(history, max_frames)
    layouts = [_layout(_frame_cells(history, tokenizer, step), font, width, margin, line_height) for step in steps]
    height = max(h for _, h in layouts) + legend_height
    images = []
    for step, (placed, canvas_height) in zip(steps, layouts):
        image = Image.new("RGB", (width, height), _GIF_BACKGROUND)
        draw = ImageDraw.Draw(image)
        _draw_cells(draw, placed, font, total, line_height)
        _draw_legend(draw, height - legend_height, width, margin, font, small, step, total)
        images.append(image)
    path = Path(path)
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, format="GIF")
    return path
