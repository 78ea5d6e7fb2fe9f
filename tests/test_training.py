"""training/: the masked-diffusion objective on a tiny random model (fast), the smoke pipeline end to
end and the shipped adapter through the registry (slow, real SmolLM2; no network)."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from generation.models import make_bidirectional
from generation.smollm2 import SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID, SMOLLM2_MASK_ID, SMOLLM2_SPECIAL_IDS
from training.adapt import AdaptConfig, diffusion_loss, layout, learning_rate, low_discrepancy_t, noise, student
from training.distill import DistillConfig, answer_until_stop, batches, left_pad
from training.prompts import split_prompts

CANVAS = 6
PAIRS = [([20, 21, 22], [30, 31, SMOLLM2_END_OF_TURN_ID]), ([23, 24, 25, 26, 27], [32, 33, 34, 35, 36, 37, 38])]


def tiny_causal_lm(seed: int = 0) -> LlamaForCausalLM:
    """A random bidirectional Llama with tied embeddings, like SmolLM2 (ids 0-16 exist: vocab 64)."""
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    return make_bidirectional(LlamaForCausalLM(config).eval())


def test_prompt_grid_is_large_deterministic_and_split():
    first, second = split_prompts(), split_prompts()
    assert first == second
    assert len(first["train"]) >= 2000 and len(first["held_out"]) >= 100
    assert not set(first["train"]) & set(first["held_out"])


def test_layout_pads_canvas_with_endoftext_and_rows_on_the_right():
    ids, attention, starts = layout(PAIRS, CANVAS)
    assert starts.tolist() == [3, 5]
    assert ids[0, :9].tolist() == [20, 21, 22, 30, 31, SMOLLM2_END_OF_TURN_ID] + [SMOLLM2_ENDOFTEXT_ID] * 3
    assert attention[0].tolist() == [1] * 9 + [0] * 2  # row 0 is 2 shorter than row 1
    assert ids[1, 5:].tolist() == [32, 33, 34, 35, 36, 37]  # answer cut at the canvas


def test_prompt_and_padding_columns_are_never_masked():
    ids, _, starts = layout(PAIRS, CANVAS)
    masked = noise(ids, starts, CANVAS, torch.ones(2), torch.Generator().manual_seed(0))
    assert masked[0].tolist() == [False] * 3 + [True] * CANVAS + [False] * 2
    assert masked[1].tolist() == [False] * 5 + [True] * CANVAS


def test_mask_rate_follows_t():
    ids = torch.zeros((2, 4000), dtype=torch.long)
    masked = noise(ids, torch.zeros(2, dtype=torch.long), 4000, torch.tensor([0.2, 0.7]),
                   torch.Generator().manual_seed(0))
    rates = masked.float().mean(1)
    assert abs(rates[0] - 0.2) < 0.03 and abs(rates[1] - 0.7) < 0.03


def test_low_discrepancy_t_is_evenly_spread_in_range():
    eps = 1e-3
    t = low_discrepancy_t(8, eps, torch.Generator().manual_seed(3))
    gaps = torch.diff(torch.sort(t).values)
    assert torch.allclose(gaps, torch.full_like(gaps, (1 - eps) / 8), atol=1e-5)
    assert t.min() >= eps and t.max() <= 1


def test_loss_is_one_over_t_weighted_shifted_cross_entropy():
    """Against a hand computation from the full logits: row i-1 predicts token i, weight 1/t."""
    model = tiny_causal_lm()
    ids, attention, starts = layout(PAIRS, CANVAS)
    t = torch.tensor([0.25, 0.5])
    masked = noise(ids, starts, CANVAS, t, torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss = diffusion_loss(model, ids, attention, masked, t, CANVAS, SMOLLM2_MASK_ID)
        logits = model(ids.masked_fill(masked, SMOLLM2_MASK_ID), attention_mask=attention).logits
    expected = 0.0
    for b, i in masked.nonzero().tolist():
        expected += -torch.log_softmax(logits[b, i - 1], -1)[ids[b, i]] / t[b]
    assert math.isclose(float(loss), float(expected) / (2 * CANVAS), rel_tol=1e-4)


def test_loss_of_a_row_does_not_depend_on_the_padding_beside_it():
    model = tiny_causal_lm()
    ids, attention, starts = layout(PAIRS, CANVAS)
    t = torch.tensor([0.6, 0.6])
    masked = noise(ids, starts, CANVAS, t, torch.Generator().manual_seed(2))
    masked[1] = False  # only row 0 (the padded one) contributes
    alone_ids, alone_attention, _ = layout(PAIRS[:1], CANVAS)
    with torch.no_grad():
        batched = diffusion_loss(model, ids, attention, masked, t, CANVAS, SMOLLM2_MASK_ID) * 2
        alone = diffusion_loss(model, alone_ids, alone_attention, masked[:1, :9], t[:1], CANVAS, SMOLLM2_MASK_ID)
    assert math.isclose(float(batched), float(alone), rel_tol=1e-4)


@pytest.mark.parametrize("variant", ["lora", "lora+"])
def test_adapter_saves_and_merges_through_the_registry_path(tmp_path, variant):
    from peft import PeftModel

    model = student(tiny_causal_lm(), AdaptConfig(variant=variant, rank=4, alpha=4))
    with torch.no_grad():  # move every trainable tensor away from its (identity) initial value
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path)
    x = torch.tensor([[20, 21, SMOLLM2_MASK_ID, 22, SMOLLM2_MASK_ID]])
    with torch.no_grad():
        trained = model(x).logits
        merged = PeftModel.from_pretrained(tiny_causal_lm(), str(tmp_path)).merge_and_unload()(x).logits
        base = tiny_causal_lm()(x).logits
    assert torch.allclose(trained, merged, atol=1e-4)
    assert not torch.allclose(base, merged, atol=1e-3)


def test_helpers():
    assert answer_until_stop([5, 6, SMOLLM2_END_OF_TURN_ID, 0, 0]) == [5, 6, SMOLLM2_END_OF_TURN_ID]
    ids, attention = left_pad([[1, 2], [3]], 0)
    assert ids.tolist() == [[1, 2], [0, 3]] and attention.tolist() == [[1, 1], [0, 1]]


def test_learning_rate_anneals_by_whichever_budget_runs_out_first():
    config = AdaptConfig(lr=1e-3, warmup_steps=10, max_steps=1000, max_seconds=100.0)
    assert math.isclose(learning_rate(0, config), 1e-4) and math.isclose(learning_rate(10, config), 1e-3)
    assert math.isclose(learning_rate(1000, config, seconds=1.0), 1e-4)  # steps spent
    assert math.isclose(learning_rate(20, config, seconds=100.0), 1e-4)  # clock spent
    assert math.isclose(learning_rate(20, config, seconds=50.0), 1e-3 * (0.1 + 0.45), rel_tol=1e-6)


def test_distillation_batches_are_an_even_sample_of_prompts_and_temperatures():
    lengths = [10 + i % 7 for i in range(300)]  # prompt i has length lengths[i]; ids follow the grid order
    config = DistillConfig(answers_per_prompt=2, temperatures=(0.7, 1.0), batch_size=4, shard_batches=3)
    every = batches(lengths, config)
    jobs = [job for batch in every for job in batch]
    assert sorted(jobs) == sorted((i, t) for i in range(300) for t in (0.7, 1.0))
    assert all(len({t for _, t in batch}) == 1 for batch in every)
    assert [batch[0][1] for batch in every[:4]] == [0.7, 1.0, 0.7, 1.0]  # temperatures take turns
    assert batches(lengths, config) == every  # deterministic

    cut = [job for batch in batches(lengths, DistillConfig(**{**config.__dict__, "max_answers": 60})) for job in batch]
    assert len(cut) == 60 and sum(t == 0.7 for _, t in cut) == 30
    assert max(i for i, _ in cut) > 150  # a random sample of the grid, not its first prompts
    assert len({lengths[i] for i, _ in cut}) == 7  # not only the shortest prompts
    assert len({i for i, _ in cut}) == 60  # a second answer only once every prompt has its first

    smaller = batches(lengths, DistillConfig(**{**config.__dict__, "max_answers": 240}))  # whole windows
    assert batches(lengths, DistillConfig(**{**config.__dict__, "max_answers": 420}))[:len(smaller)] == smaller


@pytest.mark.slow
def test_smoke_pipeline_end_to_end(tmp_path):
    """Every stage on a tiny budget with the real teacher: data, comparison, adapter, table, card."""
    from generation.smollm2 import load_embedded_diffusion
    from training.run_all import main

    run = main(["--budget", "smoke", "--workdir", str(tmp_path)])
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["distill"]["answers"] == 4 and record["train"]["steps"] == 2
    assert set(record["compare"]) == {"lora", "lora+"}
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert [r["setting"] for r in evaluation["rows"]][0].startswith("AR model")
    step_ms = evaluation["ar_step_ms"]  # the baseline answers in whichever dtype steps faster here
    assert set(step_ms) == {"bfloat16", "float32"} and evaluation["dtypes"]["smollm2-135m-instruct"] == min(step_ms, key=step_ms.get)
    assert len(evaluation["rows"]) == 1 + 2 * 2
    assert all(r["leaks"] == 0 for r in evaluation["rows"])
    assert "| setting |" in (run.adapter_out / "README.md").read_text()
    assert load_embedded_diffusion("cpu", torch.float32, run.adapter_out).shift_logits


@pytest.mark.slow
def test_smoke_pipeline_trains_and_evaluates_the_block_model(tmp_path):
    """The block objective through every stage: its adapter loads block-causal, its table has the issue's rows."""
    from generation.smollm2 import load_block_diffusion
    from training.run_all import main

    run = main(["--budget", "smoke", "--objective", "block", "--block-sizes", "8", "4", "--workdir", str(tmp_path)])
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["train"]["config"]["objective"] == "block" and record["train"]["steps"] == 2
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert [r["setting"] for r in evaluation["rows"]] == [
        "AR model (T=0.7)", "block, page default", "block, speculative", "block, 1 token/step", "block, 2 tokens/step",
        "block, 4 tokens/step", "block, threshold", "block of 32, 2 tokens/step", "any-order model, page default",
        "any-order model, exact loop"]
    assert evaluation["rows"][-1]["diffusion"] == dict(evaluation["rows"][-2]["diffusion"], cache="none")
    assert [r["diffusion"]["steps"] for r in evaluation["rows"][3:6]] == [16, 8, 4]  # 16 tokens: 1, 2, 4 per step
    assert all("out_of_order" in r and "revisions" in r for r in evaluation["rows"])
    assert all(r["leaks"] == 0 for r in evaluation["rows"])
    card = (run.adapter_out / "README.md").read_text()
    assert "block diffusion" in card and "| page default: perplexity |" in card
    assert "| any-order page default: perplexity |" in card
    model = load_block_diffusion("cpu", torch.float32, run.adapter_out)
    assert model.block_size is not None and model.bigrams.counts.sum() == record["distill"]["answer_tokens"]
    calibration = json.loads((run.adapter_out / "calibration.json").read_text())
    assert calibration == record["calibrate"] and calibration["answers"] == 4
    assert model.causal_temperature == calibration["causal_temperature"]  # near 1 after 2 steps: the loader reads it
    assert calibration["kl_fitted"] <= calibration["kl_at_1"]
    (run.adapter_out / "calibration.json").write_text(json.dumps({**calibration, "causal_temperature": 1.37}))
    assert load_block_diffusion("cpu", torch.float32, run.adapter_out).causal_temperature == 1.37

    # A later run continues from that adapter: the adapter's history and its card count both runs.
    later = main(["--budget", "smoke", "--objective", "block", "--block-sizes", "8", "--workdir", str(tmp_path),
                  "--stages", "train", "card", "--init-adapter", str(run.adapter_out),
                  "--adapter-out", str(tmp_path / "continued")])
    assert not (later.adapter_out / "calibration.json").exists()  # a calibration belongs to the adapter it was fit on
    history = json.loads((later.adapter_out / "history.json").read_text())
    assert [r["steps"] for r in history] == [2, 2] and history[1]["init_adapter"] == str(run.adapter_out)
    assert "| all | 4 |" in (later.adapter_out / "README.md").read_text()


