"""visualize/sweep.py: the figure plots what the rows say (ladder line, other settings as points, wall time
on the second axis, the AR reference line) and the answers are the page's coloured canvases."""

import math

from fakes import ar_history, byte_level_runs, byte_level_tokenizer, diffusion_history
from generation.history import AUTOREGRESSIVE, DIFFUSION
from generation.sweep import SweepRow
from visualize.canvas import render_history
from visualize.sweep import answers_html, row_heading, sweep_figure


def row(label, kind, overrides, steps, perplexity, entropy=2.0, seconds=0.5, history=None):
    history = history or (ar_history([5, 6]) if kind == AUTOREGRESSIVE else diffusion_history(2, [[(0, 5, 0.9)]]))
    return SweepRow(label=label, kind=kind, overrides=overrides, steps=steps, seconds=seconds, answer_tokens=2,
                    judged_tokens=2, nll=1.0, perplexity=perplexity, entropy=entropy, history=history)


ROWS = [row("AR reference", AUTOREGRESSIVE, {}, 12, 4.0, entropy=2.5),
        row("16 steps", DIFFUSION, {"steps": 16}, 16, 9.0, seconds=1.0),
        row("4 steps", DIFFUSION, {"steps": 4}, 4, 30.0, seconds=0.3),
        row("threshold 0.9", DIFFUSION, {"threshold": 0.9}, 7, float("nan"), seconds=0.4)]


def test_the_figure_plots_the_ladder_the_other_settings_and_wall_time():
    figure = sweep_figure(ROWS)
    perplexity_line = figure.data[0]
    assert list(perplexity_line.x) == [4, 16] and list(perplexity_line.y) == [30.0, 9.0]
    threshold = next(t for t in figure.data if t.name == "threshold 0.9")
    assert list(threshold.x) == [7] and threshold.y[0] is None  # an empty answer has no perplexity
    time = next(t for t in figure.data if t.name == "wall time (s)")
    assert list(time.x) == [4, 7, 16] and list(time.y) == [0.3, 0.4, 1.0] and time.yaxis == "y2"
    references = [shape.y0 for shape in figure.layout.shapes]
    assert references == [4.0, 2.5]  # the AR answer's perplexity and entropy
    assert figure.layout.xaxis.type == "log"


def test_no_diffusion_rows_give_an_empty_figure_with_a_note():
    assert sweep_figure([]).layout.annotations[0].text == "No sweep yet"


def test_answers_are_the_page_canvases_under_their_scores():
    diffusion, ar = byte_level_runs()
    tok = byte_level_tokenizer()
    rows = [row("AR reference", AUTOREGRESSIVE, {}, len(ar.steps), 4.0, history=ar),
            row("3 steps", DIFFUSION, {"steps": 3}, 3, float("nan"), history=diffusion)]
    out = answers_html(rows, {AUTOREGRESSIVE: tok, DIFFUSION: tok})
    assert render_history(diffusion, tok) in out and render_history(ar, tok) in out
    assert "3 steps · perplexity – · entropy 2.00 nats" in out and "AR reference · perplexity 4.0" in out
    assert row_heading(rows[0]).endswith(f"{len(ar.steps)} steps · 0.50 s") and not math.isnan(rows[0].perplexity)
