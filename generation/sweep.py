"""Quality against steps: run one diffusion model at several settings on one prompt and judge every answer.

The FS-DFM figure in miniature (arXiv 2509.20624: perplexity and entropy against steps): a setting is a dict of
`DiffusionConfig` overrides on a base config (`{"steps": 16}`, `{"threshold": 0.9}`, and whatever
fields the config gains, e.g. a cache mode), so new kinds of rows need no new code. Every answer is
scored the same way, with generation.metrics: generative perplexity under the AR model (the judge,
conditioned on the same chat prompt) and unigram entropy in nats; the AR model's own answer is the
reference row, scored by itself.

- `steps_ladder(gen_length, blocks)`: gen_length x {1, 1/2, 1/4, 1/8}, ascending, each a valid step count;
- `default_settings(config, model)`: the ladder, plus a threshold row where the decoder can take one
  (a decoder that takes no steps, e.g. speculative: its fallback's rows in the model's blocks, then its own row);
- `stream_sweep(...)`: a generator that yields a `SweepRow` per finished setting (the AR reference
  first), and stops cleanly on a `threading.Event`; `run_sweep(...)` collects the rows.

Data only: no text beyond what the judge needs, no HTML (visualize.sweep draws it). Left out: several
prompts or seeds per setting (training/evaluate.py averages over held-out prompts).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .autoregressive import generate_autoregressive
from .config import ARConfig, ConfigError, DiffusionConfig
from .history import History
from .metrics import perplexity, teacher_nll, unigram_entropy
from .models import CausalLM, DiffusionLM
from .runs import decoder_for
from .sampler import diffuse

LADDER_FRACTIONS = 4  # gen_length x 1, 1/2, 1/4, 1/8: the published sweep's step budgets 2^i
THRESHOLD = 0.9  # Fast-dLLM's (and Fast-dLLM v2's) default confidence threshold


@dataclass
class SweepRow:
    """One setting's answer and its scores."""

    label: str  # e.g. "16 steps", "threshold 0.9", "AR reference"
    kind: str  # generation.DIFFUSION or generation.AUTOREGRESSIVE
    overrides: dict  # the DiffusionConfig overrides of this row ({} for the AR reference)
    steps: int  # steps the run took (threshold rows: decided by the model)
    seconds: float  # generation wall time, judging excluded
    answer_tokens: int  # answer length in the model's tokens (cut at the first stop token)
    judged_tokens: int  # the same answer in the judge's tokens
    nll: float  # sum of -log p under the judge, nats
    perplexity: float  # exp(nll / judged_tokens); NaN for an empty answer
    entropy: float  # unigram entropy of the answer's token ids, nats
    history: History  # the whole run, for the coloured answer and the export

    def to_dict(self) -> dict:
        """Plain JSON-ready data (the History as its own JSON object); NaN perplexity becomes None."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "history"}
        if data["perplexity"] != data["perplexity"]:
            data["perplexity"] = None
        return {**data, "history": json.loads(self.history.to_json())}

    @classmethod
    def from_dict(cls, data: dict) -> SweepRow:
        """Read what to_dict wrote: SweepRow.from_dict(row.to_dict()) == row (NaN perplexity included)."""
        values = dict(data)
        values["history"] = History.from_json(json.dumps(values["history"]))
        values["perplexity"] = float("nan") if values["perplexity"] is None else values["perplexity"]
        return cls(**values)


def steps_ladder(gen_length: int, blocks: int = 1, fractions: int = LADDER_FRACTIONS) -> list[int]:
    """Step counts gen_length x {1, 1/2, 1/4, ...}, ascending, kept only when whole and a multiple of the
    block count: steps_ladder(64) -> [8, 16, 32, 64]; steps_ladder(64, blocks=4) -> [8, 16, 32, 64];
    steps_ladder(12) -> [3, 6, 12]."""
    ladder = {gen_length // 2 ** i for i in range(fractions) if gen_length % 2 ** i == 0}
    return sorted(s for s in ladder if s >= blocks and s % blocks == 0)


def default_settings(config: DiffusionConfig, model=None) -> list[dict]:
    """The steps ladder for `config`, plus a Fast-dLLM threshold row when the decoder that runs it takes one
    (a model that runs its own loop ignores thresholds)."""
    method = decoder_for(model, config)
    if not method.takes_steps:  # its fallback's rows first, then its own
        unmasking = unmasking_overrides(config, model)
        ladder = default_settings(dataclasses.replace(config, **unmasking), model)
        return [{**unmasking, **row} for row in ladder] + [{"algorithm": method.name}]
    settings: list[dict] = [{"steps": steps} for steps in steps_ladder(config.gen_length, config.num_blocks)]
    if method.takes_threshold:
        settings.append({"threshold": THRESHOLD})
    return settings


def unmasking_overrides(config: DiffusionConfig, model=None) -> dict:
    """What a steps row changes on `config` so that steps apply: nothing, or for a decoder that takes none
    (speculative) its fallback in the model's trained blocks (the draft length without a model)."""
    method = decoder_for(model, config)
    if method.takes_steps:
        return {}
    return {"algorithm": method.fallback, "block_length": getattr(model, "block_size", None) or config.block}