@pytest.mark.slow
def test_shipped_adapter_loads_and_answers_without_special_tokens():
    from generation import DiffusionConfig, diffuse, load_model
    from generation.smollm2 import DIFFUSION_SMOLLM2, EMBEDDED_ADAPTER_DIR

    assert (EMBEDDED_ADAPTER_DIR / "adapter_config.json").exists(), f"the shipped adapter is missing from {EMBEDDED_ADAPTER_DIR}"
    model = load_model(DIFFUSION_SMOLLM2, device="cpu")
    prompt = model.prompt_ids([{"role": "user", "content": "Explain the water cycle in simple terms."}])
    history = diffuse(model, prompt, DiffusionConfig(gen_length=32, steps=8, block_length=32))
    assert history.answer_ids() and not set(history.answer_ids()) & set(SMOLLM2_SPECIAL_IDS)
    assert SMOLLM2_MASK_ID not in history.canvas


@pytest.mark.slow
def test_shipped_block_adapter_answers_at_its_recommended_settings_without_special_tokens():
    from generation import diffuse, load_model, recommended_config
    from generation.presets import BLOCK_DIFFUSION_SMOLLM2
    from generation.smollm2 import BLOCK_ADAPTER_DIR

    assert (BLOCK_ADAPTER_DIR / "adapter_config.json").exists(), f"the shipped adapter is missing from {BLOCK_ADAPTER_DIR}"
    model = load_model(BLOCK_DIFFUSION_SMOLLM2, device="cpu")
    prompt = model.prompt_ids([{"role": "user", "content": "What is the capital of France?"}])
    history = diffuse(model, prompt, recommended_config(BLOCK_DIFFUSION_SMOLLM2, 32))
    answer = history.answer_ids()
    assert answer and not set(answer) & set(SMOLLM2_SPECIAL_IDS)
    assert "Paris" in model.tokenizer.decode(answer)
    assert history.tokens_per_forward() >= 1.0 and history.cache == "prefix"


