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
