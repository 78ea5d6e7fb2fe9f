"""The page's API for programs: plain data, named parameters, no HTML. Two endpoints, also the MCP tools
when the page runs as an MCP server (Gradio turns each public endpoint into a tool, described by the
function's docstring and type hints):

- `generate_data`: one race of the two models (page.race.race, the page's own worker); both answers as
  text, both Histories as JSON, timings.
- `sweep_data`: the steps sweep (page.sweep.sweep_work); a row per setting with its scores, answer and History.

`data_endpoints(load, ...)` builds both around the page's loader (its ModelGate: custom model ids are
refused here too). Left out: streaming (the page's own /generate streams HTML frames) and Stop (a
program cancels by closing its connection; the run in progress finishes).
"""

from __future__ import annotations

import json
import threading

import gradio as gr

import generation
from generation import ConfigError, History
from generation.config import require_prompt
from page.race import race
from page.session import ON_ZERO_GPU, answer_text
from page.settings import DEFAULTS, ONE_AFTER_THE_OTHER, TOGETHER, Settings
from page.sweep import SweepPlan, base_config, parse_steps, sweep_work


def panel_data(view, tokenizer) -> dict:
    """One panel as data: its model, status or error, answer text, History (as JSON) and timings."""
    history: History | None = view.history
    data = {"model": view.model_name, "status": view.status, "error": view.error,
            "answer": answer_text(history, tokenizer), "history": None if history is None else json.loads(history.to_json())}
    if history is not None:
        seconds = history.seconds
        data.update(steps=len(history.steps), forward_passes=history.forward_passes, seconds=seconds,
                    seconds_to_first_token=history.seconds_to_first_token(), answer_tokens=history.answer_tokens(),
                    tokens_per_second=history.answer_tokens() / seconds if seconds > 0 else None,
                    tokens_per_forward=history.tokens_per_forward(), computed_positions=history.computed_positions)
    return data


