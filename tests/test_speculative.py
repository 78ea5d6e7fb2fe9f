"""generation/speculative.py: self-speculative decoding of block-causal models, on tiny random models:
the greedy decode of the causal path token for token, the verifier's draws distributed as that path
(lossless), the one-forward layout and its mask, and what the History records."""

import threading
from collections import Counter

import pytest
import torch

from fakes import TINY_EOS_ID, TINY_MASK_ID, TINY_VOCAB, tiny_block_causal_lm, tiny_diffusion_lm
from generation import ConfigError, DiffusionConfig, diffuse, stream_diffusion
from generation.infill import Infill
from generation.speculative import Layout, _propose, _verify

PROMPT = [5, 17, 33, 2, 41, 8]


def speculative(**overrides) -> DiffusionConfig:
    return DiffusionConfig(**{"gen_length": 16, "block_length": 4, "algorithm": "speculative", "cache": "prefix",
                              **overrides})


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("draft", [2, 4, 8])
def test_greedy_is_the_causal_paths_greedy_decode(seed, draft):
    lm = tiny_block_causal_lm(seed, stop_ids=())
    ours = diffuse(lm, PROMPT, speculative(block_length=draft))
    left_to_right = diffuse(lm, PROMPT, DiffusionConfig(gen_length=16, steps=16, block_length=1, cache="prefix"))
    assert ours.canvas == left_to_right.canvas


def test_a_draw_is_distributed_as_the_causal_path_whatever_the_proposal():
    """Speculative sampling is lossless: a draft d drawn from q, kept with min(1, p(d) / q(d)), else a draw from
    max(p - q, 0) -> p, for a point-mass q (one fixed draft) and a drafter's spread q alike; the spread q close
    to p is kept with probability sum(min(p, q)), more than p's likeliest token alone would be."""
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    p = torch.softmax(logits[0].double(), dim=-1)
    config = DiffusionConfig(temperature=1.0)
    n = 20000
    for name, proposal in (("point mass on 0", [6.0, -30, -30, -30, -30]), ("point mass on 3", [-30, -30, -30, 6.0, -30]),
                           ("spread", [1.5, 1.5, 0.0, 0.5, -2.0])):
        generator = torch.Generator().manual_seed(0)
        counts, kept = Counter(), 0
        for _ in range(n):
            drafts, q = _propose(torch.tensor([proposal]), config, generator)
            tokens, _, accepted = _verify(logits, drafts, q, 1, config, generator)
            counts[tokens[0]] += 1
            kept += accepted
        for token in range(5):
            share, expected = counts[token] / n, float(p[token])
            assert abs(share - expected) < 4 * (expected * (1 - expected) / n) ** 0.5 + 1e-9, (name, token)
        if name == "spread":
            expected = float(torch.minimum(p, q[0]).sum())
            assert abs(kept / n - expected) < 4 * (expected * (1 - expected) / n) ** 0.5
            assert expected > float(p.max())


def test_drafts_are_the_drafters_argmax_at_temperature_zero():
    drafts, proposals = _propose(torch.tensor([[0.1, 3.0, 0.2], [2.0, 0.0, 1.0]]), DiffusionConfig(temperature=0),
                                 torch.Generator().manual_seed(0))
    assert drafts == [1, 0] and proposals.numel() == 0


def test_verify_accepts_a_prefix_then_draws_one():
    certain = torch.full((3, 6), -30.0)
    certain[0, 4] = certain[1, 1] = certain[2, 5] = 30.0  # rows predict 4, then 1, then 5
    config = DiffusionConfig(temperature=1.0)
    generator = torch.Generator().manual_seed(0)

    def point_masses(drafts):
        return torch.nn.functional.one_hot(torch.tensor(drafts), 6).double()

    assert _verify(certain, [4, 1], point_masses([4, 1]), 5, config, generator)[::2] == ([4, 1, 5], 2)
    assert _verify(certain, [4, 2], point_masses([4, 2]), 5, config, generator)[::2] == ([4, 1], 1)  # 2 rejected, 1 drawn
    assert _verify(certain, [4, 1], point_masses([4, 1]), 2, config, generator)[::2] == ([4, 1], 2)  # no room to draw


def test_layout_worked_example():
    layout = Layout(cached=0, fed=3, k=2, block=2, end=9)
    assert layout.positions.tolist() == [0, 1, 2, 2, 3, 3, 4]
    allowed = layout.mask.int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0, 0],  # clean: causal
        [1, 1, 0, 0, 0, 0, 0],  # t0
        [1, 1, 1, 0, 0, 0, 0],  # the draft
        [1, 1, 0, 1, 1, 0, 0],  # block anchored at t0: the clean tokens through t0, and itself
        [1, 1, 0, 1, 1, 0, 0],
        [1, 1, 1, 0, 0, 1, 1],  # block anchored at the draft
        [1, 1, 1, 0, 0, 1, 1],
    ]
    assert layout.causal_rows == [1, 2] and layout.block_rows == [[3], [5]]


def test_layout_cuts_blocks_at_the_canvas_end_and_sees_the_cache():
    layout = Layout(cached=10, fed=3, k=3, block=4, end=14)  # t0 at 10, drafts at 11, 12; last position 13
    assert layout.positions.tolist() == [10, 11, 12, 11, 12, 13, 12, 13, 13]
    assert layout.mask[:, :10].all() and layout.causal_rows == [0, 1, 2] and layout.block_rows == [[3, 4], [6], []]
    assert layout.draft_rows == [3, 4, 6] and [layout.draft_rows[s] for s in layout.drafts_of] == layout.block_rows


