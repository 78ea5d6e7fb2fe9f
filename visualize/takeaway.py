"""A lesson's take-away: one self-contained HTML file for a class's notes, opened from disk with no server and
no network.

It holds the lesson's text, each panel's replay (visualize.export.animation_html, the page's own renderer, in
an iframe's srcdoc, so its script and slider work unchanged) and the charts as plotly figures with plotly.js
inlined once (about 4.5 MB: the price of charts that still zoom and hover offline). Left out: static chart
images (they would need a headless renderer such as kaleido).
"""

from __future__ import annotations

import html

from generation.history import History
from visualize.export import animation_html

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 64em; padding: 0 1em; color: #1a1a1a; }
.um-lesson-text { border-left: 4px solid #5a5fd8; padding: 0.2em 1em; background: #f5f5fc; }
.um-takeaway-panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(28em, 1fr)); gap: 1em; }
.um-takeaway-panels iframe { width: 100%; height: 34em; border: 1px solid #ccc; border-radius: 6px; }
.um-prompt { font-size: 1.1em; }
figure { margin: 1.5em 0; }
"""


def takeaway_html(title: str, prompt: str, text_html: str, panels: list[tuple[str, History | None, object]],
                  figures: list[tuple[str, object]]) -> str:
    """The page: `text_html` (already HTML), each (heading, history, tokenizer) panel replayed, each (caption,
    plotly figure) drawn; panels without a history are left out."""
    frames = "".join(
        f'<section><h2>{html.escape(heading)}</h2><iframe class="um-replay" title="{html.escape(heading)} replay" '
        f'srcdoc="{html.escape(animation_html(history, tokenizer, title=heading), quote=True)}"></iframe></section>'
        for heading, history, tokenizer in panels if history is not None)
    charts = "".join(
        f'<figure><figcaption>{html.escape(caption)}</figcaption>'
        f'{figure.to_html(full_html=False, include_plotlyjs=(number == 0), config={"displaylogo": False})}</figure>'
        for number, (caption, figure) in enumerate(figures))
    heading = html.escape(title)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{heading}</title>"
            f"<style>{_CSS}</style></head><body><h1>{heading}</h1>"
            f"<p class=\"um-prompt\"><b>Prompt:</b> {html.escape(prompt)}</p>"
            f"<div class=\"um-lesson-text\">{text_html}</div>"
            f"<div class=\"um-takeaway-panels\">{frames}</div>{charts}</body></html>\n")
