"""generation/diffusion_gemma.py: DiffusionGemma through its own generate loop, on a tiny random
checkpoint in its published format, loaded by the real loader (`load_model(path)`)."""

import threading

import pytest
import torch

from generation import ConfigError, DiffusionConfig, diffuse, load_model, runs_own_loop, stream_diffusion
from generation.diffusion_gemma import BlockDiffusionLM, applicable_config
from tiny_hub_checkpoints import GEMMA_TINY_EOS_ID

MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def gemma(hub_checkpoints):
    return load_model(str(hub_checkpoints["gemma"]), device="cpu", dtype=torch.float32)  # exact comparisons


def test_diffusion_gemma_loads_as_a_block_diffusion_model(gemma):
    assert isinstance(gemma, BlockDiffusionLM) and gemma.canvas_length == 8
    assert runs_own_loop(gemma)  # so stream_diffusion hands it the run
    assert GEMMA_TINY_EOS_ID in gemma.stop_ids


def test_diffusion_gemma_history_records_exactly_what_generate_returns(gemma):
    prompt = gemma.prompt_ids(MESSAGES)
    history = diffuse(gemma, prompt, DiffusionConfig(gen_length=16, steps=12, seed=3))
    torch.manual_seed(3)
    with torch.no_grad():
        out = gemma.module.generate(torch.tensor([prompt]), max_new_tokens=16, max_denoising_steps=6,
                                    eos_token_id=list(gemma.stop_ids))
    answer = out.sequences[0, len(prompt):].tolist()
    assert len(answer) > 0 and len(history.canvas) >= len(answer)
    assert history.canvas[: len(answer)] == answer


def test_diffusion_gemma_streams_revisions_after_acceptance(gemma):
    steps = []
    for history in stream_diffusion(gemma, gemma.prompt_ids(MESSAGES), DiffusionConfig(gen_length=16, steps=16)):
        steps.append(history.canvas)
    assert len(steps) == len(history.steps) > 2
    assert history.planned_steps is None
    revised = [p for p, (last, first) in enumerate(zip(history.last_changed, history.first_committed))
               if first is not None and last > first]
    assert revised, "DiffusionGemma changes accepted tokens; the History must show it"


def test_diffusion_gemma_stop_ends_the_generate_thread(gemma):
    stop = threading.Event()
    stream = stream_diffusion(gemma, gemma.prompt_ids(MESSAGES), DiffusionConfig(gen_length=16, steps=16), stop)
    history = next(stream)
    stop.set()
    for history in stream:
        pass
    assert history.stopped and len(history.steps) < 16
    assert not any(t.name == "unmask-diffusion-gemma" for t in threading.enumerate())


def test_diffusion_gemma_refuses_settings_it_cannot_take(gemma):
    config = DiffusionConfig(gen_length=16, steps=8, algorithm="maskgit_plus", temperature=0.5)
    with pytest.raises(ConfigError, match="algorithm, temperature"):
        diffuse(gemma, gemma.prompt_ids(MESSAGES), config)
    assert applicable_config(config) == (DiffusionConfig(gen_length=16, steps=8), ("algorithm", "temperature"))
    assert gemma.applicable_config(config) == applicable_config(config)
    assert gemma.applicable_settings == ("gen_length", "steps", "seed")
