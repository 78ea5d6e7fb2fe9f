"""Stage 5: the model card (README.md next to the adapter), written from the runs' JSON records.

Everything in the card is read from what the pipeline measured (run.json, eval.json): budgets,
throughputs, times, the variant comparison, the quality-vs-steps table and sample answers.

    python -m training.card --adapter DIR --evaluation FILE   # only the evaluation section, from a hand-run evaluation
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from .evaluate import (ANY_ORDER_EXACT_ROW, ANY_ORDER_ROW, PAGE_DEFAULT_ROW, calibration_words, per_step_row,
                       sampling_words, table)

EVALUATION = "eval.json"  # next to an adapter: the evaluation its card shows (bench/results.py reads it)


def _fmt(n: float) -> str:
    return f"{n:,.0f}"


def comparison_table(compare: dict) -> str:
    head = "| variant | trainable parameters | steps | train tokens | seconds | train loss | held-out loss |\n|---|---|---|---|---|---|---|"
    rows = [f"| {name} | {_fmt(r['trainable_parameters'])} | {r['steps']} | {_fmt(r['train_tokens'])} | "
            f"{r['seconds']:.0f} | {r['final_loss']:.3f} | {r.get('val_loss', float('nan')):.3f} |"
            for name, r in compare.items()]
    return "\n".join([head] + rows)


def samples_section(evaluation: dict) -> str:
    parts = []
    for row in evaluation["rows"]:
        parts.append(f"#### {row['setting']}\n")
        for s in row["samples"]:
            answer = s["answer"].replace("\n", " ").strip()
            parts.append(f"- *{s['prompt']}* → {answer}")
        parts.append("")
    return "\n".join(parts)


def block_targets(evaluation: dict) -> str:
    """The block model's targets (issue "Diffusion you can see and read"), checked against the table: at the page's
    default, >= 30% of answer tokens out of order, >= 2.0 tokens per forward, perplexity <= 1.2x and repeated 4-grams
    <= 1.5x the AR samples', entropy >= 95% of theirs, seconds per answer <= 0.8x the AR model's, no leaks; the
    drafter alone (2 tokens per step, blocks of 8): perplexity <= 1.5x; the any-order model's page default (dual
    cache): perplexity <= 1.15x its exact loop's (where the evaluation ran that row)."""
    rows = {r["setting"]: r for r in evaluation["rows"]}
    ar, default, drafter = evaluation["rows"][0], rows.get(PAGE_DEFAULT_ROW), rows.get(per_step_row(2))
    if default is None or drafter is None:
        return ""
    any_order, exact = rows.get(ANY_ORDER_ROW), rows.get(ANY_ORDER_EXACT_ROW)
    checks = [
        ("page default: out of order", 100 * default.get("out_of_order", 0.0), "% of answer tokens", 30, ">="),
        ("page default: tokens per forward", default["tokens_per_forward"], "", 2.0, ">="),
        ("page default: perplexity", default["gen_ppl"] / ar["gen_ppl"], "x the AR samples'", 1.2, "<="),
        ("page default: repeated 4-grams", default["repeated_4grams"] / max(ar["repeated_4grams"], 1e-9), "x the AR samples'", 1.5, "<="),
        ("page default: unigram entropy", default["unigram_entropy_nats"] / ar["unigram_entropy_nats"], "x the AR samples'", 0.95, ">="),
        ("page default: seconds per answer", default["seconds_per_answer"] / ar["seconds_per_answer"], "x the AR model's", 0.8, "<="),
        ("page default: leaks", default["leaks"], "", 0, "<="),
        ("drafter alone (2 tokens/step): perplexity", drafter["gen_ppl"] / ar["gen_ppl"], "x the AR samples'", 1.5, "<="),
    ]
    if any_order is not None and exact is not None:
        checks.append(("any-order page default: perplexity", any_order["gen_ppl"] / exact["gen_ppl"],
                       "x its exact loop's", 1.15, "<="))
    lines = ["| target | measured | bound | |", "|---|---|---|---|"]
    for name, value, unit, bound, op in checks:
        met = value <= bound if op == "<=" else value >= bound
        lines.append(f"| {name} | {value:.2f}{unit} | {op} {bound} | {'met' if met else 'missed'} |")
    return "\n".join(lines)


