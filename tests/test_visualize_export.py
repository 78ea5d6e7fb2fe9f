"""visualize/: every chart builds for diffusion, AR and missing runs; run JSON round trip; animations."""

import html
import json
import re

import plotly.graph_objects as go
import pytest
from PIL import Image

from generation.history import History
from test_visualize import EOS_ID, MASK_ID, TOK, ar_history, diffusion_history
from visualize import charts, export

NASTY = "<script>alert(1)</script>"


@pytest.fixture
def diffusion():
    # 5 positions: step 1 commits 0 and 2 (a stop token), step 2 remasks 0, step 3 fills the rest
    a, b, c = TOK.encode("a")[0], TOK.encode("b")[0], TOK.encode("c")[0]
    return diffusion_history(5, [[(0, a, 0.9), (2, EOS_ID, 0.8)], [(0, MASK_ID, 0.1)],
                                 [(0, b, 0.7), (1, c, 0.6), (3, a, 0.5), (4, b, 0.4)]])


@pytest.fixture
def autoregressive():
    return ar_history([*TOK.encode("the fox"), EOS_ID])


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


def test_run_json_round_trips(diffusion, autoregressive):
    settings = {"prompt": NASTY, "diffusion": {"steps": 3}, "mode": "sequential"}
    text = export.run_json(diffusion, autoregressive, settings)
    d, a, s = export.load_run(text)
    assert (d, a, s) == (diffusion, autoregressive, settings)
    assert d.canvas == diffusion.canvas and a.answer_ids() == autoregressive.answer_ids()
    assert export.load_run(export.run_json(None, autoregressive, {}))[0] is None


def test_load_run_rejects_other_files():
    with pytest.raises(ValueError, match="not an Unmask run"):
        export.load_run('{"steps": []}')
    with pytest.raises(ValueError, match="version"):
        export.load_run('{"format": "unmask-run", "version": 99}')
    with pytest.raises(ValueError, match="not a JSON"):
        export.load_run("<html>")


def nasty_history() -> History:
    ids = TOK.encode(NASTY + " é\n🎉")
    return diffusion_history(len(ids) + 1, [[(p, t, 0.5) for p, t in enumerate(ids) if p % 2 == 0],
                                            [(p, t, 0.5) for p, t in enumerate(ids) if p % 2 == 1],
                                            [(len(ids), EOS_ID, 0.9)]])


def test_animation_html_is_self_contained_and_escaped():
    page = export.animation_html(nasty_history(), TOK, title=NASTY)
    assert not re.search(r"https?://", page) and " src=" not in page and "<link" not in page
    assert page.count("<script") == 2 and "alert(1)</script>" not in page  # the two scripts of the player only
    data = json.loads(re.search(r'<script type="application/json" id="um-data">(.*?)</script>', page, re.S).group(1))
    assert len(data["frames"]) == 4 and data["steps"] == [0, 1, 2, 3]
    last = "".join(data["spans"][k] for k in data["frames"][-1])
    assert "<script" not in last and "&lt;" in last
    assert html.unescape(re.sub(r"<[^>]+>", "", last)).startswith(NASTY + " é↵🎉")
    assert "um-legend" in page and "um-play" in page


def test_long_runs_are_sampled_to_a_bounded_number_of_frames():
    history = ar_history([5] * 50)
    assert export.frame_steps(history, 10)[0] == 0 and export.frame_steps(history, 10)[-1] == 50
    assert len(export.frame_steps(history, 10)) == 10 and export.frame_steps(history, 100) == list(range(51))


def test_gif_has_a_frame_per_step_with_the_step_colours(tmp_path, autoregressive):
    path = export.animation_gif(nasty_history(), TOK, tmp_path / "run.gif")
    with Image.open(path) as image:
        assert image.format == "GIF" and image.n_frames == 4 and image.size[0] == 900
        image.seek(3)
        colors = {rgb for _, rgb in image.convert("RGB").getcolors(1 << 20)}
    assert (0x44, 0x01, 0x54) in colors  # viridis' first stop: the legend bar and step-1 tokens
    with Image.open(export.animation_gif(autoregressive, TOK, tmp_path / "ar.gif")) as image:
        assert image.n_frames == len(autoregressive.steps) + 1