@pytest.mark.slow
def test_shipped_block_adapter_decodes_speculatively_as_its_causal_path_in_fewer_forwards():
    """In float32, greedy: speculative decoding is the causal path's own decode (blocks of 1), token for token."""
    from generation import DiffusionConfig, diffuse
    from generation.smollm2 import load_block_diffusion

    model = load_block_diffusion("cpu", torch.float32)
    prompt = model.prompt_ids([{"role": "user", "content": "Name three colours and say why you like them."}])
    speculative = diffuse(model, prompt, DiffusionConfig(gen_length=48, block_length=4, algorithm="speculative",
                                                         cache="prefix"))
    left_to_right = diffuse(model, prompt, DiffusionConfig(gen_length=48, steps=48, block_length=1, cache="prefix"))
    assert speculative.canvas == left_to_right.canvas
    assert speculative.tokens_per_forward() > 1.2


def test_the_gguf_travels_in_parts_that_fit_their_calls_and_is_joined_only_whole(tmp_path, monkeypatch):
    import hashlib

    import training.gpu_session as gpu_session

    assert gpu_session.part_sizes(100, 30, 40) == [30, 40, 30]
    assert gpu_session.part_sizes(20, 30, 40) == [20]
    with pytest.raises(ValueError, match="no room"):
        gpu_session.part_sizes(100, 0, 40)
    whole = tmp_path / "model.gguf"
    whole.write_bytes(bytes(range(256)) * 4)
    parts = [tmp_path / f"gguf-{i}" for i in (1, 2, 3, 10)]  # joined in numeric order: gguf-10 last
    gpu_session.split_file(whole, gpu_session.part_sizes(1024, 100, 400), parts)
    monkeypatch.setattr(gpu_session, "GGUF_SHA256", hashlib.sha256(whole.read_bytes()).hexdigest())
    assert gpu_session.join_gguf(tmp_path).read_bytes() == whole.read_bytes()
    (parts[2] / "part").unlink()  # the machine went cold between calls
    with pytest.raises(SystemExit, match="does not match its hash"):
        gpu_session.join_gguf(tmp_path)


