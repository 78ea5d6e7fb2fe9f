"""The settings a user can touch: the controls' values (`Settings`) turned into the two configs, the
timing modes and replay timelines, the one-line help text under every control, and the settings the
page starts with for a diffusion model (`recommended_settings`, from generation.recommended_config).

Validation itself lives in generation.config (ConfigError); this room only converts what the page
sends (floats, None, text) and says what each control means. Left out: layout (app.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from generation import ARConfig, ConfigError, DiffusionConfig, recommended_config
from generation.config import PENALTIES
from generation.infill import DEFAULT_BLANK, Spec, parse_constraints, parse_template

TOGETHER = "Together (live race, both share the machine)"
ONE_AFTER_THE_OTHER = "One after the other (fair timings)"
MODES = (TOGETHER, ONE_AFTER_THE_OTHER)

ANSWER = "Answer the prompt"
BLANKS = "Fill the blanks (___)"
WORDS = "Keep words at positions (position:word)"
TASKS = (ANSWER, BLANKS, WORDS)

SAME_SECONDS = "same seconds"
SAME_SHARE = "same share of the run"
TIMELINES = (SAME_SECONDS, SAME_SHARE)

HOW_TO_READ = """\
<details class="um-how" open><summary>How to read this</summary>
<p>Each box is one token. Its colour says <i>when</i> it was written: early steps are dark, late steps are light
(the scale above the panels, the same for both). The diffusion model starts from a canvas of blank ░ boxes and
fills them in any order, so its colours come out scattered; the autoregressive model writes left to right, so its
colours form a smooth gradient. Outlined boxes changed in the step shown; faded ones come after the end of the
answer (room the answer did not use).</p>
<p>Step through a run with ◀ ▶ or the ← → keys; the line under each canvas says what that step did. Hover or tap
a token to see its step and the five words the model found likeliest there, with their probabilities.</p>
</details>
"""  # open on a first visit; the page's script folds it on later ones (app.FIRST_VISIT_JS)

SWEEP_HELP = """\
Runs the diffusion model on the prompt above at several step counts (the answer length × 1, ½, ¼, ⅛, or
your own list) and, where the algorithm allows, with Fast-dLLM's confidence threshold. The autoregressive
model judges every answer: **generative perplexity** (how surprised it is by the answer, given the prompt;
lower = more fluent) and **unigram entropy** (how varied the tokens are; very low = repetitive text, which
can game perplexity). Its own answer is the dashed reference line. Wall time is on the right axis. Uses the
settings above (answer length, block length, algorithm, temperature, seed); the rows go into the run's JSON export.
"""

SETTING_HELP = {
    "gen_length": "How many tokens the answer may have: the number of boxes on the diffusion canvas.",
    "steps": "Denoising steps. Fewer steps reveal more tokens at once: faster, usually rougher.",
    "block_length": "The canvas fills block by block, left to right; inside a block any order. "
                    "Equal to the answer length = one block. Speculative: the tokens drafted each step.",
    "algorithm": "The rule that picks which boxes to reveal each step (low_confidence: the ones the model "
                 "is surest of; random: any; speculative, block-diffusion models: the block is drafted at once "
                 "and the model's left-to-right reading keeps the drafts it agrees with).",
    "temperature": "0 = always the likeliest token; higher = more varied words. The page starts at 0.5 with top-p "
                   "0.9 and a repetition penalty of 1.1: at 0 the small models can repeat themselves ('A place where… "
                   "A place where…'); 0.5 repeats less on training prompts and reads about as fluently, higher "
                   "temperatures read worse (python -m bench.defaults: both panels, prompt by prompt, seed by seed).",
    "top_p": "Keeps only the likeliest words summing to this probability (Dream rules and AR). 1 = off.",
    "repetition_penalty": "Above 1, words already in the prompt or the answer become less likely (CTRL's penalty, "
                          "as transformers applies it), in both panels; 1 = off. At the page's 1.1 the first examples "
                          "stop looping (a poem repeating its lines, a list its fruit); the diffusion model then "
                          "commits fewer tokens per step (its drafts were trained without it).",
    "dry_multiplier": "Loop penalty (DRY): a word that would repeat a stretch of the text already written (2 words or "
                      "more, within a line) becomes less likely, the more so the longer the repeat; in both panels. "
                      "0 = off.",
    "alg_temp": "Dream rules: above 0, randomness in *where* to reveal, not only what.",
    "threshold": "Fast-dLLM: reveal every box the model is at least this sure of, in one step (0 = off). "
                 "The number of steps then depends on the model.",
    "seed": "Same seed and settings, same picture: the draws are seeded, so a run at temperature 0.5 is "
            "reproducible. Another seed, another answer: a small model may repeat itself at one seed and not the next.",
    "task": "What the diffusion model writes: a whole answer, only the blanks of your text, or an answer "
            "with words pinned at token positions.",
    "template": "Blanks: ___ is a blank of the default length, ___8 a blank of 8 tokens, e.g. 'The capital of "
                "France is ___, and it is famous for ___8.' Words: position:word pairs, e.g. '0:Once, 5:upon' "
                "(positions count answer tokens from 0).",
    "blank_length": "Tokens in a ___ blank that names no length.",
    "cache": "Reuse keys and values instead of recomputing every position each step: prefix keeps the prompt "
             "and finished blocks, dual also the blanks after the block. Approximate for bidirectional models "
             "(Fast-dLLM v1), exact for block-causal ones; none = the published loop.",
    "mode": "Together shows a live race but both share the CPU; one after the other gives each model "
            "the machine to itself, for honest timings.",
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The controls' values, as the page hands them over (numbers may arrive as floats or None), always by name.
    Its defaults are the page's and its data API's (`DEFAULTS`); DiffusionConfig's are the library's."""

    gen_length: float = 64
    steps: float = 32
    block_length: float | None = 32
    algorithm: str = "low_confidence"
    temperature: float = 0.5  # the page's sampling, for any model: why in SETTING_HELP (bench/defaults.py)
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    dry_multiplier: float = 0.0
    alg_temp: float = 0.0
    threshold: float = 0.0
    seed: float = 0
    cache: str = "none"
    task: str = ANSWER
    template: str = ""
    blank_length: float = DEFAULT_BLANK

    def infill(self) -> Spec | None:
        """What the run is given (infilling), None for a plain answer, or ConfigError for text that cannot be read."""
        if self.task in (None, "", ANSWER):
            return None
        if self.task == BLANKS:
            return parse_template(self.template or "", _whole("default blank length", self.blank_length))
        if self.task == WORDS:
            return parse_constraints(self.template or "")
        raise ConfigError(f"unknown task {self.task!r}; valid: {', '.join(TASKS)}")

    def configs(self) -> tuple[DiffusionConfig, ARConfig]:
        """Both configs, or ConfigError with a message for the page."""
        gen_length = _whole("answer length", self.gen_length)
        block = None if self.block_length in (None, "", 0) else _whole("block length", self.block_length)
        threshold = None if not self.threshold else float(self.threshold)
        diffusion = DiffusionConfig(
            gen_length=gen_length, steps=_whole("steps", self.steps), block_length=block,
            algorithm=self.algorithm, temperature=float(self.temperature), top_p=float(self.top_p),
            repetition_penalty=float(self.repetition_penalty), dry_multiplier=float(self.dry_multiplier),
            alg_temp=float(self.alg_temp), threshold=threshold, seed=_whole("seed", self.seed), cache=self.cache or "none",
        )
        ar = ARConfig(max_new_tokens=gen_length, temperature=float(self.temperature), top_p=float(self.top_p),
                      repetition_penalty=diffusion.repetition_penalty, dry_multiplier=diffusion.dry_multiplier,
                      seed=diffusion.seed)
        return diffusion, ar


