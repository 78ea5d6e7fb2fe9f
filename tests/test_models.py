"""generation/models.py: the wrappers the samplers see, and the capability a model declares."""

from generation import runs_own_loop
from generation.diffusion_gemma import BlockDiffusionLM
from generation.models import DiffusionLM, chat_prompt_ids


def test_only_a_model_that_declares_it_runs_its_own_loop():
    assert BlockDiffusionLM.runs_own_loop and not DiffusionLM.runs_own_loop
    assert not runs_own_loop(object())


def test_chat_prompt_ids_without_template_joins_contents():
    class Plain:
        chat_template = None

        def __call__(self, text, add_special_tokens=True):
            class Encoding:
                input_ids = [ord(c) for c in text]
            return Encoding()

    assert chat_prompt_ids(Plain(), [{"role": "user", "content": "ab"}]) == [97, 98]