def test_the_result_travels_back_as_a_tar_in_parts(tmp_path, monkeypatch):
    import training.gpu_session as gpu_session

    monkeypatch.setattr(gpu_session, "PART_BYTES", 4096)
    big, small = tmp_path / "big.bin", tmp_path / "small.json"
    big.write_bytes(torch.randint(0, 256, (10_000,), dtype=torch.uint8).numpy().tobytes())
    small.write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    parts = gpu_session.write_parts({"adapter/big.bin": big, "run.json": small}, out)
    assert len(parts) > 2 and all(p.stat().st_size <= 4096 for p in parts)
    gpu_session.read_parts(out, tmp_path / "back")
    assert (tmp_path / "back" / "adapter" / "big.bin").read_bytes() == big.read_bytes()
    assert (tmp_path / "back" / "run.json").read_text() == "{}"


@pytest.mark.slow
def test_the_gpu_session_job_runs_on_cpu_in_smoke_mode_and_its_result_is_collected(tmp_path):
    """gpu_session's run --smoke: the device job's path (distil, train from the shipped adapter, pack) on CPU; collect
    unpacks an adapter that loads block-causal and answers that the next run's distillation resumes from."""
    from generation.smollm2 import load_block_diffusion
    from training.distill import load_shards, unpack
    from training.gpu_session import collect, main

    main(["run", "--smoke", "--out", str(tmp_path / "out")])
    summary = collect(tmp_path / "out", tmp_path / "back", tmp_path / "answers.json.xz", log=lambda message: None)
    assert summary["train"]["steps"] == 2 and summary["distill"]["answers"] == 4
    history = json.loads((tmp_path / "back" / "adapter" / "history.json").read_text())
    assert len(history) >= 2 and history[-1]["steps"] == 2  # the shipped adapter's runs, then this one
    assert load_block_diffusion("cpu", torch.float32, tmp_path / "back" / "adapter").block_size is not None
    assert unpack(tmp_path / "answers.json.xz", tmp_path / "shards") > 0
    assert len(load_shards(tmp_path / "shards")) == 4