def test_history_commits_left_to_right_one_forward_per_step():
    history = diffuse(tiny_block_causal_lm(3, stop_ids=()), PROMPT, speculative(temperature=1.0, seed=4))
    positions = [p for step in history.steps for p in step.positions]
    assert positions == list(range(16)) and TINY_MASK_ID not in history.canvas
    assert [step.forward_passes for step in history.steps] == list(range(1, len(history.steps) + 1))
    assert all(0 < score <= 1 for step in history.steps for score in step.scores)
    assert history.planned_steps is None and history.settings["algorithm"] == "speculative"


def test_the_answer_ends_at_the_first_stop():
    free = diffuse(tiny_block_causal_lm(4, stop_ids=()), PROMPT, speculative())
    stop = free.canvas[5]
    history = diffuse(tiny_block_causal_lm(4, stop_ids=(stop,)), PROMPT, speculative())
    end = free.canvas.index(stop)
    assert history.canvas[:end + 1] == free.canvas[:end + 1]
    assert set(history.canvas[end + 1:]) == {TINY_MASK_ID}


def test_same_seed_same_output_and_streaming_equals_collected():
    lm = tiny_block_causal_lm(5, stop_ids=())
    config = speculative(temperature=1.0, top_p=0.9, seed=3)
    streamed = [h.canvas for h in stream_diffusion(lm, PROMPT, config)]
    collected = diffuse(lm, PROMPT, config)
    assert streamed == [collected.canvas_at(k) for k in range(1, len(collected.steps) + 1)]
    assert diffuse(lm, PROMPT, config).canvas == collected.canvas


def test_a_stop_signal_ends_the_run():
    stop = threading.Event()
    stop.set()
    history = diffuse(tiny_block_causal_lm(6, stop_ids=()), PROMPT, speculative(), stop=stop)
    assert history.stopped and not history.steps


@pytest.mark.parametrize("settings,message", [
    (dict(threshold=0.9), "takes no threshold"),
    (dict(cache="none"), "cache='prefix'"),
])
def test_settings_it_cannot_take_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        speculative(**settings)


def test_models_and_tasks_it_cannot_take_are_refused():
    with pytest.raises(ConfigError, match="block-causal"):
        diffuse(tiny_diffusion_lm(1, shift_logits=True), PROMPT, speculative())
    with pytest.raises(ConfigError, match="cannot keep given tokens"):
        diffuse(tiny_block_causal_lm(1, stop_ids=()), PROMPT, speculative(),
                infill=Infill([TINY_MASK_ID] * 15 + [TINY_EOS_ID], [15]))


@torch.no_grad()
def test_the_draft_bench_measures_the_blind_marginal_exactly_on_a_small_vocabulary():
    """bench/drafts.py: with every r summed, its ceiling is the exact blind marginal's max (by uncached forwards),
    no point-mass drafter beats it, its drafter is the block that speculative decoding lays out, and a draft
    drawn from that block's q_T is kept with E_r sum_y min(p_T(y | r), q_T(y))."""
    from bench.drafts import _first_draft_distribution, draft_quality
    from generation.sampling import new_cache

    model, prompt, answer, t = tiny_block_causal_lm(seed=1), [5, 6, 7, 8], [9, 10, 11, 12, 13, 14], 0.7
    rows = draft_quality(model, prompt, answer, t, draft=4, stride=2, top=TINY_VOCAB)
    seq, module = prompt + answer, model.module
    for k, anchor in enumerate(range(len(prompt) - 1, len(seq) - 2, 2)):
        p_r = torch.softmax(model.suppress(module(torch.tensor([seq[:anchor + 1]])).logits[0, -1]) / t, -1)
        after = module(torch.tensor([seq[:anchor + 1] + [r] for r in range(TINY_VOCAB)])).logits[:, -1]
        after = torch.softmax(model.suppress(after) / t, -1)
        marginal = (p_r[:, None] * after).sum(0)
        assert rows[k]["ceiling"] == pytest.approx(float(marginal.max()), abs=1e-5)
        assert rows[k]["drafter"] <= rows[k]["ceiling"] + 1e-6 and rows[k]["kl"] >= -1e-6
        layout = Layout(0, anchor + 1, 1, 4, 100)  # the same block, uncached
        ids = torch.tensor([seq[:anchor + 1] + [TINY_MASK_ID] * (len(layout.positions) - anchor - 1)])
        hidden = module.get_decoder()(ids, position_ids=layout.positions[None],
                                      attention_mask=layout.mask[None, None]).last_hidden_state[0]
        expected = torch.softmax(model.suppress(module.lm_head(hidden[layout.block_rows[0][0]])), -1)
        full = new_cache(model)
        module(torch.tensor([seq]), past_key_values=full, use_cache=True)
        assert torch.allclose(_first_draft_distribution(model, full, seq, anchor, 4), expected, atol=1e-5)
        drawn_from = torch.softmax(model.suppress(module.lm_head(hidden[layout.block_rows[0][0]])) / t, -1)
        kept = (p_r[:, None] * torch.minimum(after, drawn_from[None])).sum()  # E_r sum_y min(p(y | r), q_T(y))
        assert rows[k]["drawn"] == pytest.approx(float(kept), abs=1e-5)
        assert rows[k]["ceiling_drawn"] == pytest.approx(float((p_r[:, None] * torch.minimum(after, marginal)).sum()),
                                                         abs=1e-5)
