"""A steps sweep (generation.sweep rows) drawn: quality against steps as a plotly figure, and every
answer as a coloured canvas under it.

- `sweep_figure(rows)`: two panels sharing the steps axis (log 2): generative perplexity (top) with wall
  time on a second axis, unigram entropy (bottom); the step-count rows form a line, other settings
  (threshold, cache...) are single labelled points at the steps they took, and the AR model's own
  answer is a dashed reference line in both panels.
- `answers_html(rows, tokenizers)`: per row a heading with its scores, then its canvas coloured by step
  (visualize.canvas, the renderer the page uses).

Rows are read by attribute (label, kind, overrides, steps, seconds, perplexity, entropy, history), so this
module imports nothing from the torch side. Left out: several prompts per setting (no error bars).
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from generation.history import AUTOREGRESSIVE
from visualize.canvas import render_history
from visualize.charts import AR_COLOR, DIFFUSION_COLOR, GRID, THEME

if TYPE_CHECKING:
    from generation.sweep import SweepRow

TIME_COLOR = "#999999"  # wall time: grey, so the quality lines stay the eye's first stop
OTHER_COLOR = "#009e73"  # Okabe-Ito green: settings that are not a step count (threshold, cache)
TITLE = "Quality against steps"
OTHER_SYMBOLS = ("diamond", "square", "triangle-up", "star", "cross", "x")  # one per other row, named in the legend


def _is_steps_row(row: SweepRow) -> bool:
    return row.kind != AUTOREGRESSIVE and set(row.overrides) <= {"steps"}


def _finite(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def sweep_figure(rows: list[SweepRow]) -> go.Figure:
    """Perplexity and entropy against steps, wall time on the second axis, the AR answer as reference."""
    diffusion = [row for row in rows if row.kind != AUTOREGRESSIVE]
    if not diffusion:
        figure = go.Figure()
        figure.update_layout(title=TITLE, xaxis={"visible": False}, yaxis={"visible": False}, **THEME,
                             annotations=[{"text": "No sweep yet", "showarrow": False, "font": {"size": 16}}])
        return figure
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           specs=[[{"secondary_y": True}], [{"secondary_y": False}]])
    ladder = sorted((row for row in diffusion if _is_steps_row(row)), key=lambda row: row.steps)
    others = [row for row in diffusion if not _is_steps_row(row)]
    for metric, panel, title in (("perplexity", 1, "generative perplexity (AR judge)"),
                                 ("entropy", 2, "unigram entropy (nats)")):
        if ladder:
            figure.add_scatter(x=[r.steps for r in ladder], y=[_finite(getattr(r, metric)) for r in ladder],
                               mode="lines+markers", name=title, line={"color": DIFFUSION_COLOR, "width": 3},
                               hovertemplate="%{x} steps: %{y:.2f}<extra>" + metric + "</extra>", row=panel, col=1)
        for number, row in enumerate(others):  # named in the legend and on hover: in-plot labels overlapped
            figure.add_scatter(x=[row.steps], y=[_finite(getattr(row, metric))], mode="markers", name=row.label,
                               legendgroup=row.label, showlegend=panel == 1,
                               marker={"color": OTHER_COLOR, "size": 11,
                                       "symbol": OTHER_SYMBOLS[number % len(OTHER_SYMBOLS)]},
                               hovertemplate=f"{html.escape(row.label)}: %{{x}} steps, %{{y:.2f}}<extra></extra>",
                               row=panel, col=1)
        figure.update_yaxes(title_text=title, row=panel, col=1, **GRID)
    ordered = sorted(diffusion, key=lambda row: row.steps)
    figure.add_scatter(x=[r.steps for r in ordered], y=[r.seconds for r in ordered], mode="lines+markers",
                       name="wall time (s)", line={"color": TIME_COLOR, "dash": "dot"}, marker={"symbol": "x"},
                       hovertemplate="%{x} steps: %{y:.2f} s<extra>wall time</extra>", row=1, col=1, secondary_y=True)
    figure.update_yaxes(title_text="wall time (s)", secondary_y=True, row=1, col=1, rangemode="tozero",
                        showgrid=False)
    for reference in (row for row in rows if row.kind == AUTOREGRESSIVE):
        for metric, panel in (("perplexity", 1), ("entropy", 2)):
            value = _finite(getattr(reference, metric))
            if value is not None:
                figure.add_hline(y=value, line={"color": AR_COLOR, "dash": "dash", "width": 2}, row=panel, col=1,
                                 annotation_text=f"AR answer {value:.2f}", annotation_position="top left")
    steps = sorted({row.steps for row in diffusion})
    figure.update_xaxes(type="log", tickvals=steps, ticktext=[str(s) for s in steps], **GRID)
    figure.update_xaxes(title_text="denoising steps (log scale)", row=2, col=1)
    figure.update_layout(title=TITLE, height=560, legend={"orientation": "h", "y": -0.15}, **THEME)
    return figure


def row_heading(row: SweepRow) -> str:
    """'16 steps · perplexity 12.3 · entropy 2.81 nats · 24 tokens · 0.42 s'."""
    perplexity = "–" if _finite(row.perplexity) is None else f"{row.perplexity:.1f}"
    return (f"{row.label} · perplexity {perplexity} · entropy {row.entropy:.2f} nats · {row.answer_tokens} tokens · "
            f"{row.steps} steps · {row.seconds:.2f} s")


def answers_html(rows: list[SweepRow], tokenizers: dict[str, object]) -> str:
    """Every row's answer, coloured by step, under a heading with its scores (`tokenizers` by row kind)."""
    if not rows:
        return ""
    blocks = []
    for row in rows:
        kind = "ar" if row.kind == AUTOREGRESSIVE else "diffusion"
        canvas = render_history(row.history, tokenizers.get(row.kind))
        blocks.append(f'<div class="um-sweep-row um-sweep-{kind}"><div class="um-sweep-head">'
                      f'{html.escape(row_heading(row), quote=True)}</div>{canvas}</div>')
    return f'<div class="um-sweep-answers">{"".join(blocks)}</div>'
