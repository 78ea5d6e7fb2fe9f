"""Plotly figures of a run: commits per step, the denoising map, the race, and score distributions.

Every function takes Histories (or None) and returns a go.Figure; a missing or empty history gives
an empty figure with a short note instead of an error, so the page can show the charts before the
first run. Steps are coloured with the same viridis scale as the canvas; the two models keep one
colour each across charts (Okabe-Ito blue and orange, safe for colour-blind viewers).

Live updating is the caller's: it rebuilds a figure from the History as it stands (page/session.py
does, throttled, while a run goes). Left out: layout beyond titles and axes (the page decides sizes).
"""

from __future__ import annotations

import plotly.graph_objects as go

from generation.history import AUTOREGRESSIVE, History
from visualize.colors import PLOTLY_SCALE, step_color

DIFFUSION_COLOR = "#0072b2"  # Okabe-Ito blue
AR_COLOR = "#e69f00"  # Okabe-Ito orange
BOX_MIN_POINTS = 2  # a step with fewer scores than this is drawn as points, not a box


# Transparent backgrounds and mid-grey text and grid read on both the light and the dark page theme.
THEME = dict(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font={"color": "#8a8f98"})
GRID = {"gridcolor": "rgba(138,143,152,0.25)", "zerolinecolor": "rgba(138,143,152,0.4)"}


def _figure() -> go.Figure:
    figure = go.Figure()
    figure.update_layout(**THEME)
    figure.update_xaxes(**GRID)
    figure.update_yaxes(**GRID)
    return figure


def _empty(title: str, note: str = "No run yet") -> go.Figure:
    figure = _figure()
    figure.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False},
                         annotations=[{"text": note, "showarrow": False, "font": {"size": 16}}])
    return figure


def _has_steps(history: History | None) -> bool:
    return history is not None and len(history.steps) > 0


def _label(history: History) -> str:
    name = "autoregressive" if history.kind == AUTOREGRESSIVE else "diffusion"
    return f"{name} · {history.model}" if history.model else name


def _filled(history: History, token: int) -> bool:
    return history.mask_id is None or token != history.mask_id


def committed_per_step(history: History) -> tuple[list[int], list[int]]:
    """Per step: tokens it committed (set to a non-mask token), and positions holding a non-mask token after it
    (given positions of an infilling run left out: they were never written)."""
    per_step, cumulative = [], []
    canvas = list(history.initial)
    filled = sum(_filled(history, token) for token in canvas) - len(history.fixed)
    for record in history.steps:  # a running count: O(changes) per step, so live redraws stay cheap
        for position, token in zip(record.positions, record.tokens):
            was = _filled(history, canvas[position]) if position < len(canvas) else False
            filled += _filled(history, token) - was
            if position == len(canvas):
                canvas.append(token)
            else:
                canvas[position] = token
        per_step.append(sum(_filled(history, token) for token in record.tokens))
        cumulative.append(filled)
    return per_step, cumulative


def finished_per_step(history: History) -> list[int]:
    """Per step: answer tokens in place (non-mask positions before the first stop token, given ones left out)."""
    return history.answer_tokens_per_step()


def commits_figure(history: History | None) -> go.Figure:
    """Bars: tokens committed in each step (coloured by step); line: positions filled so far."""
    title = "Tokens committed per step"
    if not _has_steps(history):
        return _empty(title)
    per_step, cumulative = committed_per_step(history)
    steps = list(range(1, len(per_step) + 1))
    total = max(history.planned_steps or 0, len(steps))
    figure = _figure()
    figure.add_bar(x=steps, y=per_step, name="committed in this step",
                   marker_color=[step_color(s, total) for s in steps],
                   hovertemplate="step %{x}: %{y} committed<extra></extra>")
    figure.add_scatter(x=steps, y=cumulative, name="filled so far", mode="lines+markers", yaxis="y2",
                       line={"color": DIFFUSION_COLOR if history.kind != AUTOREGRESSIVE else AR_COLOR},
                       hovertemplate="after step %{x}: %{y} filled<extra></extra>")
    figure.update_layout(title=f"{title} · {_label(history)}", xaxis_title="step",
                         yaxis_title="committed in the step", bargap=0.15,
                         yaxis2={"title": "filled so far", "overlaying": "y", "side": "right", "rangemode": "tozero"},
                         legend={"orientation": "h", "y": -0.2})
    return figure