def targets(evaluation: dict) -> str:
    """The issue's targets, checked against the table: at one token per step (low_confidence, blocks),
    perplexity within 2x of the teacher's samples and unigram entropy at least 90% of theirs."""
    rows = evaluation["rows"]
    teacher = rows[0]
    full = next((r for r in rows if r.get("diffusion", {}).get("algorithm") == "low_confidence"
                 and r.get("diffusion", {}).get("steps") == evaluation["config"]["gen_length"]), None)
    if full is None:
        return ""
    ppl_ratio = full["gen_ppl"] / teacher["gen_ppl"]
    entropy_ratio = full["unigram_entropy_nats"] / teacher["unigram_entropy_nats"]
    return (f"Targets at one token per step (low_confidence, blocks of {evaluation['config']['block_length']}): "
            f"perplexity {ppl_ratio:.2f}x the teacher's (target <= 2x: {'met' if ppl_ratio <= 2 else 'missed'}), "
            f"unigram entropy {100 * entropy_ratio:.0f}% of the teacher's (target >= 90%: "
            f"{'met' if entropy_ratio >= 0.9 else 'missed'}); mean answer length {full['mean_length']:.0f} tokens vs "
            f"the teacher's {teacher['mean_length']:.0f}. Low perplexity with low entropy means repetitive text: read "
            f"the samples below. Seconds per answer are wall-clock, not a speed benchmark.")


def ar_step_line(evaluation: dict) -> str:
    """" (one-token step: bfloat16 22.6 ms, float32 42.1 ms)", or "" for evaluations that did not time it."""
    step_ms = evaluation.get("ar_step_ms")
    if not step_ms:
        return ""
    return " (one-token step: " + ", ".join(f"{dtype} {ms:.1f} ms" for dtype, ms in step_ms.items()) + ")"


def training_runs(history: list[dict]) -> str:
    """The training runs behind the adapter, each continuing from the adapter the one before left, and the total."""
    head = ("| run | steps | tokens processed | masked (supervised) tokens | minutes | tokens / s | held-out loss |\n"
            "|---|---:|---:|---:|---:|---:|---:|")
    rows = [f"| {i} | {r['steps']} | {_fmt(r['train_tokens'])} | {_fmt(r['masked_tokens'])} | {r['seconds'] / 60:.0f} | "
            f"{r['tokens_per_s']:.0f} | {r.get('val_loss', float('nan')):.3f} |" for i, r in enumerate(history, 1)]
    total = (f"| all | {sum(r['steps'] for r in history)} | {_fmt(sum(r['train_tokens'] for r in history))} | "
             f"{_fmt(sum(r['masked_tokens'] for r in history))} | {sum(r['seconds'] for r in history) / 60:.0f} | | |")
    return "\n".join([head, *rows, total])


def budget_cut(distill: dict) -> str:
    """The recipe's sentence on a budget that kept fewer answers than the grid has (its own line), or nothing."""
    if not distill.get("max_answers"):
        return ""
    return (f"\n  Budget cut at {distill['max_answers']} answers, taken in passes over the training prompts in a seeded"
            " random order (a prompt answered twice has one answer at each temperature), temperatures alternating.")


def continued(history: list[dict]) -> str:
    """The runs behind an adapter that continued from earlier ones (`--init-adapter`); empty for a single run."""
    if len(history) < 2:
        return ""
    return ("\n  This run continued from the adapter the earlier runs left (`--init-adapter`); every run behind the"
            " adapter (tokens processed depend on each run's layout; the masked tokens are the comparable budget):"
            "\n\n" + training_runs(history) + "\n")


