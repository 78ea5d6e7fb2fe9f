"""generation/models.py: the wrappers the samplers see, and the capability a model declares."""

import pytest

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


def test_masked_forwards_on_cpu_run_grouped_query_attention_without_copying_heads(monkeypatch):
    """A wrapped sdpa model takes the samplers' 4D masks with torch's grouped-query kernel: the same logits as
    transformers' sdpa (which copies each key/value head first), and no copy made."""
    import torch
    import transformers.integrations.sdpa_attention as sdpa

    from generation.models import SDPA_SHARED_MASK
    from generation.models import new_cache
    from tests.fakes import TINY_MASK_ID, tiny_llama

    plain = tiny_llama(3)
    assert plain.config.num_key_value_heads < plain.config.num_attention_heads
    lm = DiffusionLM(tiny_llama(3), mask_id=TINY_MASK_ID, shift_logits=True)
    assert lm.module.config._attn_implementation == SDPA_SHARED_MASK
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(TINY_MASK_ID, (1, 12), generator=generator)
    mask = torch.rand(1, 1, 5, 12, generator=generator) < 0.6
    mask[..., :7] = True  # the prompt, cached below, is visible to every row

    def logits(module):
        cache = new_cache(lm)
        module(ids[:, :7], past_key_values=cache, use_cache=True)
        return module(ids[:, 7:], position_ids=torch.arange(7, 12)[None], past_key_values=cache,
                      attention_mask=mask, use_cache=True).logits

    expected = logits(plain)
    monkeypatch.setattr(sdpa, "repeat_kv", lambda *args: pytest.fail("key/value heads copied"))
    torch.testing.assert_close(logits(lm.module), expected)
