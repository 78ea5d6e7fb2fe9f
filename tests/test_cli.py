"""`python -m generation`: headless runs that print answers and summaries and write histories."""

import json

import pytest

from generation import History
from generation.__main__ import main


def test_bad_settings_exit_with_a_message(capsys):
    assert main(["Hi", "--steps", "100", "--gen-length", "16", "--no-diffusion", "--ar"]) == 2
    assert "steps 100 > gen_length 16" in capsys.readouterr().err


@pytest.mark.slow
def test_ar_run_prints_answer_and_writes_history(tmp_path, capsys, smollm2_ar):
    out = tmp_path / "run.json"
    code = main(["What is the capital of France?", "--no-diffusion", "--ar", "--gen-length", "24",
                 "--device", "cpu", "--history-json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "Paris" in printed and "[autoregressive]" in printed and "forward passes" in printed
    history = History.from_json(json.dumps(json.load(open(out))["autoregressive"]))
    assert history.kind == "autoregressive" and history.steps


@pytest.mark.slow
def test_diffusion_run_writes_a_complete_history(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = main(["Name three colours.", "--gen-length", "32", "--steps", "16", "--block-length", "16",
                 "--device", "cpu", "--history-json", str(out)])
    assert code == 0 and "[diffusion] 16 steps, 16 forward passes" in capsys.readouterr().out
    history = History.from_json(json.dumps(json.load(open(out))["diffusion"]))
    assert history.mask_id not in history.canvas and None not in history.last_changed


def test_sweep_prints_a_row_per_setting_and_writes_them(tmp_path, capsys, monkeypatch):
    import generation.__main__ as cli
    from fakes import TINY_AR, TINY_DIFFUSION, tiny_model

    monkeypatch.setattr(cli, "load_model", lambda name, device=None, dtype=None:
                        tiny_model(TINY_DIFFUSION if "diffusion" in name else TINY_AR))
    out = tmp_path / "sweep.json"
    code = main(["Name three colours.", "--gen-length", "16", "--block-length", "8", "--sweep", "2", "16",
                 "--sweep-json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "| AR reference |" in printed and "| 2 steps | 2 |" in printed and "| 16 steps | 16 |" in printed
    rows = json.load(open(out))["rows"]
    assert [r["label"] for r in rows] == ["AR reference", "2 steps", "16 steps"]
    assert History.from_json(json.dumps(rows[1]["history"])).settings["steps"] == 2


def test_a_template_without_a_blank_exits_with_a_message(capsys):
    assert main(["Hi", "--infill", "no blank here", "--no-diffusion", "--ar"]) == 2
    assert "has no blank" in capsys.readouterr().err


@pytest.mark.slow
def test_the_embedded_model_fills_only_the_blanks(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = main(["Tell me about France.", "--gen-length", "16", "--steps", "4", "--device", "cpu",
                 "--infill", "The capital of France is ___2.", "--history-json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "The capital of France is" in printed
    history = History.from_json(json.dumps(json.load(open(out))["diffusion"]))
    assert history.fixed and history.mask_id not in history.canvas
    assert all(history.canvas[p] == history.initial[p] for p in history.fixed)
    assert len(history.steps) == history.planned_steps == 2  # two blank tokens, one a step