def intro(cfg: dict) -> str:
    if cfg.get("objective") == "block":
        return """# SmolLM2-135M block diffusion (Unmask's embedded diffusion model)

SmolLM2-135M-Instruct turned into a block-diffusion language model (BD3-LM, Fast-dLLM v2), in
miniature: the answer is written in blocks of a few tokens, left to right; inside a block the model
fills masks in any order with bidirectional attention, while the prompt and finished blocks attend
causally, exactly as in the AR model, so their keys and values are an exact cache. Dream's token shift
(the logit at i-1 predicts token i) makes a block's first token the AR prediction the weights already
know. `<empty_output>` (id 16) is the mask, the AR model its own teacher. Load it with
`generation.load_model("smollm2-135m-block-diffusion")` (peft `PeftModel.from_pretrained` on the causal
base, then `merge_and_unload`; the sampler adds the block-causal attention mask).

The same weights are both a diffusion model (the masked block) and an AR model (the causal clean
stream), so besides the unmasking samplers the page decodes it by self-speculative decoding
(`algorithm="speculative"`, generation/speculative.py; TiDAR, arXiv 2511.08923): each forward drafts
a block by diffusion, with 4 values for its first token side by side (a tree, as in SpecInfer and
Medusa), keeps the drafts the causal path's own draws agree with (so answers are distributed as that
path's samples) and pre-drafts the next block for every outcome. The first draft is made before the
token in front of it is known; by the time the tree is built that token is, so the drafts are ranked
by the drafter's logits rescored with how often each token followed it in the training answers, and
the same counts add a second draft after the best one, its most frequent follower (`bigrams.npz`,
counted by the train stage from the distilled answers; generation/bigrams.py).
"""
    return """# SmolLM2-135M diffusion adapter (Unmask's any-order diffusion model)

SmolLM2-135M-Instruct turned into a masked diffusion language model the way Dream-7B was made from
Qwen2.5-7B, in miniature: bidirectional attention, Dream's logit shift (the logit at i-1 predicts
token i), `<empty_output>` (id 16) reused as the mask, the AR model as its own teacher. Load it with
`generation.load_model("smollm2-135m-diffusion")` (peft `PeftModel.from_pretrained` on the
bidirectional base, then `merge_and_unload`).
"""


def objective(cfg: dict) -> str:
    if cfg.get("objective") == "block":
        against_teacher = cfg.get("ar_target") == "teacher"
        target = "KL(teacher || student) of the next-token distributions" if against_teacher else "the next-token loss"
        ar_loss = (f", plus {cfg['ar_weight']} x {target} over the clean stream's answer tokens (the AR loss"
                   f"{'; the teacher: the base with the adapter off' if against_teacher else ''}; the held-out loss "
                   f"leaves it out)" if cfg.get("ar_weight") else "")
        return f"""- Objective (`training/block.py`): each row lays out three streams side by side: the clean prompt +
  answer (causal attention), and the answer twice with masks (m and its complement 1 - m), cut into blocks
  from its first token and padded with `<|endoftext|>` to a block multiple; noisy block b attends to the
  clean prompt, the clean blocks before it and itself, never to the other noisy stream. Each (row, block)
  draws t ~ U({cfg['eps']}, 1) and masks each token with probability t, so each answer token is supervised
  once per row. Loss: mean cross-entropy over masked tokens, a block's first token predicted from the clean
  state left of it, the others from the noisy state left of them{ar_loss}. Block sizes per batch, cycled:
  {cfg['block_sizes']}."""
    return f"""- Objective: each row is prompt + a {cfg['canvas']}-token canvas (answer, `<|im_end|>`, `<|endoftext|>` padding);
  t ~ U({cfg['eps']}, 1) low-discrepancy across the batch; canvas tokens masked with probability t, the prompt
  never; loss = sum over masked tokens of CE / t, divided by canvas tokens; the vocabulary projection runs only
  at masked positions."""


EVALUATION_HEADING = "## Evaluation"
LIMITATIONS_HEADING = "## Limitations"


