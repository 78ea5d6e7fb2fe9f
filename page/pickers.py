"""Which models run here: the preset and model pickers (labels that say why an entry cannot run), the
gate that refuses custom model ids unless the operator allows them (`ModelGate`, UNMASK_ALLOW_CUSTOM_MODELS),
the memory checks before a load (unloading what the new pick does not use; the registry says what is loaded),
and the page's loader.

Left out: the estimate itself (generation.memory), the catalogue (generation.presets), the start preset
(page/start.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch

import generation
from generation import CausalLM, DiffusionLM, ModelUnavailable
from generation import memory, presets
from page.fragments import esc

log = logging.getLogger("unmask.page")

# Off unless the operator says so: on a public Space any visitor could otherwise make the server fetch any hub
# id or read any local path (an unknown id waits out the network's time-outs). `make demo` turns it on.
CUSTOM_MODELS_ENV = "UNMASK_ALLOW_CUSTOM_MODELS"


def custom_models_allowed() -> bool:
    """True when UNMASK_ALLOW_CUSTOM_MODELS is 1 / true / yes / on."""
    return os.environ.get(CUSTOM_MODELS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelGate:
    """The page's loader behind its list of models: any other name is refused, before a config is read or
    the network is touched, unless custom ids are allowed. Frozen and picklable (ZeroGPU pickles the loader)."""

    load: Callable  # name -> DiffusionLM | CausalLM
    names: frozenset[str]  # the pickers' models (presets, and those the operator named): always allowed
    custom: bool  # the operator allows any hub id or local path

    def check(self, name: str) -> None:
        if self.custom or name in self.names:
            return
        raise ModelUnavailable(
            f"{name!r} is not one of this page's models, and custom model ids are off on this server. Pick one from "
            f"the list: {', '.join(sorted(self.names))}. (The operator can allow any hub id or local path by "
            f"setting {CUSTOM_MODELS_ENV}=1.)")

    def __call__(self, name: str):
        self.check(name)
        return self.load(name)


def load_checked(load, name: str, kind: str, alongside: tuple[str, ...] = ()):
    """load(name), refused first if the page's gate does not allow it or it will not fit beside `alongside`,
    checked to be the kind this panel runs."""
    if not name or not str(name).strip():
        raise ModelUnavailable("no model picked; choose one from the list")
    name = str(name).strip()
    if isinstance(load, ModelGate):
        load.check(name)  # before the memory check, which may read a config from the hub
    refuse_if_too_big(name, alongside)
    model = load(name)
    wanted = DiffusionLM if kind == generation.DIFFUSION else CausalLM
    if not isinstance(model, wanted):
        other = "an autoregressive" if isinstance(model, CausalLM) else "a diffusion"
        raise ModelUnavailable(f"{name!r} is {other} model; pick it in the other panel's list")
    return model


def app_device() -> str | None:
    """Where the page loads models: "cuda:0" on a Space with a GPU (ZeroGPU attaches one device, and
    accelerate cannot plan device_map="auto" before it is attached), else the loader's default."""
    if presets.profile() == "space" and torch.cuda.is_available():
        return "cuda:0"
    return None


def default_load(name: str):
    """The page's loader (module level, so ZeroGPU can pickle it into its GPU process)."""
    return generation.load_model(name, device=app_device())


@lru_cache(maxsize=256)
def verdict(name: str) -> memory.Verdict:
    """Whether `name` alone fits this machine, decided once per name (reads configs, loads no weights)."""
    return memory.can_run(name, app_device())


@lru_cache(maxsize=64)
def preset_verdict(preset: presets.Preset) -> memory.Verdict:
    """Whether a preset's two models fit this machine together, decided once per preset: the preset
    picker's label and the start preset (page/start.py) both read it."""
    return memory.can_run(preset.diffusion, app_device(), alongside=(preset.autoregressive,))