def configure(base: DiffusionConfig, overrides: dict) -> DiffusionConfig:
    """`base` with `overrides`, validated; ConfigError names the row when a field is unknown or a value invalid."""
    known = {field.name for field in dataclasses.fields(DiffusionConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"sweep setting {overrides}: DiffusionConfig has no field {', '.join(unknown)}")
    try:
        return dataclasses.replace(base, **overrides)
    except ConfigError as error:
        raise ConfigError(f"sweep setting {overrides}: {error}") from None


def label(overrides: dict) -> str:
    """A row's name: label({"steps": 16}) -> "16 steps"; label({"threshold": 0.9}) -> "threshold 0.9"."""
    parts = [f"{value} steps" if name == "steps" else f"{name} {value}" for name, value in overrides.items()]
    return ", ".join(parts) or "base settings"


def stream_sweep(model: DiffusionLM, judge: CausalLM, messages: list[dict], config: DiffusionConfig,
                 settings: list[dict] | None = None, ar_config: ARConfig | None = None,
                 stop: threading.Event | None = None) -> Iterator[SweepRow]:
    """Yield the AR reference row, then one row per setting, each as soon as it is judged.

    Every setting is validated before anything runs (ConfigError). A set `stop` ends the sweep after
    the run in progress, which it cuts short and does not yield."""
    settings = default_settings(config, model) if settings is None else settings
    configs = [configure(config, overrides) for overrides in settings]
    ar_config = ar_config or ARConfig(max_new_tokens=config.gen_length, temperature=config.temperature,
                                      top_p=config.top_p, top_k=config.top_k,
                                      repetition_penalty=config.repetition_penalty,
                                      dry_multiplier=config.dry_multiplier, seed=config.seed)
    judge_prompt = judge.prompt_ids(messages)
    reference = generate_autoregressive(judge, judge_prompt, ar_config, stop)
    if reference.stopped:
        return
    yield _row("AR reference", {}, reference, reference.answer_ids(), judge, judge_prompt)
    prompt_ids = model.prompt_ids(messages)
    same_vocabulary = shares_vocabulary(model.tokenizer, judge.tokenizer)
    for overrides, row_config in zip(settings, configs):
        if stop is not None and stop.is_set():
            return
        history = diffuse(model, prompt_ids, row_config, stop)
        if history.stopped:
            return
        answer = history.answer_ids()
        judged = answer if same_vocabulary else retokenize(answer, model.tokenizer, judge.tokenizer)
        yield _row(label(overrides), dict(overrides), history, judged, judge, judge_prompt)


def run_sweep(model: DiffusionLM, judge: CausalLM, messages: list[dict], config: DiffusionConfig,
          settings: list[dict] | None = None, ar_config: ARConfig | None = None,
          stop: threading.Event | None = None) -> list[SweepRow]:
    """All rows of `stream_sweep`, collected."""
    return list(stream_sweep(model, judge, messages, config, settings, ar_config, stop))


def shares_vocabulary(model_tokenizer, judge_tokenizer) -> bool:
    """True when the judge reads the model's token ids as they are (the embedded pair, Dream and Qwen2.5);
    LLaDA and Llama 3 do not share a vocabulary."""
    if model_tokenizer is judge_tokenizer or model_tokenizer is None or judge_tokenizer is None:
        return True
    return model_tokenizer.get_vocab() == judge_tokenizer.get_vocab()


def retokenize(answer_ids: list[int], model_tokenizer, judge_tokenizer) -> list[int]:
    """The answer in the judge's tokens, through its text (decoded whole, special tokens dropped)."""
    text = model_tokenizer.decode(answer_ids, skip_special_tokens=True)
    return judge_tokenizer.encode(text, add_special_tokens=False)


def _row(name: str, overrides: dict, history: History, judged: list[int], judge: CausalLM,
         judge_prompt: list[int]) -> SweepRow:
    answer = history.answer_ids()
    nll = teacher_nll(judge, judge_prompt, judged)
    return SweepRow(label=name, kind=history.kind, overrides=overrides, steps=len(history.steps),
                    seconds=history.seconds, answer_tokens=len(answer), judged_tokens=len(judged), nll=nll,
                    perplexity=perplexity(nll, len(judged)), entropy=unigram_entropy(answer), history=history)