def test_distillation_resumes_only_from_shards_of_its_own_plan(tmp_path, monkeypatch):
    import training.distill as distill

    monkeypatch.setattr(distill, "chat_prompt_ids", lambda tokenizer, messages: [1, 2, 3])
    prompts = [f"p{i}" for i in range(8)]
    config = DistillConfig(answers_per_prompt=1, batch_size=2, shard_batches=1, max_answer_tokens=2)
    planned = batches([3] * len(prompts), config)
    distill.save_shard(tmp_path / "shard_00000.pt", [(prompts[i], [1, 2, 3], [5], t) for i, t in planned[0]])
    distill.save_shard(tmp_path / "shard_00001.pt", [(prompts[i], [1, 2, 3], [5], t)  # made with batches of 4
                                                     for i, t in batches([3] * len(prompts), DistillConfig(
                                                         answers_per_prompt=1, batch_size=4))[0]])
    with pytest.raises(ValueError, match="shard_00001.pt holds other prompts than this plan's shard"):
        distill.distill(prompts, tmp_path, config, module=object())  # shard 0 is this plan's: skipped


def test_distillation_stops_after_the_shard_that_ran_past_its_seconds_and_resumes_there(tmp_path, monkeypatch):
    import training.distill as distill

    monkeypatch.setattr(distill, "chat_prompt_ids", lambda tokenizer, messages: [1, 2, 3])
    monkeypatch.setattr(distill, "sample_answers", lambda module, rows, temperature, config, seed: [[5]] * len(rows))
    prompts = [f"p{i}" for i in range(8)]
    config = DistillConfig(answers_per_prompt=1, batch_size=2, shard_batches=1, max_answer_tokens=2, max_seconds=0.0)
    distill.distill(prompts, tmp_path, config, module=object())
    assert [p.name for p in sorted(tmp_path.glob("shard_*.pt"))] == ["shard_00000.pt"]
    distill.distill(prompts, tmp_path, dataclasses.replace(config, max_seconds=None), module=object())
    assert len(distill.load_shards(tmp_path)) == len(prompts)


