"""page/api.py through the served page (gradio_client on loopback, tiny models): the documented API is the two
data endpoints with named parameters; /generate_data returns both answers, Histories and timings as data;
/sweep_data returns a row per setting; a custom model id is refused with a clear message when the operator
has not allowed them, and is loaded when they have."""

from __future__ import annotations

import pytest
from gradio_client import Client

from fakes import TINY_AR, TINY_DIFFUSION, tiny_load
from generation import History
from page.pickers import CUSTOM_MODELS_ENV
from page_server import serve

CUSTOM = "someone/any-model"  # not a page model: must never reach the loader while custom ids are off


@pytest.fixture(scope="module")
def client():
    demo, url = serve(custom_models=False)
    yield Client(url, verbose=False)
    demo.close()


def test_the_documented_api_is_the_two_data_endpoints_with_named_parameters(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert sorted(info) == ["/generate_data", "/sweep_data"]
    assert [p["parameter_name"] for p in info["/generate_data"]["parameters"]] == [
        "prompt", "diffusion_model", "ar_model", "gen_length", "steps", "block_length", "algorithm", "temperature",
        "top_p", "repetition_penalty", "dry_multiplier", "alg_temp", "threshold", "seed", "together", "cache"]
    assert [p["parameter_name"] for p in info["/sweep_data"]["parameters"]] == [
        "prompt", "diffusion_model", "ar_model", "gen_length", "block_length", "algorithm", "temperature", "seed",
        "steps", "threshold", "cache"]


def test_generate_data_returns_both_answers_histories_and_timings(client):
    out = client.predict("Name three colours.", gen_length=16, steps=8, block_length=8, api_name="/generate_data")
    diffusion, ar = out["diffusion"], out["autoregressive"]
    assert diffusion["model"] == TINY_DIFFUSION and ar["model"] == TINY_AR
    assert diffusion["status"] == ar["status"] == "done" and diffusion["answer"] and ar["answer"]
    history = History.from_json(__import__("json").dumps(diffusion["history"]))
    assert len(history.steps) == diffusion["steps"] == 8 and history.mask_id not in history.canvas
    assert diffusion["seconds"] > 0 and ar["seconds_to_first_token"] > 0 and out["settings"]["diffusion"]["steps"] == 8


def test_generate_data_takes_the_cache_and_reports_the_work(client):
    out = client.predict("Name three colours.", gen_length=16, steps=8, block_length=8, cache="dual",
                         api_name="/generate_data")
    diffusion = out["diffusion"]
    assert out["settings"]["diffusion"]["cache"] == diffusion["history"]["settings"]["cache"] == "dual"
    assert 0 < diffusion["computed_positions"] == sum(s["computed_positions"] for s in diffusion["history"]["steps"])
    assert diffusion["tokens_per_forward"] == 2.0 and out["autoregressive"]["computed_positions"] is None


def test_bad_settings_come_back_as_an_error_message(client):
    with pytest.raises(Exception, match="steps 99 > gen_length 16"):
        client.predict("Hi", gen_length=16, steps=99, block_length=16, api_name="/generate_data")


def test_sweep_data_returns_a_row_per_setting_after_the_reference(client):
    out = client.predict("Name three colours.", gen_length=16, block_length=8, steps="2, 16", threshold=False,
                         api_name="/sweep_data")
    assert [row["label"] for row in out["rows"]] == ["AR reference", "2 steps", "16 steps"]
    assert all(row["answer"] and row["entropy"] > 0 and row["perplexity"] > 1 for row in out["rows"])
    assert out["judge"] == TINY_AR and out["rows"][1]["history"]["settings"]["steps"] == 2


def test_a_custom_model_id_is_refused_with_a_clear_message_when_off(client, monkeypatch):
    out = client.predict("Hi", ar_model=CUSTOM, gen_length=16, steps=8, block_length=8, api_name="/generate_data")
    error = out["autoregressive"]["error"]
    assert out["autoregressive"]["status"] == "error" and out["diffusion"]["status"] == "done"
    assert f"{CUSTOM!r} is not one of this page's models" in error and f"{CUSTOM_MODELS_ENV}=1" in error
    with pytest.raises(Exception, match="custom model ids are off"):
        client.predict("Hi", diffusion_model=CUSTOM, gen_length=16, block_length=8, api_name="/sweep_data")


@pytest.mark.parametrize("value, allowed", [(None, False), ("", False), ("0", False), ("1", True), ("true", True)])
def test_custom_ids_are_off_unless_the_variable_says_on(monkeypatch, value, allowed):
    from page.pickers import custom_models_allowed

    if value is None:
        monkeypatch.delenv(CUSTOM_MODELS_ENV, raising=False)
    else:
        monkeypatch.setenv(CUSTOM_MODELS_ENV, value)
    assert custom_models_allowed() is allowed


def test_the_operator_can_allow_custom_ids(monkeypatch):
    import app

    asked = []

    def load(name):
        asked.append(name)
        return tiny_load(TINY_AR if name == CUSTOM else name)

    monkeypatch.setenv(CUSTOM_MODELS_ENV, "1")
    demo = app.build_demo(load=load, diffusion_model=TINY_DIFFUSION, ar_model=TINY_AR)  # custom_models from the env
    generate_data = next(fn.fn for fn in demo.fns.values() if fn.api_name == "generate_data")
    out = generate_data("Hi", ar_model=CUSTOM, gen_length=16, steps=8, block_length=8)
    assert out["autoregressive"]["status"] == "done" and CUSTOM in asked
