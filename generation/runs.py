"""Run policy: which decoder runs a model on a config, the config as the model runs it, and what the page says.

`prepare_run(model, config, infilling)` is the one place that decides: a model that runs its own loop gets its
own (protocols.RunsOwnLoop), anything else the decoder its config names (decoders.py); a decoder that cannot
fill blanks is refused, or on the page (`lenient`) handed to its fallback with a note; a model that cannot take
the decoder or cache mode is refused with a message that says why; a block-causal model's trained block size
is the default block length. The sampler (sampler.py) and the page (page/race.py, page/sweep.py) both call it.

Left out: running anything (the decoders' modules do), words for infilling itself (the page says what was given).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import ConfigError, DiffusionConfig, largest_block
from .decoders import OWN_LOOP, Decoder, decoder
from .protocols import runs_own_loop

IGNORED_NAMES = {"block_length": "block length", "algorithm": "algorithm", "temperature": "temperature",
                 "top_p": "top-p", "top_k": "top-k", "alg_temp": "position temperature",
                 "threshold": "confidence threshold", "cfg_scale": "guidance", "eps": "eps",
                 "cache": "cache"}
APPLICABLE_NAMES = {"gen_length": "answer length", "steps": "steps", "seed": "seed"}


@dataclass(frozen=True)
class Run:
    """A prepared run: what runs, with which settings, and the page's words for it."""

    decoder: Decoder
    config: DiffusionConfig  # as the model runs it
    settings_note: str = ""  # the settings a model that runs its own loop ignored
    fallback_note: str = ""  # why another decoder than the one asked for fills the blanks

    @property
    def note(self) -> str:
        """What the decoder says while it runs, e.g. how the canvas fills ("" for most)."""
        return self.decoder.note.format(block=self.config.block)


def decoder_for(model, config: DiffusionConfig) -> Decoder:
    """The decoder that runs `model` on `config`: the model's own loop, or the one the config names."""
    return OWN_LOOP if runs_own_loop(model) else decoder(config.algorithm)


def prepare_run(model, config: DiffusionConfig, infilling: bool = False, lenient: bool = False) -> Run:
    """The run of `model` on `config` (with given tokens when `infilling`), or ConfigError saying why not.

    `lenient` (the page): a model that runs its own loop gets the settings it takes, the rest reset and named
    in `settings_note`; a decoder that cannot fill blanks hands them to its fallback (`fallback_note`)."""
    method, settings_note, fallback_note = decoder_for(model, config), "", ""
    if lenient and method is OWN_LOOP:
        config, settings_note = own_loop_config(model, config)
    if infilling and not method.infills:
        if not (lenient and method.fallback):
            raise ConfigError(method.no_infill.format(model=getattr(model, "name", "") or "this model"))
        fallback_note = f"{method.name.capitalize()} decoding cannot keep given tokens, so {method.fallback} fills them."
        drafts = not method.blocks_divide_canvas  # its block length was a draft length: the model's blocks instead
        method = decoder(method.fallback)
        block = config.block_length
        if drafts and method.blocks_divide_canvas:  # the largest block up to the model's trained size that fits
            block = largest_block(config.gen_length, model.block_size or config.gen_length)
        config = dataclasses.replace(config, algorithm=method.name, block_length=block)
    if method is not OWN_LOOP:  # its own loop checks what it takes
        config = _as_model_runs(model, method, config)
    return Run(method, config, settings_note, fallback_note)


def own_loop_config(model, config: DiffusionConfig) -> tuple[DiffusionConfig, str]:
    """The config a model that runs its own loop takes (it decides), and the note that says what it ignored.

    For DiffusionGemma and DiffusionConfig(temperature=0.5) the note ends "Ignored this run: temperature 0.5."
    """
    applied, ignored = model.applicable_config(config)
    dropped = [f"{IGNORED_NAMES.get(name, name)} {getattr(config, name)}" for name in ignored]
    takes = ", ".join(APPLICABLE_NAMES.get(name, name) for name in model.applicable_settings)
    how = f" ({model.loop_note})" if getattr(model, "loop_note", "") else ""
    note = f"{model.name or 'This model'} runs its own sampler and takes only {takes}{how}. "
    note += f"Ignored this run: {', '.join(dropped)}." if dropped else "The other settings do not apply."
    return applied, note


def _as_model_runs(model, method: Decoder, config: DiffusionConfig) -> DiffusionConfig:
    """The config as this model runs it (a block-causal model's trained block size is the default
    block length), or ConfigError for a cache mode or a decoder the model cannot take."""
    block_causal = model.block_size is not None
    if method.block_causal_only and not (block_causal and model.shift_logits):
        raise ConfigError(f"{method.name} decoding needs a block-causal model's causal path; "
                          f"{model.name or 'this model'} has none: pick another algorithm")
    if config.cache != "none" and not model.takes_kv_cache:
        raise ConfigError(f"model {model.name!r} takes no KV cache (not a transformers decoder); use cache='none'")
    if block_causal and config.cache == "dual":
        raise ConfigError("a block-causal model never looks right of its block, so there is no suffix to cache; "
                          "use cache='prefix' (exact for it)")
    if block_causal and config.cfg_scale > 0:
        raise ConfigError("cfg_scale (classifier-free guidance) is for bidirectional models, not block-causal ones")
    if block_causal and config.block_length is None:
        try:
            return dataclasses.replace(config, block_length=model.block_size)
        except ConfigError as error:
            raise ConfigError(f"model {model.name!r} decodes in blocks of {model.block_size} (its trained "
                              f"size) unless block_length says otherwise: {error}") from error
    return config
