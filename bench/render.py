"""How long one frame of the canvas takes to render: render_canvas on a 512-token canvas.

    python -m bench.render [--length 512] [--steps 64] [--runs 200]

Builds a diffusion History (`--steps` steps, tokens unmasked in a random order, some remasked)
and an AR History (one token per step) over the same 512 English tokens, then times, as the
median of `--runs` calls: render_canvas at the last step and at a middle step (the replay
slider), token_texts (the decoding the app does per frame), and render_history (both). The
tokenizer is a byte-level BPE trained here on a small English text (no download); the target is
well under 10 ms per frame for render_canvas.

Then the live charts (commits per step, denoising map, race) as the page redraws them while a run
goes: figure built and serialised to JSON (what Gradio sends), per redraw and spread over the
frames between two redraws (page.race.FRAMES_PER_SECOND x page.session.LIVE_CHART_SECONDS).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from generation.history import AUTOREGRESSIVE, DIFFUSION, History
from visualize.canvas import render_canvas, render_history
from visualize.tokens import token_texts

TEXT = ("Diffusion language models start from a canvas of masks and unmask it a few tokens at a time, "
        "while an autoregressive model writes one token after another from left to right. "
        "Here is some code:\n    for step in range(steps):\n        canvas = denoise(canvas)\n"
        "And some characters outside ASCII: café, naïve, 東京, 🎉, Ω ≈ 3.14. ")


def tokenizer() -> PreTrainedTokenizerFast:
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<mask>", "<eos>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    model.train_from_iterator([TEXT] * 50, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=model)


def histories(tok, length: int, steps: int) -> tuple[History, History]:
    mask, eos = tok.convert_tokens_to_ids("<mask>"), tok.convert_tokens_to_ids("<eos>")
    ids = (tok.encode(TEXT) * (length // 40 + 1))[: length - 8] + [eos] * 8
    rng = random.Random(0)
    order = list(range(length))
    rng.shuffle(order)
    diffusion = History(kind=DIFFUSION, prompt_ids=[1], initial=[mask] * length, mask_id=mask, stop_ids=[eos],
                        planned_steps=steps)
    per_step = -(-length // steps)
    for k in range(steps):
        chosen = order[k * per_step:(k + 1) * per_step]
        remask = rng.sample(order[: k * per_step], min(2, k * per_step)) if k % 4 == 3 else []
        positions = chosen + remask
        diffusion.record(positions, [ids[p] for p in chosen] + [mask] * len(remask),
                         [rng.random() for _ in positions], 0.05, k + 1)
    for p in [p for p in range(length) if diffusion.canvas[p] == mask]:  # fill what the remasks reopened
        diffusion.steps[-1].positions.append(p)
        diffusion.steps[-1].tokens.append(ids[p])
        diffusion.steps[-1].scores.append(0.5)
    diffusion = History.from_json(diffusion.to_json())  # rebuild the derived per-position fields
    autoregressive = History(kind=AUTOREGRESSIVE, prompt_ids=[1], initial=[], stop_ids=[eos], planned_steps=length)
    for k, token in enumerate(ids):
        autoregressive.record([k], [token], [rng.random()], 0.02, k + 1)
    return diffusion, autoregressive


def median_ms(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    tok = tokenizer()
    diffusion, autoregressive = histories(tok, args.length, args.steps)
    print(f"render one frame of a {args.length}-token canvas · median of {args.runs} runs · "
          f"Python {platform.python_version()} on {platform.machine()}")
    print(f"{'history':<28} {'step':>6} {'render_canvas':>14} {'token_texts':>12} {'render_history':>15}")
    for history in (diffusion, autoregressive):
        hidden = () if history.mask_id is None else (history.mask_id,)
        label = f"{history.kind} ({len(history.steps)} steps)"
        for step in (len(history.steps), len(history.steps) // 2):
            texts = token_texts(tok, history.canvas_at(step), hidden_ids=hidden)
            canvas_ms = median_ms(lambda: render_canvas(history, texts, step=step), args.runs)
            texts_ms = median_ms(lambda: token_texts(tok, history.canvas_at(step), hidden_ids=hidden), args.runs)
            both_ms = median_ms(lambda: render_history(history, tok, step=step), args.runs)
            print(f"{label:<28} {step:>6} {canvas_ms:>11.2f} ms {texts_ms:>9.2f} ms {both_ms:>12.2f} ms")
    live_charts(diffusion, autoregressive, max(args.runs // 10, 5))


def live_charts(diffusion: History, autoregressive: History, runs: int) -> None:
    from page.race import FRAMES_PER_SECOND
    from page.session import LIVE_CHART_SECONDS
    from visualize import charts

    figures = {"commits per step": lambda: charts.commits_figure(diffusion),
               "denoising map": lambda: charts.denoising_map_figure(diffusion),
               "race": lambda: charts.race_figure(diffusion, autoregressive)}
    frames = FRAMES_PER_SECOND * LIVE_CHART_SECONDS
    print(f"\nlive charts, built and serialised · median of {runs} runs · one redraw per {LIVE_CHART_SECONDS:g} s "
          f"= per {frames:g} frames")
    total = 0.0
    for name, build in figures.items():
        ms = median_ms(lambda: build().to_json(), runs)
        total += ms
        print(f"{name:<28} {ms:>8.2f} ms per redraw")
    print(f"{'all three':<28} {total:>8.2f} ms per redraw, {total / frames:.2f} ms per frame")


if __name__ == "__main__":
    main()
