"""app.py: the page through its API (gradio_client on loopback), with tiny models and the real SmolLM2
tokenizer (tests/fakes.py). The rooms behind it have their own files (test_page_*.py).

Each test is one property of the page: /generate names its parameters; every streamed frame arrives and the final history is
complete; several users at once get their own histories; Stop ends both runs and leaves no thread;
bad settings and a model that cannot load produce a clear message while the app keeps serving; a
follow-up continues each model's own chat; replay shows the recorded canvas; the preset picker sets
both model pickers; a model too big for this machine says why in its picker and its panel; a tiny
DiffusionGemma streams through the page and its History shows tokens revised after acceptance.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client

import app
from fakes import BROKEN, TINY_AR, TINY_DIFFUSION, TINY_GEMMA, diffusion_history, tiny_load, tiny_model
from generation import AUTOREGRESSIVE, DIFFUSION, History, memory, presets, recommended_config
from page import pickers
from page.fragments import esc, stats_html
from page.start import start_preset
from page.session import ar_step_for
from page.settings import ANSWER, BLANKS, ONE_AFTER_THE_OTHER, SAME_SHARE, TOGETHER
from page_server import serve, unmask_threads
from visualize.canvas import render_history
from visualize.export import load_run

# The order of app.py's run outputs in the API (buttons are not part of it).
BANNER, LEGEND, DIFFUSION_VIEW, DIFFUSION_STATS, AR_VIEW, AR_STATS, PROGRESS, REPLAY = range(8)
RUN_FILE = 12


@pytest.fixture(scope="module")
def url():
    demo, address = serve()
    yield address
    demo.close()


@pytest.fixture
def client(url):
    return Client(url, verbose=False)


def settings(gen_length=32, steps=16, block_length=16, algorithm="low_confidence", temperature=0.0, top_p=1.0,
             repetition_penalty=1.0, dry_multiplier=0.0, alg_temp=0.0, threshold=0.0, seed=0, cache="none", task=ANSWER,
             template="", blank_length=4):
    return [gen_length, steps, block_length, algorithm, temperature, top_p, repetition_penalty, dry_multiplier,
            alg_temp, threshold, seed, cache, task, template, blank_length]


def submit(client, prompt="Name three colours.", diffusion=TINY_DIFFUSION, ar=TINY_AR, mode=TOGETHER, **kw):
    return client.submit(prompt, diffusion, ar, mode, *settings(**kw), api_name="/generate")


def final_run(outputs) -> tuple[History, History, dict]:
    path = outputs[-1][RUN_FILE]
    path = path["value"] if isinstance(path, dict) else path  # a DownloadButton update carries its file
    with open(path, encoding="utf-8") as f:
        return load_run(f.read())


def user(text):
    return {"role": "user", "content": text}


def test_generate_shows_named_parameters_to_an_api_client(url):
    # The page's streaming handler is undocumented (callable, out of the docs and the MCP tools): ask for all.
    info = httpx.get(f"{url}gradio_api/info?all_endpoints=True").json()
    names = [p["parameter_name"] for p in info["named_endpoints"]["/generate"]["parameters"]]
    assert names == ["prompt", "diffusion_model", "ar_model", "mode", "gen_length", "steps", "block_length",
                     "algorithm", "temperature", "top_p", "repetition_penalty", "dry_multiplier", "alg_temp",
                     "threshold", "seed", "cache", "task", "template", "blank_length"]


def test_every_streamed_frame_arrives_and_the_final_history_is_complete(client):
    job = submit(client, prompt="Write a haiku.", gen_length=64, steps=32, block_length=32)
    job.result(timeout=120)
    outputs = job.outputs()
    frames = [out[PROGRESS]["frame"] for out in outputs]
    assert frames == list(range(1, len(frames) + 1))  # no frame lost, none out of order
    assert len(frames) >= 3  # live: the start, at least one step frame, the end
    assert outputs[-1][PROGRESS]["state"] == "finished"
    done = [out[PROGRESS].get("diffusion", {}).get("steps", 0) for out in outputs]
    assert done == sorted(done) and done[-1] == 32

    diffusion, ar, run_settings = final_run(outputs)
    prompt_ids = tiny_model(TINY_DIFFUSION).prompt_ids([user("Write a haiku.")])
    assert diffusion.prompt_ids == prompt_ids and ar.prompt_ids == tiny_model(TINY_AR).prompt_ids([user("Write a haiku.")])
    assert len(diffusion.steps) == diffusion.planned_steps == 32
    assert diffusion.mask_id not in diffusion.canvas and not diffusion.stopped
    assert diffusion.settings["gen_length"] == 64 and run_settings["diffusion"]["block_length"] == 32
    assert 1 <= len(ar.steps) <= 64 and ar.settings["max_new_tokens"] == 64
    assert 'class="um-message' not in outputs[-1][DIFFUSION_VIEW]


def test_concurrent_users_get_their_own_histories(url):
    jobs = [(f"Prompt number {i}: tell me about the number {i}.", dict(gen_length=16 * (i + 1), steps=8 * (i + 1),
                                                                         block_length=16 * (i + 1), seed=i))
            for i in range(3)]

    def one(job):
        prompt, kw = job
        handle = submit(Client(url, verbose=False), prompt=prompt, **kw)
        handle.result(timeout=180)
        return prompt, kw, final_run(handle.outputs())

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(one, jobs))
    for prompt, kw, (diffusion, ar, run_settings) in results:
        assert run_settings["prompt"] == prompt
        assert diffusion.prompt_ids == tiny_model(TINY_DIFFUSION).prompt_ids([user(prompt)])
        assert ar.prompt_ids == tiny_model(TINY_AR).prompt_ids([user(prompt)])
        assert diffusion.settings["gen_length"] == kw["gen_length"] == len(diffusion.initial)
        assert diffusion.settings["seed"] == kw["seed"] and len(diffusion.steps) == kw["steps"]
        assert ar.settings["max_new_tokens"] == kw["gen_length"]


def wait_for_steps(job, at_least=1, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outs = job.outputs()
        if outs and outs[-1][PROGRESS].get("diffusion", {}).get("steps", 0) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the run never started stepping")


def stop_one_run(client):
    job = submit(client, gen_length=512, steps=512, block_length=512, mode=TOGETHER)
    wait_for_steps(job)
    client.predict(api_name="/stop")
    client.predict(api_name="/stop")  # a second press is harmless
    job.result(timeout=60)
    last = job.outputs()[-1][PROGRESS]
    assert last["state"] == "stopped"
    assert last["diffusion"]["status"] == "stopped" and last["diffusion"]["steps"] < 512
    assert last["autoregressive"]["status"] in ("stopped", "done")


def test_stop_ends_both_runs_and_repeated_stop_leaks_no_thread(client):
    stop_one_run(client)  # warm up
    before = own_threads()
    for _ in range(3):
        stop_one_run(client)
    assert unmask_threads() == []
    after = own_threads()
    assert len(after) <= len(before), [t.name for t in after if t not in before]


def own_threads() -> list[threading.Thread]:
    """Live threads less the workers of executor pools, which grow to their bounded size on their own
    schedule (under load a pool may add a worker after the warm-up): a leak is a thread outside them."""
    return [t for t in threading.enumerate() if not t.name.startswith("ThreadPoolExecutor")]


def test_infilling_shows_given_text_in_its_own_style_and_says_why_ar_only_continues(client):
    job = submit(client, prompt="Tell me about <France>.", task=BLANKS, template="A <b>capital</b> is ___, it has ___2.")
    job.result(timeout=120)
    last = job.outputs()[-1]
    assert last[PROGRESS]["state"] == "finished" and "um-fixed" in last[DIFFUSION_VIEW]
    assert "&lt;" in last[DIFFUSION_VIEW] and "<b>" not in last[DIFFUSION_VIEW]  # given text is escaped
    assert "cannot fill one" in last[AR_VIEW] and "um-fixed" in last[AR_VIEW]
    assert "given (fixed)" in last[LEGEND]
    diffusion, ar, run_settings = final_run(job.outputs())
    assert diffusion.fixed and diffusion.mask_id not in diffusion.canvas and run_settings["task"] == BLANKS
    bad = submit(client, task=BLANKS, template="no blank at all")
    bad.result(timeout=60)
    assert "has no blank" in bad.outputs()[-1][BANNER] and bad.outputs()[-1][PROGRESS]["state"] == "bad-settings"
    too_long = submit(client, gen_length=16, steps=8, task=BLANKS, template="a ___40")
    too_long.result(timeout=60)
    assert "longer than the whole answer canvas" in too_long.outputs()[-1][DIFFUSION_VIEW]


def test_bad_settings_show_a_message_and_the_app_keeps_serving(client):
    job = submit(client, gen_length=64, steps=32, block_length=24)
    job.result(timeout=60)
    last = job.outputs()[-1]
    assert last[PROGRESS]["state"] == "bad-settings"
    assert "block_length 24 must divide gen_length 64" in last[BANNER]
    assert 'role="alert"' in last[BANNER]
    empty = submit(client, prompt="   ")
    empty.result(timeout=60)
    assert "prompt is empty" in empty.outputs()[-1][BANNER]
    good = submit(client, gen_length=16, steps=8, block_length=16)
    good.result(timeout=60)
    assert good.outputs()[-1][PROGRESS]["state"] == "finished"


def test_a_model_that_cannot_load_says_why_and_the_other_panel_works(client):
    job = submit(client, diffusion=BROKEN, gen_length=16, steps=8, block_length=16)
    job.result(timeout=60)
    last = job.outputs()[-1]
    assert last[PROGRESS]["diffusion"]["status"] == "error"
    assert "weights are missing" in last[DIFFUSION_VIEW] and "make broken" in last[DIFFUSION_VIEW]
    assert "The other panel still works" in last[DIFFUSION_VIEW]
    assert last[PROGRESS]["autoregressive"]["status"] == "done" and last[PROGRESS]["autoregressive"]["steps"] > 0
    diffusion, ar, _ = final_run(job.outputs())
    assert diffusion is None and ar is not None and len(ar.steps) > 0


def test_a_wrong_kind_of_model_is_refused_in_its_panel(client):
    job = submit(client, diffusion=TINY_AR, gen_length=16, steps=8, block_length=16)
    job.result(timeout=60)
    last = job.outputs()[-1]
    assert "is an autoregressive model" in last[DIFFUSION_VIEW]
    assert last[PROGRESS]["autoregressive"]["status"] == "done"


def test_one_after_the_other_runs_diffusion_first_and_says_so(client):
    job = submit(client, mode=ONE_AFTER_THE_OTHER, gen_length=32, steps=16, block_length=16)
    job.result(timeout=60)
    outputs = job.outputs()
    assert "one after the other" in outputs[-1][BANNER]
    for out in outputs:  # the AR model never streams while the diffusion model is still stepping
        progress = out[PROGRESS]
        if progress.get("diffusion", {}).get("status") == "running":
            assert progress["autoregressive"]["steps"] == 0
    assert outputs[-1][PROGRESS]["autoregressive"]["steps"] > 0


def test_a_follow_up_continues_each_model_in_its_own_chat_and_clear_starts_over(client):
    first = submit(client, prompt="Say hello.", gen_length=16, steps=8, block_length=16)
    first.result(timeout=60)
    d1, a1, _ = final_run(first.outputs())
    second = submit(client, prompt="And goodbye?", gen_length=16, steps=8, block_length=16)
    second.result(timeout=60)
    d2, a2, _ = final_run(second.outputs())
    tokenizer = tiny_model(TINY_DIFFUSION).tokenizer
    d_answer = tokenizer.decode(d1.answer_ids(), skip_special_tokens=True).strip()
    a_answer = tokenizer.decode(a1.answer_ids(), skip_special_tokens=True).strip()
    assert d2.prompt_ids == tiny_model(TINY_DIFFUSION).prompt_ids(
        [user("Say hello."), {"role": "assistant", "content": d_answer}, user("And goodbye?")])
    assert a2.prompt_ids == tiny_model(TINY_AR).prompt_ids(
        [user("Say hello."), {"role": "assistant", "content": a_answer}, user("And goodbye?")])
    assert "Earlier turns (1)" in second.outputs()[-1][DIFFUSION_VIEW]

    client.predict(api_name="/clear")
    third = submit(client, prompt="And goodbye?", gen_length=16, steps=8, block_length=16)
    third.result(timeout=60)
    d3, _, _ = final_run(third.outputs())
    assert d3.prompt_ids == tiny_model(TINY_DIFFUSION).prompt_ids([user("And goodbye?")])


def test_replay_shows_the_canvas_as_it_was_at_each_step(client):
    job = submit(client, gen_length=32, steps=16, block_length=16)
    job.result(timeout=60)
    diffusion, ar, _ = final_run(job.outputs())
    tokenizer = tiny_model(TINY_DIFFUSION).tokenizer
    shown = {}
    for step in (0, 5, 16):
        d_html, a_html, d_stats, _ = client.predict(step, SAME_SHARE, api_name="/replay")
        assert render_history(diffusion, tokenizer, step=step) in d_html
        ar_step = ar_step_for(diffusion, ar, step, SAME_SHARE)
        assert render_history(ar, tokenizer, step=ar_step) in a_html
        assert f"{step} / 16" in d_stats
        shown[step] = d_html
    assert len(set(shown.values())) == 3


@pytest.mark.slow
def test_the_real_smollm2_streams_a_readable_answer():
    """The shipped AR model beside the tiny diffusion one: real words arrive token by token."""
    from generation import load_model
    from generation.presets import AR_SMOLLM2

    def load(name):
        return load_model(name, device="cpu") if name == AR_SMOLLM2 else tiny_model(name)

    demo, address = serve(load=load, ar=AR_SMOLLM2)
    try:
        job = submit(Client(address, verbose=False), prompt="What is the capital of France?", ar=AR_SMOLLM2,
                     gen_length=32, steps=16, block_length=16)
        job.result(timeout=300)
        _, ar, _ = final_run(job.outputs())
        text = load_model(AR_SMOLLM2, device="cpu").tokenizer.decode(ar.answer_ids(), skip_special_tokens=True)
        assert "Paris" in text
        assert "Paris" in job.outputs()[-1][AR_VIEW]
    finally:
        demo.close()


def test_exports_are_a_run_file_an_html_animation_and_a_gif(client):
    job = submit(client, gen_length=16, steps=8, block_length=16)
    job.result(timeout=60)
    last = job.outputs()[-1]
    animation = last[RUN_FILE + 1]
    animation = animation["value"] if isinstance(animation, dict) else animation
    with open(animation, encoding="utf-8") as f:
        page = f.read()
    assert page.lstrip().lower().startswith("<!doctype html") and "um-legend" in page
    gif = client.predict(api_name="/gif")
    gif = gif["value"] if isinstance(gif, dict) else gif
    with open(gif, "rb") as f:
        assert f.read(6) in (b"GIF89a", b"GIF87a")


# ---- presets, what runs here, DiffusionGemma


def component(demo, elem_id):
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_the_stats_show_the_work_and_what_the_cache_saved(client):
    runs = {}
    for cache in ("none", "dual"):
        job = submit(client, gen_length=32, steps=16, block_length=16, cache=cache)
        job.result(timeout=120)
        runs[cache] = (job.outputs()[-1][DIFFUSION_STATS], final_run(job.outputs())[0])
    for stats, history in runs.values():
        assert f"{history.computed_positions:,}" in stats and "positions computed" in stats
        assert f"{history.tokens_per_forward():.2f}" in stats and "tokens/forward" in stats
        assert f"{100 * history.out_of_order():.0f}%</span><span class=\"um-stat-label\">out of order" in stats
        assert f"{history.revisions()}</span><span class=\"um-stat-label\">revisions" in stats
    plain, dual = runs["none"][1], runs["dual"][1]
    assert dual.cache == "dual" and dual.computed_positions < plain.computed_positions
    assert "less work" not in runs["none"][0]
    assert f"{dual.work_saved():.1f}×" in runs["dual"][0] and "less work (dual cache)" in runs["dual"][0]


def test_the_diffusion_stats_say_how_the_canvas_filled():
    """Step 1 writes the last of three blanks, step 2 the first two and revises the last: 1 of 3 tokens out of order,
    1 revision; the AR panel has neither figure (it writes left to right and never revises)."""
    history = diffusion_history(3, [[(2, 7, 0.5)], [(0, 5, 0.5), (1, 6, 0.5), (2, 8, 0.5)]])
    stats = stats_html(history, "done", DIFFUSION)
    assert '33%</span><span class="um-stat-label">out of order' in stats
    assert '1</span><span class="um-stat-label">revisions' in stats
    assert "out of order" not in stats_html(None, "waiting", AUTOREGRESSIVE)


def test_the_diffusion_panel_title_says_how_the_chosen_decoder_fills_the_canvas():
    """Any order for the unmasking decoders and verified diffusion; left to right for speculative decoding, which the
    algorithm picker switches to (its change event rewrites the title)."""
    demo = app.build_demo(load=tiny_load, diffusion_model=presets.DIFFUSION_SMOLLM2, ar_model=TINY_AR)
    assert "fills blanks in any order" in component(demo, "um-diffusion-title").value
    handler = next(fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "diffusion_title_html")
    assert [block.elem_id for block in handler.inputs] == ["um-algorithm"]
    assert [block.elem_id for block in handler.outputs] == ["um-diffusion-title"]
    assert "left to right" in handler.fn("speculative") and "any order" in handler.fn("verified")


def recommend_handler(demo):
    return next(fn.fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "recommend")


def test_the_page_starts_with_the_models_recommended_settings_and_reapplies_them_on_a_model_change():
    demo = app.build_demo(load=tiny_load, diffusion_model=presets.DIFFUSION_SMOLLM2, ar_model=TINY_AR)
    start = recommended_config(presets.DIFFUSION_SMOLLM2, 64)
    assert component(demo, "um-cache").value == start.cache == "dual"
    assert component(demo, "um-steps").value == start.steps and component(demo, "um-gen-length").value == 64
    assert component(demo, "um-block-length").value == start.block_length
    assert "exact for block-causal" in component(demo, "um-cache").info
    # A new diffusion model (picked, or set by a preset) brings its own; the answer length stays the user's.
    other = recommended_config(TINY_DIFFUSION, 48)
    assert recommend_handler(demo)(TINY_DIFFUSION, 48) == (48, other.block_length, other.algorithm, 0.0, "none")
    assert recommend_handler(demo)(presets.DIFFUSION_SMOLLM2, 48)[-1] == "dual"


def test_the_preset_picker_sets_both_model_pickers(client):
    dream = next(p for p in presets.presets() if p.diffusion == presets.DREAM_INSTRUCT)
    diffusion, ar, note = client.predict(dream.label, api_name="/preset")
    assert (diffusion, ar) == (presets.DREAM_INSTRUCT, presets.QWEN25_7B_INSTRUCT)
    assert dream.why in note
    embedded = next(p for p in presets.presets() if not p.large)
    assert client.predict(embedded.label, api_name="/preset")[:2] == (embedded.diffusion, embedded.autoregressive)


def test_the_pickers_start_on_the_start_preset_and_say_why(monkeypatch):
    for profile in ("local", "space"):
        monkeypatch.setenv(presets.PROFILE_ENV, profile)
        demo = app.build_demo(load=tiny_load)
        start = start_preset()
        assert component(demo, "um-preset").value == start.preset.label
        assert component(demo, "um-diffusion-model").value == start.preset.diffusion
        assert component(demo, "um-ar-model").value == start.preset.autoregressive
        assert esc(start.reason) in component(demo, "um-start").value


@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 8 GiB free: the 7B+ models cannot run, the SmolLM2 pair can."""
    monkeypatch.setattr(memory, "free_memory", lambda device: 8 * 2**30)
    pickers.verdict.cache_clear()
    yield
    pickers.verdict.cache_clear()


