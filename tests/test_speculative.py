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
from generation.models import new_cache
from generation.bigrams import Bigrams
from generation.sampling import Penalties
from generation.speculative import Layout, Tree, _verify, stream_speculative

PROMPT = [5, 17, 33, 2, 41, 8]


def speculative(**overrides) -> DiffusionConfig:
    return DiffusionConfig(**{"gen_length": 16, "block_length": 4, "algorithm": "speculative", "cache": "prefix",
                              **overrides})


def last(stream):
    for history in stream:
        pass
    return history


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("draft", [2, 3, 4, 8])
@pytest.mark.parametrize("penalty", [1.0, 1.5])
def test_greedy_is_the_causal_paths_greedy_decode(seed, draft, penalty):
    """Token for token the left-to-right loop's answer (which penalises the prompt and the answer so far)."""
    lm = tiny_block_causal_lm(seed, stop_ids=())
    left_to_right = diffuse(lm, PROMPT, DiffusionConfig(gen_length=16, steps=16, block_length=1, cache="prefix",
                                                        repetition_penalty=penalty))
    config = speculative(block_length=draft, repetition_penalty=penalty)
    assert diffuse(lm, PROMPT, config).canvas == left_to_right.canvas
    for candidates in (1, 2, 5):
        assert last(stream_speculative(lm, PROMPT, config, candidates=candidates)).canvas == left_to_right.canvas
    lm.bigrams = Bigrams.counted(torch.randint(TINY_VOCAB, (20, 30), generator=torch.Generator().manual_seed(seed))
                                 .tolist(), TINY_VOCAB)
    assert diffuse(lm, PROMPT, config).canvas == left_to_right.canvas


def test_more_candidates_commit_more_tokens_per_forward():
    lm = tiny_block_causal_lm(2, stop_ids=())
    config = speculative(gen_length=48, block_length=2, temperature=1.0)
    one, several = (last(stream_speculative(lm, PROMPT, config, candidates=k)) for k in (1, 8))
    assert several.tokens_per_forward() > one.tokens_per_forward()


def test_the_walk_is_distributed_as_the_causal_path_whatever_the_tree():
    """Each committed token is a draw from the causal row of the node before it, whatever the drafts: the first
    follows t0's row, a draft is kept exactly when the draw carries it (so a set S of first drafts is kept with
    probability p(S)), and the token after a kept draft follows that draft's own row."""
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0], [-1.0, 0.0, 3.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0],
                           [1.0, -1.0, 0.0, 2.0, 0.0]])  # the token after t0, then after each node
    p = torch.softmax(logits.double(), dim=-1)
    config, n = DiffusionConfig(temperature=1.0), 20000

    def close(share, expected):
        return abs(share - expected) < 4 * (expected * (1 - expected) / n) ** 0.5 + 1e-9

    for tree in (Tree(), Tree([0], [0]), Tree([3, 1], [0, 0]), Tree([1, 4, 3], [0, 1, 0])):
        generator = torch.Generator().manual_seed(0)
        firsts, after_first_draft = Counter(), Counter()
        for _ in range(n):
            tokens, _, _, node = _verify(logits, tree, 5, config, generator, [], Penalties())
            firsts[tokens[0]] += 1
            kept_drafts = [tree.tokens[i - 1] for i in tree.path(node)]
            assert len(tokens) == len(kept_drafts) + 1 and tokens[:-1] == kept_drafts
            if tree.tokens and tokens[0] == tree.tokens[0]:
                after_first_draft[tokens[1]] += 1
        assert all(close(firsts[t] / n, float(p[0, t])) for t in range(5)), tree.tokens
        total = sum(after_first_draft.values())
        if total:
            assert all(abs(after_first_draft[t] / total - float(p[1, t])) < 0.03 for t in range(5)), tree.tokens


def test_the_walk_follows_the_drawn_branch_until_no_child_carries_the_draw():
    certain = torch.full((5, 6), -30.0)
    certain[0, 4] = certain[1, 5] = certain[2, 5] = certain[3, 1] = certain[4, 3] = 30.0  # the token after node n
    config = DiffusionConfig(temperature=1.0)
    generator = torch.Generator().manual_seed(0)
    chain = Tree([2, 0, 4, 1], [0, 1, 0, 3])  # t0 -> 2 -> 0 and t0 -> 4 -> 1
    tokens, scores, likeliest, node = _verify(certain, chain, 9, config, generator, [], Penalties())
    assert (tokens, scores, node) == ([4, 1, 3], [1.0, 1.0, 1.0], 4)  # 4, 1 kept; 3 drawn
    assert [top[0] for top in likeliest] == [[4, 1.0], [1, 1.0], [3, 1.0]]  # what else each could have been
    assert _verify(certain, chain, 2, config, generator, [], Penalties())[0] == [4, 1]  # no room to draw after them
    assert _verify(certain, Tree([3], [0]), 9, config, generator, [], Penalties())[::3] == ([4], 0)  # nothing kept


