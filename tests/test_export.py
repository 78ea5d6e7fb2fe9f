"""visualize/export.py: run JSON round trip, a self-contained HTML animation, a GIF."""

import html
import json
import re

import pytest
from PIL import Image

from fakes import ar_history, diffusion_history
from generation.history import History
from visualize import export
from fakes import BYTE_LEVEL_EOS, BYTE_LEVEL_MASK, byte_level_tokenizer

TOK = byte_level_tokenizer()  # module level for hypothesis tests, which cannot take function-scoped fixtures
MASK_ID, EOS_ID = TOK.convert_tokens_to_ids(BYTE_LEVEL_MASK), TOK.convert_tokens_to_ids(BYTE_LEVEL_EOS)

NASTY = "<script>alert(1)</script>"


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
                                            [(len(ids), EOS_ID, 0.9)]], mask_id=MASK_ID, stop_ids=(EOS_ID,))


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
    history = ar_history([5] * 50, stop_ids=(EOS_ID,))
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