def denoising_map_figure(history: History | None) -> go.Figure:
    """Position x step: a square for every change, coloured by step; rings mark each position's first commit
    where it changed again later (remasking or editing)."""
    title = "Denoising map: when each position changed"
    if not _has_steps(history):
        return _empty(title)
    xs, ys, hover = [], [], []
    for number, record in enumerate(history.steps, start=1):
        for position, score in zip(record.positions, record.scores):
            xs.append(position)
            ys.append(number)
            hover.append(f"position {position} · step {number}" + ("" if score is None else f" · score {score:.2f}"))
    total = max(history.planned_steps or 0, len(history.steps))
    figure = _figure()
    if history.fixed:  # infilling: the given positions, above step 1, so the blanks show as gaps
        figure.add_scatter(x=list(history.fixed), y=[0] * len(history.fixed), mode="markers", name="given (fixed)",
                           hovertemplate="position %{x}: given<extra></extra>",
                           marker={"symbol": "square-open", "size": 7, "color": "#8a8f98"})
    figure.add_scatter(x=xs, y=ys, mode="markers", name="changed", text=hover, hoverinfo="text",
                       marker={"symbol": "square", "size": 7, "color": ys, "colorscale": PLOTLY_SCALE,
                               "cmin": 1, "cmax": max(total, 2), "colorbar": {"title": "step"}})
    again = [(p, first) for p, (first, last) in enumerate(zip(history.first_committed, history.last_changed))
             if first is not None and last is not None and last != first]
    if again:
        figure.add_scatter(x=[p for p, _ in again], y=[s for _, s in again], mode="markers",
                           name="first commit (changed later)", hoverinfo="skip",
                           marker={"symbol": "circle-open", "size": 11, "color": "#d6006f"})
    figure.update_layout(title=f"{title} · {_label(history)}", xaxis_title="canvas position",
                         yaxis={"title": "step", "autorange": "reversed"}, legend={"orientation": "h", "y": -0.2})
    return figure


def race_figure(diffusion: History | None, autoregressive: History | None) -> go.Figure:
    """Answer tokens in place against wall-clock seconds, one line per model."""
    title = "The race: answer tokens in place over time"
    runs = [(h, color) for h, color in ((diffusion, DIFFUSION_COLOR), (autoregressive, AR_COLOR)) if _has_steps(h)]
    if not runs:
        return _empty(title)
    figure = _figure()
    for history, color in runs:
        figure.add_scatter(x=[0.0, *history.elapsed()], y=[0, *finished_per_step(history)], name=_label(history),
                           mode="lines", line={"color": color, "width": 3, "shape": "hv"},
                           hovertemplate="%{x:.2f} s: %{y} tokens<extra></extra>")
    figure.update_layout(title=title, xaxis_title="seconds since start", yaxis_title="answer tokens in place",
                         legend={"orientation": "h", "y": -0.2})
    return figure


def scores_figure(history: History | None) -> go.Figure:
    """The sampler's scores per step: boxes where steps commit several tokens, points otherwise."""
    title = "Scores per step"
    if not _has_steps(history):
        return _empty(title)
    xs, ys = [], []
    for number, record in enumerate(history.steps, start=1):
        for score in record.scores:
            if score is not None:
                xs.append(number)
                ys.append(score)
    if not ys:
        return _empty(title, "This algorithm gives no scores")
    total = max(history.planned_steps or 0, len(history.steps))
    figure = _figure()
    color = DIFFUSION_COLOR if history.kind != AUTOREGRESSIVE else AR_COLOR
    if len(ys) >= BOX_MIN_POINTS * len(set(xs)):
        figure.add_box(x=xs, y=ys, name="scores", marker_color=color, boxpoints="all", jitter=0.4,
                       pointpos=0, marker={"size": 3})
    else:
        figure.add_scatter(x=xs, y=ys, mode="markers", name="scores",
                           marker={"size": 6, "color": xs, "colorscale": PLOTLY_SCALE, "cmin": 1,
                                   "cmax": max(total, 2)},
                           hovertemplate="step %{x}: %{y:.3f}<extra></extra>")
    figure.update_layout(title=f"{title} · {_label(history)}", xaxis_title="step", yaxis_title="score",
                         showlegend=False)
    return figure