def refuse_if_too_big(name: str, alongside: tuple[str, ...]) -> None:
    """ModelUnavailable with can_run's message when `name` and its not-yet-loaded partners will not fit now,
    even after unloading the models the pick does not use."""
    loaded = generation.loaded_models()  # their memory is in use already: not to count again
    if name in loaded:
        return
    picked = (name, *(n.strip() for n in alongside if n and n.strip()))
    partners = tuple(n for n in picked[1:] if n not in loaded)
    for group in ((), partners):  # alone first: a partner of unknown size makes can_run give up, not pass
        fits = memory.can_run(name, app_device(), alongside=group)
        if not fits.ok and make_room(keep=picked):
            fits = memory.can_run(name, app_device(), alongside=group)
        if not fits.ok:
            raise ModelUnavailable(fits.message)


def make_room(keep: tuple[str, ...]) -> bool:
    """Unload the models this process holds that the picked pair does not use (the previous preset's,
    after a switch on a GPU). True when some were dropped, so the memory check is worth repeating."""
    stale = generation.loaded_models() - set(keep)
    if not stale:
        return False
    generation.unload_models(keep=keep)
    log.info("unloaded %s to make room for %s", ", ".join(sorted(stale)), ", ".join(keep))
    return True


def preload(preset: presets.Preset, load=default_load) -> list[str]:
    """With UNMASK_PROFILE=space and CUDA present, load the start preset's pair at startup (ZeroGPU only
    lets weights move to its GPU then); elsewhere nothing. Returns the names loaded."""
    if presets.profile() != "space" or not torch.cuda.is_available():
        return []
    done = []
    for name in (preset.diffusion, preset.autoregressive):
        try:
            refuse_if_too_big(name, ())
            load(name)
        except ModelUnavailable as error:
            log.warning("not preloading %s: %s", name, error)
            continue
        done.append(name)
    return done


def picker_label(name: str) -> str:
    """The picker entry: the name, plus the short reason when it cannot run here, e.g.
    "Dream-org/Dream-v0-Instruct-7B — cannot run here: needs ~34.6 GiB, 21.6 GiB RAM free"."""
    fits = verdict(name)
    if fits.ok:
        return name
    if fits.need_bytes is None or fits.free_bytes is None:
        return f"{name} — cannot run here"
    where = "GPU" if fits.device.startswith("cuda") else "RAM"
    return f"{name} — cannot run here: needs ~{memory.gib(fits.need_bytes)}, {memory.gib(fits.free_bytes)} {where} free"


def picker_choices(names) -> list[tuple[str, str]]:
    """(label, name) pairs for a gr.Dropdown: the value stays the bare name."""
    return [(picker_label(name), name) for name in names]


def matching_preset(diffusion: str | None, ar: str | None) -> presets.Preset | None:
    return next((p for p in presets.presets() if (p.diffusion, p.autoregressive) == (diffusion, ar)), None)


def preset_named(label: str | None) -> presets.Preset | None:
    return next((p for p in presets.presets() if p.label == label), None)


def preset_choices() -> list[tuple[str, str]]:
    """(label, value) pairs: presets whose two models do not fit here together say so."""
    return [(p.label if preset_verdict(p).ok else f"{p.label} — cannot run here", p.label) for p in presets.presets()]


def picker_note(diffusion: str | None, ar: str | None) -> str:
    """Under the pickers: why this pairing (for a preset), and the full reason for a picked model that cannot run."""
    lines = []
    preset = matching_preset(diffusion, ar)
    if preset is not None:
        lines.append(f'<div class="um-fit-why">{esc(preset.why)}.</div>')
    for role, name in (("Diffusion", diffusion), ("Autoregressive", ar)):
        name = (name or "").strip()
        if name and not verdict(name).ok:
            lines.append(f'<div class="um-fit-no"><b>{role}: {esc(name)} cannot run here.</b> '
                         f'{esc(verdict(name).message)}.</div>')
    return f'<div class="um-fit">{"".join(lines)}</div>'


def model_choices() -> tuple[list[str], list[str]]:
    """Both pickers' names in preset order (the embedded pair first locally, the large ones on a Space)."""
    order = presets.presets()
    diffusion = list(dict.fromkeys([*(p.diffusion for p in order), *presets.DIFFUSION_CHOICES]))
    ar = list(dict.fromkeys([*(p.autoregressive for p in order), *presets.AR_CHOICES]))
    return diffusion, ar
