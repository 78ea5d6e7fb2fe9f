"""training/block.py: the block-diffusion objective's layout, mask and noise, on a tiny random model.

The central property: the two-stream training forward computes, for every noisy block, exactly the
states that block-causal decoding computes (prompt and finished blocks causal, the current block
bidirectional over them), so what is trained is what the sampler runs."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from generation.smollm2 import SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID, SMOLLM2_MASK_ID
from training import block
from training.adapt import AdaptConfig, batch_loss, frozen_teacher, student

PAIRS = [([20, 21, 22], [30, 31, 32, 33, 34, SMOLLM2_END_OF_TURN_ID]), ([23, 24], [40, 41, 42, 43, 44, 45, 46, 47])]


def tiny_causal_lm(seed: int = 0) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def test_answers_pad_to_a_block_multiple_with_endoftext():
    assert block.pad_to_block([5, 6, SMOLLM2_END_OF_TURN_ID], 4, 8) == [5, 6, SMOLLM2_END_OF_TURN_ID, 0]
    assert block.pad_to_block(list(range(20, 32)), 4, 8) == list(range(20, 28))  # cut at the canvas


def test_layout_places_clean_noisy_and_twin_streams_with_shared_positions():
    streams = block.layout(PAIRS, 4, 8)
    row = {name: value[0].tolist() for name, value in streams.items()}
    answer = [30, 31, 32, 33, 34, SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID, SMOLLM2_ENDOFTEXT_ID]
    assert row["ids"] == [20, 21, 22] + answer * 3
    assert row["position"] == list(range(11)) + list(range(3, 11)) * 2
    assert row["stream"] == [block.CLEAN] * 11 + [block.NOISY] * 8 + [block.TWIN] * 8
    assert row["block"] == [-1] * 3 + ([0] * 4 + [1] * 4) * 3
    # block starts are predicted from the clean state left of the block, the rest from their own stream
    assert row["source"][11:] == [2, 11, 12, 13, 6, 15, 16, 17] + [2, 19, 20, 21, 6, 23, 24, 25]
    assert row["twin"][11:19] == list(range(19, 27)) and set(row["twin"][:11] + row["twin"][19:]) == {-1}
    assert row["valid"] == [True] * 27  # the widest row
    assert streams["valid"][1].tolist() == [True] * 26 + [False]


def test_mask_is_causal_clean_and_block_local_noisy():
    streams = block.layout([PAIRS[0]], 4, 8)
    allowed = block.attention_mask(streams)[0, 0]
    p, a = 3, 8
    clean = allowed[:p + a, :p + a]
    assert torch.equal(clean, torch.tril(torch.ones(p + a, p + a, dtype=torch.bool)))
    assert not allowed[:p + a, p + a:].any()  # the clean stream never sees the noisy ones
    for start in (p + a, p + 2 * a):  # the noisy stream, then its twin
        first_block = allowed[start:start + 4]
        assert first_block[:, :p].all() and not first_block[:, p:p + a].any()
        assert first_block[:, start:start + 4].all()
        assert first_block[:, p + a:].sum() == 4 * 4  # its own block, nothing of the other noisy stream
        second = allowed[start + 4:start + 8]
        assert second[:, :p + 4].all() and not second[:, p + 4:p + a].any()  # clean block 0, not clean block 1
        assert second[:, p + a:].sum() == 4 * 4


def test_complementary_masks_cover_every_answer_token_exactly_once():
    streams = block.layout(PAIRS, 4, 8)
    masked = block.complementary_noise(streams, 1e-3, torch.Generator().manual_seed(0))
    noisy, twin = streams["stream"] == block.NOISY, streams["stream"] == block.TWIN
    assert not (masked & ~(noisy | twin)).any()
    for row in range(len(PAIRS)):
        m, complement = masked[row][noisy[row]], masked[row][twin[row]]
        assert torch.equal(m ^ complement, torch.ones_like(m))
        assert 0 < int(m.sum()) < len(m)  # this seed masks some and keeps some


@torch.no_grad()
def test_training_states_equal_block_causal_decoding_states():
    lm = tiny_causal_lm()
    prompt, answer = PAIRS[0]
    size = 4
    streams = block.layout([(prompt, answer)], size, 8)
    masked = (streams["stream"] != block.CLEAN) & (torch.arange(streams["ids"].shape[1]) % 3 == 0)
    noisy_ids = streams["ids"].masked_fill(masked, SMOLLM2_MASK_ID)
    hidden = lm.model(input_ids=noisy_ids, position_ids=streams["position"],
                      attention_mask=block.attention_mask(streams)).last_hidden_state[0]
    padded = block.pad_to_block(answer, size, 8)
    p, a = len(prompt), len(padded)
    for start in (p + a, p + 2 * a):  # the noisy stream and its twin (masked differently)
        for b in range(a // size):
            # decoding block b: prompt + clean blocks < b causal, then block b (with its masks) bidirectional
            current = noisy_ids[0, start + b * size:start + (b + 1) * size]
            x = torch.tensor(prompt + padded[:b * size] + current.tolist())[None]
            n = x.shape[1]
            allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
            allowed[n - size:, n - size:] = True
            decoded = lm.model(input_ids=x, attention_mask=allowed[None, None]).last_hidden_state[0]
            assert torch.allclose(hidden[start + b * size:start + (b + 1) * size], decoded[n - size:], atol=1e-5)
            assert torch.allclose(hidden[p + b * size - 1], decoded[n - size - 1], atol=1e-5)  # the clean state


def test_block_objective_trains_a_causal_student_and_cycles_block_sizes():
    config = AdaptConfig(objective="block", block_sizes=(2, 4), canvas=8, rank=4, alpha=4, bf16=False)
    model = student(tiny_causal_lm(), config)
    assert getattr(model.get_base_model().config, "is_causal", True)  # the mask carries the structure
    generator = torch.Generator().manual_seed(0)
    _, tokens_a, masked_a = batch_loss(model.get_base_model(), PAIRS, config, generator, step=0)
    loss, tokens_b, masked_b = batch_loss(model.get_base_model(), PAIRS, config, generator, step=1)
    # prompt + 3 streams of the answer; block 2 keeps the 6-token answer, block 4 pads it to 8
    assert (tokens_a, tokens_b) == (3 + 3 * 6 + 2 + 3 * 8, 3 + 3 * 8 + 2 + 3 * 8)
    assert (masked_a, masked_b) == (6 + 8, 8 + 8)  # complementary: each answer token once
    loss.backward()
    assert torch.isfinite(loss) and loss > 0


def test_ar_loss_is_the_causal_models_next_token_loss_on_the_answers_and_stays_out_of_validation():
    lm = tiny_causal_lm()
    streams = block.layout(PAIRS, 4, 8)
    masked = block.complementary_noise(streams, 1e-3, torch.Generator().manual_seed(0))
    diffusion, ar = block.block_diffusion_loss(lm, streams, masked, SMOLLM2_MASK_ID, ar=True)
    assert torch.equal(diffusion, block.block_diffusion_loss(lm, streams, masked, SMOLLM2_MASK_ID)[0])
    nll, count = 0.0, 0  # the plain causal model on prompt + padded answer, one row at a time
    for prompt, answer in PAIRS:
        x = torch.tensor([prompt + block.pad_to_block(answer, 4, 8)])
        logits = lm(x).logits[0, len(prompt) - 1:-1]
        nll += float(torch.nn.functional.cross_entropy(logits, x[0, len(prompt):], reduction="sum"))
        count += x.shape[1] - len(prompt)
    assert abs(float(ar) - nll / count) < 1e-5

    config = AdaptConfig(objective="block", block_sizes=(4,), canvas=8, bf16=False, ar_weight=0.5)
    train_loss = batch_loss(lm, PAIRS, config, torch.Generator().manual_seed(0))[0]
    validation = batch_loss(lm, PAIRS, config, torch.Generator().manual_seed(0), validation=True)[0]
    assert torch.allclose(validation, diffusion) and torch.allclose(train_loss, diffusion + 0.5 * ar)


def test_ar_loss_against_the_teacher_is_the_kl_of_the_next_token_distributions():
    lm, teacher = tiny_causal_lm(seed=1), tiny_causal_lm(seed=0)
    streams = block.layout(PAIRS, 4, 8)
    masked = block.complementary_noise(streams, 1e-3, torch.Generator().manual_seed(0))
    _, kl_loss = block.block_diffusion_loss(lm, streams, masked, SMOLLM2_MASK_ID, ar=True, teacher=teacher)
    kl, count = 0.0, 0  # both plain causal models on prompt + padded answer, one row at a time
    for prompt, answer in PAIRS:
        x = torch.tensor([prompt + block.pad_to_block(answer, 4, 8)])
        with torch.no_grad():
            p, q = (m(x).logits[0, len(prompt) - 1:-1].log_softmax(-1) for m in (teacher, lm))
        kl += float((p.exp() * (p - q)).sum())
        count += x.shape[1] - len(prompt)
    assert abs(float(kl_loss) - kl / count) < 1e-5 and float(kl_loss) > 0.01
    assert float(block.block_diffusion_loss(lm, streams, masked, SMOLLM2_MASK_ID, ar=True, teacher=lm)[1]) < 1e-6


def test_the_frozen_teacher_is_the_base_model_without_the_trained_adapter():
    base = tiny_causal_lm()
    x = torch.tensor([[20, 21, SMOLLM2_MASK_ID, 30, 31]])
    with torch.no_grad():
        expected = base(x).logits
    model = student(base, AdaptConfig(objective="block", variant="lora+", rank=4, alpha=4, bf16=False))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:  # LoRA, the norms and the special tokens' embeddings all move
                parameter.add_(0.5 * torch.randn_like(parameter))
        assert not torch.allclose(model(x).logits, expected, atol=1e-3)
        assert torch.allclose(frozen_teacher(model)(x).logits, expected, atol=1e-6)
        assert not torch.allclose(model(x).logits, expected, atol=1e-3)  # the adapter is back on afterwards


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_adapter(tmp_path):
    from safetensors.torch import load_file

    from training.adapt import train

    config = AdaptConfig(objective="block", block_sizes=(2, 4), canvas=8, rank=4, alpha=4, bf16=False, batch_size=1,
                         max_steps=4, warmup_steps=1, log_every=1, checkpoint_seconds=0.0,
                         ar_weight=1.0)  # the budgets' objective, AR loss included

    def kill_at_step_3(line: str) -> None:
        if line.startswith("step 3 "):
            raise Interrupted

    whole = train(PAIRS, config, tmp_path / "whole", base=tiny_causal_lm(), log=lambda line: None)
    try:
        train(PAIRS, config, tmp_path / "cut", base=tiny_causal_lm(), log=kill_at_step_3)
    except Interrupted:
        pass
    resumed = train(PAIRS, config, tmp_path / "cut", base=tiny_causal_lm(), log=lambda line: None, resume=True)
    assert resumed["steps"] == whole["steps"] == 4
    assert resumed["final_loss"] == whole["final_loss"]
    load = lambda d: torch.load(d / "checkpoint" / "trainer.pt", weights_only=False)["losses"]  # noqa: E731
    assert load(tmp_path / "cut") == load(tmp_path / "whole")
    weights = [load_file(d / "adapter_model.safetensors") for d in (tmp_path / "cut", tmp_path / "whole")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