def evaluation_section(evaluation: dict) -> str:
    """The card's evaluation: how it was measured, the table, the targets checked (the block model's or the any-order
    model's, by the objective the evaluation ran), sample answers."""
    config = evaluation["config"]
    objective = config.get("objective")
    calibration = calibration_words(evaluation)
    others = (f" (the any-order model: {config['compare_prompts']} prompts)"
              if config.get("compare_prompts") and objective == "block" else "")
    return f"""{EVALUATION_HEADING} (held-out prompts, {config['gen_length']}-token answers)
{len(evaluation['prompts'])} held-out prompts, {config.get('seeds', 1)} seed(s) per prompt{others}, seeds differing across
prompts, models in these dtypes ({', '.join(f'{k} {v}' for k, v in evaluation.get('dtypes', {}).items())}; the judge
float32): the diffusion models as the page loads them, the AR model in the dtype that stepped faster at its
load{ar_step_line(evaluation)}, {sampling_words(config)} for every row (the sampler draws in float64{'; ' + calibration if calibration else ''}). Judge:
{evaluation['judge']}, conditioned on the chat prompt, pooled over answer tokens. Unigram entropy in nats per answer
(compare with the mean length). Leaks: answers holding a mask or special token. Out of order: the share of answer
tokens written while a position to their left was still masked (History.out_of_order); revisions: changes of a
written token per answer (History.revisions). Tokens / forward: answer positions committed per model forward pass.
Seconds per answer: wall clock on {evaluation.get('hardware', 'the hardware above')}, {evaluation.get('date', '')}, one
answer at a time, the settings taking turns answer by answer (`training/evaluate.py`). `eval.json` beside this card
holds these numbers; Unmask's docs/results.md shows them with every other model's (`python -m bench.results`).

{table(evaluation)}

{block_targets(evaluation) if objective == 'block' else targets(evaluation)}

### Sample answers (first {evaluation['config']['samples_shown']} prompts per setting)

{samples_section(evaluation)}
"""


