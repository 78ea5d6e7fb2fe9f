"""visualize/charts.py: every chart builds for diffusion, AR and missing runs, and counts what it says."""

import json

import plotly.graph_objects as go
import pytest

from fakes import ar_history
from visualize import charts
from fakes import BYTE_LEVEL_EOS, BYTE_LEVEL_MASK, byte_level_tokenizer

TOK = byte_level_tokenizer()  # module level for hypothesis tests, which cannot take function-scoped fixtures
MASK_ID, EOS_ID = TOK.convert_tokens_to_ids(BYTE_LEVEL_MASK), TOK.convert_tokens_to_ids(BYTE_LEVEL_EOS)


def test_commits_per_step_and_filled_so_far(diffusion, autoregressive):
    assert charts.committed_per_step(diffusion) == ([2, 0, 4], [2, 1, 5])
    n = len(autoregressive.steps)
    assert charts.committed_per_step(autoregressive) == ([1] * n, list(range(1, n + 1)))
    figure = charts.commits_figure(diffusion)
    assert list(figure.data[0].y) == [2, 0, 4] and list(figure.data[1].y) == [2, 1, 5]


def test_race_counts_answer_tokens_before_the_stop(diffusion, autoregressive):
    assert charts.finished_per_step(diffusion) == [1, 0, 2]
    assert charts.finished_per_step(autoregressive)[-1] == len(autoregressive.answer_ids())
    figure = charts.race_figure(diffusion, autoregressive)
    assert len(figure.data) == 2 and figure.data[0].x[0] == 0.0
    assert figure.data[1].x[-1] == pytest.approx(autoregressive.seconds)


def test_denoising_map_has_a_mark_per_change_and_rings_for_positions_changed_again(diffusion):
    figure = charts.denoising_map_figure(diffusion)
    assert len(figure.data[0].x) == sum(len(step.positions) for step in diffusion.steps)
    assert list(figure.data[1].x) == [0] and list(figure.data[1].y) == [1]


@pytest.mark.parametrize("make", [charts.commits_figure, charts.denoising_map_figure, charts.scores_figure])
def test_every_chart_builds_for_both_kinds_and_for_no_run(make, diffusion, autoregressive):
    for history in (diffusion, autoregressive, None, ar_history([])):
        figure = make(history)
        assert isinstance(figure, go.Figure)
        json.loads(figure.to_json())
    assert len(make(None).data) == 0
    assert len(charts.race_figure(None, None).data) == 0 and len(charts.race_figure(None, autoregressive).data) == 1


def test_scores_are_boxes_for_diffusion_and_points_for_ar(diffusion, autoregressive):
    assert isinstance(charts.scores_figure(diffusion).data[0], go.Box)
    assert isinstance(charts.scores_figure(autoregressive).data[0], go.Scatter)