DEFAULTS = Settings()  # what the page's controls and its data API start from, unless a model recommends otherwise
RECOMMENDED_FIELDS = ("steps", "block_length", "algorithm", "threshold", "cache")  # what a model change re-applies
PAGE_SAMPLING = ("temperature", "top_p", *PENALTIES, "seed")  # the page's own (DEFAULTS), for any model


def recommended_settings(diffusion_model: str, gen_length: float = Settings.gen_length) -> Settings:
    """The settings the page shows for `diffusion_model` (generation.recommended_config), as control values.

    recommended_settings("smollm2-135m-diffusion", 64) -> Settings(gen_length=64, steps=64, ..., cache="dual")
    """
    config = recommended_config(diffusion_model, _whole("answer length", gen_length))
    return Settings(gen_length=config.gen_length, steps=config.steps, block_length=config.block_length,
                    algorithm=config.algorithm, alg_temp=config.alg_temp, threshold=config.threshold or 0.0,
                    cache=config.cache, **{name: getattr(DEFAULTS, name) for name in PAGE_SAMPLING})


def _whole(name: str, value) -> int:
    """_whole("steps", 32.0) -> 32; 32.5, None or text raise ConfigError."""
    if value is None or isinstance(value, bool):
        raise ConfigError(f"{name} is empty; enter a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)