def model_card(run: dict, evaluation: dict, history: list[dict] | None = None) -> str:
    """The card; `history`: every training run behind the adapter (its history.json), oldest first."""
    train, distill, budget = run["train"], run["distill"], run["budget"]
    measured = run.get("throughput", {})
    cfg = train["config"]
    hardware = run.get("hardware", platform.machine())
    compare = run.get("compare")
    throughput = ""
    if measured:
        throughput = (
            "| stage | float32 tokens/s | bf16 autocast tokens/s |\n|---|---|---|\n"
            f"| distillation (answer tokens, batch 4, 32 new tokens, KV cache) | {measured['distill_answer_tokens_per_s_fp32']:.0f} | "
            f"{measured['distill_answer_tokens_per_s_bf16']:.0f} |\n"
            f"| training (prompt + canvas tokens, batch 4, fwd + bwd + AdamW) | {measured['train_tokens_per_s_fp32']:.0f} | "
            f"{measured['train_tokens_per_s_bf16']:.0f} |\n"
        )
    return f"""---
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
library_name: peft
tags: [{'block-diffusion' if cfg.get('objective') == 'block' else 'masked-diffusion'}, diffusion-language-model, lora, self-distillation]
license: apache-2.0
---

{intro(cfg)}
**This is the `{budget['name']}` recipe**: {budget['note']}
A retrain on a GPU only changes the budget flags: `python -m training.run_all --budget {'block-gpu' if cfg.get('objective') == 'block' else 'gpu'}`.

## Recipe
- Prompts: a deterministic grid of {run['prompts']['train']} training instructions (topics x task types) and
  {run['prompts']['held_out']} held-out prompts never trained on (`training/prompts.py`).
- Data: the teacher's own sampled answers through its chat template, {distill['answers']} answers
  ({_fmt(distill['answer_tokens'])} answer tokens) to {distill.get('distinct_prompts', '?')} distinct training prompts,
  up to {distill['answers_per_prompt']} per prompt, answers by temperature {distill.get('answers_by_temperature', distill['temperatures'])},
  top-p {distill['top_p']}, at most {distill['max_answer_tokens']} tokens ({distill.get('finished_answers', '?')} ended
  with `<|im_end|>` inside the bound; {'bf16 autocast' if distill['bf16'] else 'float32'}).{budget_cut(distill)}
{objective(cfg)}
- Parameters: variant `{cfg['variant']}`: LoRA rank {cfg['rank']} (alpha {cfg['alpha']}) on every linear layer of
  the body{' + RMS norms + embedding rows of ids 0, 2, 16' if cfg['variant'] == 'lora+' else ''};
  {_fmt(train['trainable_parameters'])} trainable parameters.
- Optimisation: AdamW (betas 0.9/0.98, no weight decay), peak lr {cfg['lr']}, {cfg['warmup_steps']} warm-up steps then
  cosine to 10% by the end of the step or time budget, whichever runs out first, batch {cfg['batch_size']}, gradient clipping 1.0, {'bf16 autocast' if cfg['bf16'] else 'float32'}.

## Budget and hardware
- Hardware: {hardware}.
- Training: {train['steps']} steps, {_fmt(train['train_tokens'])} tokens processed ({_fmt(train['masked_tokens'])}
  masked, i.e. supervised), {train['seconds'] / 60:.1f} minutes, {train['tokens_per_s']:.0f} tokens/s;
  final training loss {train['final_loss']:.3f}{f", held-out loss {train['val_loss']:.3f}" if 'val_loss' in train else ''}.{continued(history or [])}
- Distillation: {distill['seconds'] / 60:.1f} minutes{f", {distill['answer_tokens_per_s']:.0f} answer tokens/s" if distill.get('answer_tokens_per_s') else ''}.
- Targets of the full recipe (GPU budget): >= 10M distilled answer tokens, >= 100M training tokens.

{('### Measured throughput on this machine' + chr(10) + chr(10) + throughput) if throughput else ''}
## Variant comparison (equal budget)
{('Same data, same steps and batch, held-out loss = the objective on held-out teacher answers at t in {1/8, 3/8, 5/8, 7/8}, fixed seed.' + chr(10) + chr(10) + comparison_table(compare) + chr(10) + chr(10) + f"Chosen: `{cfg['variant']}`.") if compare else 'Not run in this budget.'}

{evaluation_section(evaluation)}{LIMITATIONS_HEADING}
A 135M model distilled on a small budget: expect it to be clearly worse than its teacher, more so at
few steps. Self-distillation data only covers the prompt grid's kinds of instructions. English only.
"""


def refresh_evaluation(adapter_dir: Path, evaluation_path: Path) -> None:
    """Put a new evaluation into the card beside `adapter_dir` (its evaluation section rewritten, the rest kept) and
    keep the evaluation beside it as eval.json: for an evaluation run by hand (`python -m training.evaluate --out`)
    of an adapter whose training run's record is gone."""
    evaluation = json.loads(evaluation_path.read_text())
    card_path = adapter_dir / "README.md"
    text = card_path.read_text()
    start, end = text.index(EVALUATION_HEADING + " "), text.index(LIMITATIONS_HEADING)
    card_path.write_text(text[:start] + evaluation_section(evaluation) + text[end:])
    keep_evaluation(adapter_dir, evaluation)


def keep_evaluation(adapter_dir: Path, evaluation: dict) -> None:
    """The evaluation a card shows, beside it as eval.json (what bench/results.py reads)."""
    (adapter_dir / EVALUATION).write_text(json.dumps(evaluation, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rewrite a model card's evaluation from an evaluation JSON.")
    parser.add_argument("--adapter", type=Path, required=True, help="the adapter directory holding the card")
    parser.add_argument("--evaluation", type=Path, required=True, help="what training.evaluate --out wrote")
    args = parser.parse_args(argv)
    refresh_evaluation(args.adapter, args.evaluation)
    print(f"{args.adapter / 'README.md'} and {args.adapter / EVALUATION} rewritten; docs/results.md: python -m bench.results")


if __name__ == "__main__":
    main()