def test_the_walk_penalises_what_came_before_and_what_it_drew_on_the_way():
    """With a repetition penalty each row is penalised for the tokens seen before t0 and those drawn on the branch
    to it: t0's row [3, 2, ..] with 0 seen picks 1 (3/2 < 2), and the next row [0, 3, 2, ..] picks 2 (1 was drawn)."""
    rows = torch.tensor([[3.0, 2.0, 0.0, 0.0], [0.0, 3.0, 2.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    greedy = DiffusionConfig()
    assert _verify(rows, Tree([1], [0]), 9, greedy, generator, [0], Penalties(repetition=2.0))[0] == [1, 2]
    assert _verify(rows, Tree([1], [0]), 9, greedy, generator, [0], Penalties())[0] == [0]


def test_the_tree_is_the_argmax_chain_with_alternatives_for_the_first_draft():
    rows = torch.zeros(2, 10)
    rows[0, 7], rows[0, 8], rows[0, 4], rows[1, 9] = 5.0, 4.0, 3.0, 5.0
    tree = Tree.drafted(rows, 3, previous=1)
    assert (tree.tokens, tree.parents) == ([7, 9, 8, 4], [0, 1, 0, 0])
    assert tree.path(2) == [1, 2] and tree.child(0, 4) == 4 and tree.child(1, 4) is None
    assert Tree.drafted(rows, 1, 1).tokens == [7, 9] and Tree.drafted(rows[:0], 3, 1).tokens == []
    assert len(Tree.drafted(rows[:1], 50, 1).tokens) == 10  # at most the vocabulary


def test_bigrams_rank_each_draft_given_the_token_before_it():
    """4 followed 1 (the last committed token) often enough to pass 7's lead of 2 logits in the first row; the second
    row is scored given the chain's head 4, which 3 followed (2 followed 7, which would have made it 2 there); then
    the counts alone would add a draft after 3, but nothing followed 3; 2 followed 7 most often."""
    rows = torch.zeros(2, 10)
    rows[0, 7], rows[0, 8], rows[0, 4], rows[1, 9], rows[1, 3] = 5.0, 4.0, 3.0, 5.0, 4.5
    bigrams = Bigrams.counted([[1, 4, 3]] * 3 + [[7, 2]] * 50, vocab_size=10)
    tree = Tree.drafted(rows, 3, previous=1, bigrams=bigrams)
    assert (tree.tokens, tree.parents) == ([4, 3, 7, 8], [0, 1, 0, 0])
    assert Tree.drafted(rows, 3, previous=5, bigrams=bigrams).tokens[0] == 7  # nothing followed 5
    assert Tree.drafted(rows[:1], 1, previous=5, bigrams=bigrams).tokens == [7, 2]  # the drafter's 7, then 7's 2


def test_layout_worked_example():
    layout = Layout(cached=0, fed=2, parents=[0, 0], block=2, end=9)  # two alternatives for the token after t0
    assert layout.positions.tolist() == [0, 1, 2, 2, 2, 3, 3]
    allowed = layout.mask.int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0, 0],  # clean: causal
        [1, 1, 0, 0, 0, 0, 0],  # t0
        [1, 1, 1, 0, 0, 0, 0],  # the first alternative
        [1, 1, 0, 1, 0, 0, 0],  # the second: it does not see the first
        [1, 1, 0, 0, 1, 0, 0],  # the block after t0: the clean tokens through t0, and itself
        [1, 1, 1, 0, 0, 1, 0],  # the block after the first alternative
        [1, 1, 0, 1, 0, 0, 1],  # the block after the second
    ]
    assert layout.causal_rows == [1, 2, 3] and layout.block_rows == [[4], [5], [6]]


def test_layout_cuts_blocks_at_the_canvas_end_and_sees_the_cache():
    layout = Layout(cached=10, fed=1, parents=[0, 1], block=4, end=14)  # t0 at 10, a chain at 11, 12; last position 13
    assert layout.positions.tolist() == [10, 11, 12, 11, 12, 12]
    assert layout.mask[:, :10].all() and layout.causal_rows == [0, 1, 2] and layout.block_rows == [[3, 4], [5], []]
    assert layout.mask[2, 10:].tolist() == [True, True, True, False, False, False]
    assert layout.draft_rows == [3, 4, 5] and [layout.draft_rows[s] for s in layout.drafts_of] == layout.block_rows


@torch.no_grad()
def test_keeping_a_branch_leaves_the_cache_of_that_branch_read_left_to_right():
    lm = tiny_block_causal_lm(1, stop_ids=())
    decoder, tree = lm.module.get_decoder(), Tree([9, 12, 7, 3], [0, 1, 0, 0])
    layout = Layout(0, len(PROMPT), tree.parents, 3, 40)
    ids = PROMPT + tree.tokens + [TINY_MASK_ID] * (len(layout.positions) - len(PROMPT) - len(tree.tokens))
    kv = new_cache(lm)
    decoder(torch.tensor([ids]), position_ids=layout.positions[None], attention_mask=layout.mask[None, None],
            past_key_values=kv, use_cache=True)
    lm.keep_cache_branch(kv, len(PROMPT), [layout.causal_rows[n] for n in tree.path(3)])  # the alternative 7
    expected = new_cache(lm)
    decoder(torch.tensor([PROMPT + [7]]), past_key_values=expected, use_cache=True)
    for ours, theirs in zip(kv.layers, expected.layers):
        assert torch.allclose(ours.keys, theirs.keys, atol=1e-5)
        assert torch.allclose(ours.values, theirs.values, atol=1e-5)


def test_history_commits_left_to_right_one_forward_per_step():
    history = diffuse(tiny_block_causal_lm(3, stop_ids=()), PROMPT, speculative(temperature=1.0, seed=4))
    positions = [p for step in history.steps for p in step.positions]
    assert positions == list(range(16)) and TINY_MASK_ID not in history.canvas
    assert [step.forward_passes for step in history.steps] == list(range(1, len(history.steps) + 1))
    assert all(0 < score <= 1 for step in history.steps for score in step.scores)
    assert history.planned_steps is None and history.settings["algorithm"] == "speculative"


def test_each_committed_token_carries_the_verifiers_five_likeliest_with_it_among_them_at_temperature_0():
    history = diffuse(tiny_block_causal_lm(3, stop_ids=()), PROMPT, speculative())
    for step in history.steps:
        assert len(step.candidates) == len(step.tokens)
        for token, score, top in zip(step.tokens, step.scores, step.candidates):
            assert len(top) == 5 and top[0] == [token, pytest.approx(score, rel=1e-3)]  # greedy: the likeliest


def test_each_step_records_the_drafts_the_next_one_checks():
    history = diffuse(tiny_block_causal_lm(3, stop_ids=()), PROMPT, speculative(temperature=1.0, seed=4))
    for step, following in zip(history.steps, history.steps[1:]):
        assert step.draft_positions == list(range(step.positions[-1] + 1, step.positions[-1] + 1 + len(step.draft_tokens)))
        assert following.positions[0] == step.positions[-1] + 1 and len(step.draft_tokens) >= 1
        kept = 0  # the next step commits the ghosts it accepts, then a token of its own
        while kept < len(step.draft_tokens) and following.tokens[kept] == step.draft_tokens[kept]:
            kept += 1
        assert len(following.tokens) >= kept + (kept < len(step.draft_tokens))
    assert history.steps[-1].draft_positions == [] and max(history.steps[-2].draft_positions) < 16


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
    no draft set beats the marginal's own, its drafter is the block that speculative decoding lays out, and the
    tree's K drafts are kept with the marginal's mass on them."""
    from bench.drafts import _first_draft_distribution, draft_quality

    model, prompt, answer, t, k = tiny_block_causal_lm(seed=1), [5, 6, 7, 8], [9, 10, 11, 12, 13, 14], 0.7, 3
    rows = draft_quality(model, prompt, answer, t, draft=4, candidates=k, stride=2, top=TINY_VOCAB)
    seq, module = prompt + answer, model.module
    for row, anchor in zip(rows, range(len(prompt) - 1, len(seq) - 2, 2), strict=True):
        p_r = torch.softmax(model.suppress(module(torch.tensor([seq[:anchor + 1]])).logits[0, -1]) / t, -1)
        after = module(torch.tensor([seq[:anchor + 1] + [r] for r in range(TINY_VOCAB)])).logits[:, -1]
        after = torch.softmax(model.suppress(after) / t, -1)
        marginal = (p_r[:, None] * after).sum(0)
        assert row["ceiling"] == pytest.approx(float(marginal.max()), abs=1e-5)
        assert row["ceiling_top"] == pytest.approx(float(marginal.topk(k).values.sum()), abs=1e-5)
        assert row["drafter"] <= row["ceiling"] + 1e-6 and row["drafter_top"] <= row["ceiling_top"] + 1e-6
        assert row["kl"] >= -1e-6
        layout = Layout(0, anchor + 1, [], 4, 100)  # the same block, uncached
        ids = torch.tensor([seq[:anchor + 1] + [TINY_MASK_ID] * (len(layout.positions) - anchor - 1)])
        hidden = module.get_decoder()(ids, position_ids=layout.positions[None],
                                      attention_mask=layout.mask[None, None]).last_hidden_state[0]
        expected = torch.softmax(model.suppress(module.lm_head(hidden[layout.block_rows[0][0]])), -1)
        full = new_cache(model)
        module(torch.tensor([seq]), past_key_values=full, use_cache=True)
        assert torch.allclose(_first_draft_distribution(model, full, seq, anchor, 4), expected, atol=1e-5)
        assert row["drafter_top"] == pytest.approx(float(marginal[expected.topk(k).indices].sum()), abs=1e-5)