def test_packed_answers_unpack_to_the_same_shards_and_are_skipped(tmp_path):
    from training.distill import load_shards, pack, save_shard, unpack, _add_stats

    shards = tmp_path / "distill"
    shards.mkdir()
    save_shard(shards / "shard_00000.pt", [("p0", [20, 21], [30, SMOLLM2_END_OF_TURN_ID], 0.7)])
    save_shard(shards / "shard_00001.pt", [("p1", [22], [31, 32, 33], 1.0)])
    _add_stats(shards, answers=2, answer_tokens=5, seconds=1.0)
    pack(shards, tmp_path / "answers.json.xz")
    restored = tmp_path / "restored"
    assert unpack(tmp_path / "answers.json.xz", restored) == 2
    assert load_shards(restored) == load_shards(shards)
    assert json.loads((restored / "stats.json").read_text()) == json.loads((shards / "stats.json").read_text())
    assert unpack(tmp_path / "answers.json.xz", restored) == 0  # present shards are kept, not rewritten


def test_card_checks_the_targets_of_the_row_at_one_token_per_step():
    from training.card import targets

    evaluation = {"config": {"gen_length": 16, "block_length": 16}, "rows": [
        {"setting": "AR", "gen_ppl": 2.0, "unigram_entropy_nats": 2.0, "mean_length": 10},
        {"setting": "8 steps", "diffusion": {"algorithm": "low_confidence", "steps": 8}, "gen_ppl": 9.0,
         "unigram_entropy_nats": 1.0, "mean_length": 12},
        {"setting": "16 steps", "diffusion": {"algorithm": "low_confidence", "steps": 16}, "gen_ppl": 3.0,
         "unigram_entropy_nats": 1.9, "mean_length": 12}]}
    text = targets(evaluation)
    assert "perplexity 1.50x the teacher's (target <= 2x: met)" in text and "95% of the teacher's" in text


def test_card_names_the_ar_loss_only_for_runs_trained_with_it():
    from training.card import objective

    cfg = {"objective": "block", "eps": 1e-3, "block_sizes": (8, 4)}
    assert "AR loss" not in objective(cfg) and "AR loss" not in objective({**cfg, "ar_weight": 0.0})
    assert "plus 1.0 x the next-token loss over the clean stream's answer tokens" in objective({**cfg, "ar_weight": 1.0})
    assert "plus 1.0 x KL(teacher || student) of the next-token distributions" in objective(
        {**cfg, "ar_weight": 1.0, "ar_target": "teacher"})


def test_card_says_a_budget_cut_on_a_line_of_its_own_and_leaves_no_blank_line_without_one():
    from training.card import budget_cut

    assert budget_cut({"max_answers": 1024}).startswith("\n  Budget cut at 1024 answers, taken in passes")
    assert budget_cut({}) == budget_cut({"max_answers": None}) == ""


def test_card_refresh_rewrites_only_the_evaluation_and_keeps_it_beside_the_adapter(tmp_path):
    """An evaluation run by hand replaces the shipped block card's evaluation section; recipe and limitations stay."""
    import shutil

    from training.card import EVALUATION, main as card_main

    shipped = Path(__file__).resolve().parent.parent / "assets" / "smollm2-135m-block-diffusion"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy(shipped / "README.md", adapter / "README.md")
    evaluation = json.loads((shipped / EVALUATION).read_text())
    evaluation["rows"][1]["tokens_per_forward"] = 9.87  # the page default's row
    (tmp_path / "new.json").write_text(json.dumps(evaluation))
    before = (adapter / "README.md").read_text()

    card_main(["--adapter", str(adapter), "--evaluation", str(tmp_path / "new.json")])

    after = (adapter / "README.md").read_text()
    assert after.split("## Evaluation")[0] == before.split("## Evaluation")[0]  # recipe, budget, runs
    assert after.split("## Limitations")[1] == before.split("## Limitations")[1]
    assert "| page default: tokens per forward | 9.87 | >= 2.0 | met |" in after
    assert json.loads((adapter / EVALUATION).read_text()) == evaluation