def test_a_model_that_cannot_run_here_says_why_in_its_picker_and_its_panel(client, small_machine):
    demo = app.build_demo(load=tiny_load)
    labels = dict((name, label) for label, name in component(demo, "um-diffusion-model").choices)
    assert re.search(r"cannot run here: needs ~\d+\.\d GiB, 8\.0 GiB (RAM|GPU) free", labels[presets.DREAM_INSTRUCT])
    assert labels["smollm2-135m-diffusion"] == "smollm2-135m-diffusion"
    note = pickers.picker_note(presets.DREAM_INSTRUCT, presets.QWEN25_7B_INSTRUCT)
    assert "Dream-org/Dream-v0-Instruct-7B cannot run here" in note and "8.0 GiB" in note

    job = submit(client, diffusion=presets.DREAM_INSTRUCT, gen_length=16, steps=8, block_length=16)
    job.result(timeout=60)
    last = job.outputs()[-1]
    assert last[PROGRESS]["diffusion"]["status"] == "error"
    assert "Dream-v0-Instruct-7B 7.6B params" in last[DIFFUSION_VIEW] and "8.0 GiB" in last[DIFFUSION_VIEW]
    assert last[PROGRESS]["autoregressive"]["status"] == "done"


def test_a_tiny_diffusion_gemma_streams_through_the_page_and_revises_accepted_tokens(client):
    job = submit(client, diffusion=TINY_GEMMA, mode=ONE_AFTER_THE_OTHER, gen_length=16, steps=16,
                 block_length=16, temperature=0.5, cache="dual")
    job.result(timeout=120)
    outputs = job.outputs()
    last = outputs[-1]
    assert last[PROGRESS]["state"] == "finished" and last[PROGRESS]["diffusion"]["status"] == "done"
    assert all(out[PROGRESS]["diffusion"]["planned_steps"] is None for out in outputs if "diffusion" in out[PROGRESS])
    assert not re.search(r"\d+ / \d+", last[DIFFUSION_STATS])  # progress without a planned total
    assert "Ignored this run: block length 16, temperature 0.5, cache dual" in last[DIFFUSION_VIEW]

    diffusion, ar, run_settings = final_run(outputs)
    assert diffusion.planned_steps is None and diffusion.settings["temperature"] == 0.0
    assert diffusion.cache == "none" and "less work" not in last[DIFFUSION_STATS]
    assert run_settings["diffusion"]["block_length"] is None and ar.settings["temperature"] == 0.5
    revised = [p for p, (changed, accepted) in enumerate(zip(diffusion.last_changed, diffusion.first_committed))
               if accepted is not None and changed > accepted]
    assert revised, "DiffusionGemma changes accepted tokens; the page's History must show it"