def data_endpoints(load, diffusion_default: str, ar_default: str):
    """(generate_data, sweep_data) for `gr.api`, with the page's default models as their defaults."""

    def generate_data(prompt: str, diffusion_model: str = diffusion_default, ar_model: str = ar_default,
                      gen_length: int = DEFAULTS.gen_length, steps: int = DEFAULTS.steps,
                      block_length: int = DEFAULTS.block_length, algorithm: str = DEFAULTS.algorithm,
                      temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
                      repetition_penalty: float = DEFAULTS.repetition_penalty,
                      dry_multiplier: float = DEFAULTS.dry_multiplier, alg_temp: float = DEFAULTS.alg_temp, threshold: float = DEFAULTS.threshold,
                      seed: int = DEFAULTS.seed, together: bool = False, cache: str = DEFAULTS.cache) -> dict:
        """Answer one prompt with a diffusion LM and an autoregressive LM; return both answers as text, both
        step-by-step Histories as JSON (which tokens each step wrote, with scores and seconds) and timings.

        Args:
            prompt: the user message both models answer.
            diffusion_model: the diffusion model, one of the page's model names.
            ar_model: the autoregressive model, one of the page's model names.
            gen_length: answer length in tokens (the diffusion canvas).
            steps: diffusion denoising steps (at most gen_length; a multiple of the number of blocks).
            block_length: semi-autoregressive block length (divides gen_length; 0 = one block); for speculative
                decoding the draft length.
            algorithm: which positions to reveal: low_confidence, random, maskgit_plus, topk_margin, entropy, origin;
                or speculative (block-diffusion models: drafts a block, keeps what the causal path accepts).
            temperature: 0 = deterministic; higher = more varied tokens (both models).
            top_p: nucleus filtering (Dream algorithms and the AR model); 1 = off.
            repetition_penalty: above 1, tokens already in the prompt or the answer are less likely (both models);
                1 = off.
            dry_multiplier: the loop penalty (DRY): above 0, a token that would repeat a stretch of the text is less
                likely, the more so the longer the repeat (both models); 0 = off.
            alg_temp: Dream algorithms: randomness in where to reveal; 0 = off.
            threshold: Fast-dLLM: reveal every token at least this likely in one step; 0 = off.
            seed: same seed and settings, same output.
            together: True runs both models at once (a race on shared hardware); False one after the other (fair timings).
            cache: the diffusion sampler's KV cache: none (exact), prefix or dual (Fast-dLLM: approximate for
                bidirectional models, exact for block-causal ones).
        Returns:
            {"prompt", "settings", "diffusion": {...}, "autoregressive": {...}}; each panel has model, status, error,
            answer, history, steps, forward_passes, seconds, seconds_to_first_token, answer_tokens, tokens_per_second,
            tokens_per_forward, computed_positions (positions the forwards computed; null for the AR model).
        """
        prompt = _checked_prompt(prompt)
        settings = Settings(gen_length=gen_length, steps=steps, block_length=block_length, algorithm=algorithm,
                            temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty,
                            dry_multiplier=dry_multiplier, alg_temp=alg_temp, threshold=threshold, seed=seed, cache=cache)
        try:
            configs = settings.configs()
        except ConfigError as error:
            raise gr.Error(f"Bad settings: {error}") from None
        messages = [{"role": "user", "content": prompt}]
        stops = None if ON_ZERO_GPU else (threading.Event(), threading.Event())
        tokenizers, panels = {}, ()
        for panels in race(load, (diffusion_model, ar_model), (messages, messages), configs,
                           TOGETHER if together else ONE_AFTER_THE_OTHER, stops):
            tokenizers.update({view.kind: view.tokenizer for view in panels if view.tokenizer is not None})
        return {"prompt": prompt, "settings": {"diffusion": configs[0].to_dict(), "autoregressive": configs[1].to_dict(),
                                               "together": together},
                **{view.kind: panel_data(view, tokenizers.get(view.kind)) for view in panels}}

    def sweep_data(prompt: str, diffusion_model: str = diffusion_default, ar_model: str = ar_default,
                   gen_length: int = DEFAULTS.gen_length, block_length: int = DEFAULTS.block_length,
                   algorithm: str = DEFAULTS.algorithm, temperature: float = DEFAULTS.temperature,
                   seed: int = DEFAULTS.seed, steps: str = "", threshold: bool = True,
                   cache: str = DEFAULTS.cache) -> dict:
        """Quality against steps: run the diffusion model on one prompt at several step counts (and a Fast-dLLM
        threshold row), judge every answer with the autoregressive model (generative perplexity, conditioned on
        the prompt) and unigram entropy, and return a row per setting after the AR model's own answer.

        Args:
            prompt: the user message the models answer.
            diffusion_model: the diffusion model, one of the page's model names.
            ar_model: the autoregressive model: the judge, and the reference row's author.
            gen_length: answer length in tokens.
            block_length: semi-autoregressive block length (divides gen_length; 0 = one block); for speculative
                decoding the draft length.
            algorithm: the diffusion algorithm (low_confidence, random, maskgit_plus, topk_margin, entropy, origin,
                speculative: its rows run low_confidence, then one speculative row).
            temperature: 0 = deterministic; the same for every row and the AR reference.
            seed: the seed of every row.
            steps: step counts separated by commas, e.g. "8, 16, 32, 64"; empty = gen_length x 1, 1/2, 1/4, 1/8.
            threshold: also run a Fast-dLLM threshold 0.9 row where the algorithm allows one.
            cache: the diffusion sampler's KV cache for every row: none (exact), prefix or dual.
        Returns:
            {"prompt", "model", "judge", "rows": [...]}; each row has label, kind, overrides, steps, seconds,
            answer_tokens, judged_tokens, nll, perplexity (null for an empty answer), entropy (nats), answer, history.
        """
        prompt = _checked_prompt(prompt)
        settings = Settings(gen_length=gen_length, block_length=block_length, algorithm=algorithm,
                            temperature=temperature, seed=seed, cache=cache)  # base_config sets the steps
        try:
            config, step_counts = base_config(settings), parse_steps(steps)
        except ConfigError as error:
            raise gr.Error(f"Bad settings: {error}") from None
        plan, rows = SweepPlan([], {}), []
        try:
            for item in sweep_work(load, (diffusion_model, ar_model), prompt, config, step_counts, threshold):
                if isinstance(item, SweepPlan):
                    plan = item
                else:
                    rows.append({**item.to_dict(), "answer": answer_text(item.history, plan.tokenizers.get(item.kind))})
        except (ConfigError, generation.ModelUnavailable) as error:
            raise gr.Error(str(error)) from None
        return {"prompt": prompt, "model": diffusion_model, "judge": ar_model, "note": plan.note, "rows": rows}

    return generate_data, sweep_data


def _checked_prompt(prompt: str) -> str:
    try:
        return require_prompt(prompt)
    except ConfigError as error:
        raise gr.Error(str(error)) from None
