"""generation.sweep: the steps ladder by hand, settings as config overrides, one row per setting with the
AR reference first, scores equal to generation.metrics applied by hand, Stop, and a JSON round trip.
Tiny random models behind the real SmolLM2 tokenizer (tests/fakes.py); one slow test on the embedded pair."""

import json
import math
import threading

import pytest

from fakes import TINY_AR, TINY_DIFFUSION, tiny_model
from generation import ConfigError, DiffusionConfig
from generation.history import AUTOREGRESSIVE, DIFFUSION
from generation.metrics import perplexity, teacher_nll, unigram_entropy
from generation.sweep import SweepRow, configure, default_settings, label, run_sweep, steps_ladder, stream_sweep

MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def pair():
    return tiny_model(TINY_DIFFUSION), tiny_model(TINY_AR)


def test_steps_ladder_halves_down_from_one_token_per_step():
    assert steps_ladder(64) == [8, 16, 32, 64]
    assert steps_ladder(16, blocks=2) == [2, 4, 8, 16]
    assert steps_ladder(12) == [3, 6, 12]  # 12 / 8 is not whole
    assert steps_ladder(64, blocks=16) == [16, 32, 64]  # at least one step per block


def test_default_settings_add_a_threshold_row_only_where_the_algorithm_takes_one():
    assert default_settings(DiffusionConfig(gen_length=32, steps=32)) == [
        {"steps": 4}, {"steps": 8}, {"steps": 16}, {"steps": 32}, {"threshold": 0.9}]
    assert {"threshold": 0.9} not in default_settings(DiffusionConfig(gen_length=32, steps=32, algorithm="random"))


def test_a_setting_is_a_config_override_and_bad_ones_name_their_row():
    base = DiffusionConfig(gen_length=16, steps=16, block_length=8)
    assert configure(base, {"steps": 4}) == DiffusionConfig(gen_length=16, steps=4, block_length=8)
    with pytest.raises(ConfigError, match=r"sweep setting \{'steps': 3\}: steps 3 must be a multiple"):
        configure(base, {"steps": 3})
    with pytest.raises(ConfigError, match="DiffusionConfig has no field warp"):
        configure(base, {"warp": 9})
    assert label({"steps": 16}) == "16 steps" and label({"threshold": 0.9}) == "threshold 0.9"


def test_every_setting_gives_one_row_after_the_ar_reference(pair):
    model, judge = pair
    config = DiffusionConfig(gen_length=16, steps=16, block_length=8)
    rows = list(stream_sweep(model, judge, MESSAGES, config, [{"steps": 2}, {"steps": 16}, {"threshold": 0.5}]))
    assert [r.label for r in rows] == ["AR reference", "2 steps", "16 steps", "threshold 0.5"]
    assert [r.kind for r in rows] == [AUTOREGRESSIVE, DIFFUSION, DIFFUSION, DIFFUSION]
    assert [r.steps for r in rows[1:3]] == [2, 16] and rows[1].history.settings["steps"] == 2
    assert all(r.history.mask_id not in r.history.canvas for r in rows[1:])


def test_scores_are_the_shared_metrics_of_the_answer_under_the_judge(pair):
    model, judge = pair
    row = run_sweep(model, judge, MESSAGES, DiffusionConfig(gen_length=16, steps=8), [{"steps": 8}])[1]
    answer = row.history.answer_ids()
    nll = teacher_nll(judge, judge.prompt_ids(MESSAGES), answer)  # one tokenizer: the judge reads the same ids
    assert math.isclose(row.nll, nll) and row.judged_tokens == row.answer_tokens == len(answer)
    assert row.entropy == unigram_entropy(answer)
    assert (math.isclose(row.perplexity, perplexity(nll, len(answer))) if answer else math.isnan(row.perplexity))
    assert row.seconds == row.history.seconds > 0


def test_bad_settings_fail_before_anything_runs(pair):
    model, judge = pair
    rows = stream_sweep(model, judge, MESSAGES, DiffusionConfig(gen_length=16, steps=16), [{"steps": 8}, {"steps": 99}])
    with pytest.raises(ConfigError, match="steps 99 > gen_length 16"):
        next(rows)


def test_stop_ends_the_sweep_without_a_cut_row(pair):
    model, judge = pair
    stop = threading.Event()
    rows = []
    for row in stream_sweep(model, judge, MESSAGES, DiffusionConfig(gen_length=16, steps=16),
                            [{"steps": 4}, {"steps": 8}, {"steps": 16}], stop=stop):
        rows.append(row)
        if len(rows) == 2:
            stop.set()
    assert [r.label for r in rows] == ["AR reference", "4 steps"]


def test_rows_round_trip_json(pair):
    model, judge = pair
    for row in run_sweep(model, judge, MESSAGES, DiffusionConfig(gen_length=16, steps=4), [{"steps": 4}]):
        back = SweepRow.from_dict(json.loads(json.dumps(row.to_dict(), allow_nan=False)))
        assert back.history.to_json() == row.history.to_json() and back.label == row.label
        assert back.nll == row.nll and (back.perplexity == row.perplexity or math.isnan(row.perplexity))


@pytest.mark.slow
def test_the_embedded_pair_scores_its_own_answer_better_than_a_one_step_canvas(smollm2_ar):
    from generation import load_model
    from generation.presets import DIFFUSION_SMOLLM2

    model = load_model(DIFFUSION_SMOLLM2, device="cpu")
    rows = run_sweep(model, smollm2_ar, [{"role": "user", "content": "What is the capital of France?"}],
                     DiffusionConfig(gen_length=16, steps=16), [{"steps": 1}, {"steps": 16}])
    reference, one_step, full = rows
    assert reference.judged_tokens > 0 and reference.perplexity < one_step.perplexity
    assert one_step.steps == 1 and full.steps == 16 and full.answer_tokens > 0


def test_a_speculative_base_sweeps_low_confidence_in_the_models_blocks_then_itself():
    from types import SimpleNamespace

    config = DiffusionConfig(gen_length=64, block_length=4, algorithm="speculative", cache="prefix")
    rows = default_settings(config, SimpleNamespace(block_size=8))
    unmasking = {"algorithm": "low_confidence", "block_length": 8}
    assert rows == [{**unmasking, "steps": s} for s in (8, 16, 32, 64)] + [{**unmasking, "threshold": 0.9},
                                                                          {"algorithm": "speculative"}]
    assert [configure(config, row).algorithm for row in rows[-2:]] == ["low_confidence", "speculative"]
