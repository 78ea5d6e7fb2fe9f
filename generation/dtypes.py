"""Where and in which dtype a model loads: one decision, asked by the loader (`registry.load_model`) and
by the memory estimate (`memory.can_run`), so a verdict and the load that follows it agree.

CUDA when present, in bf16. On CPU, bf16 for diffusion models: a whole-sequence forward (a diffusion
step) takes about half as long in bf16 (`python -m bench.cpu_dtype` measures it).
For the embedded AR model (TIMED_ON_CPU), whichever of bf16 and float32 takes the shorter one-token
step on this CPU, timed at its first load (`one_token_step_ms`; registry.py loads it in float32, casts
a copy to bf16 and keeps the faster). The answer differs by CPU (float32 won on an Intel Xeon, bf16 on an
AMD EPYC; each evaluation records both, docs/results.md), and the page's AR panel, the race's baseline,
should run at its best. Until it is timed, and for other AR models on CPU (a bf16 copy of a
large model would double its memory for a while), float32.

A model's kind comes from the catalogue (presets.DIFFUSION_CHOICES, which holds every registered
diffusion model), else from its config.json's model_type (a diffusion family's, families.py); anything else is AR.
Left out: loading (registry.py), the estimate (memory.py).
"""

from __future__ import annotations

import statistics
import time

import torch

from .checkpoints import read_json
from .families import FAMILIES
from .models import ModelUnavailable
from .presets import AR_CHOICES, AR_SMOLLM2, DIFFUSION_CHOICES

TIMED_ON_CPU = (AR_SMOLLM2,)  # AR models loaded on CPU in the dtype that steps faster here
_cpu_step_ms: dict[str, dict[torch.dtype, float]] = {}  # their timings, once measured (registry.py)

# config.json model_types of the diffusion families' checkpoints (what registry.FAMILY_LOADERS loads)
DIFFUSION_MODEL_TYPES = tuple(model_type for family in FAMILIES for model_type in family.model_types)


def device_dtype(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None, *,
                 cache_only: bool = False) -> tuple[str, torch.dtype]:
    """(device, dtype) that load_model uses for this model; an explicit device or dtype is kept as given.

    device_dtype("smollm2-135m-diffusion", "cpu") == ("cpu", torch.bfloat16); for "smollm2-135m-instruct",
    ("cpu", the faster dtype once timed, else torch.float32). cache_only: read no config from the network (the
    estimate's way).
    """
    device = default_device(device)
    if dtype is None:
        on_gpu = str(device).startswith("cuda")
        if on_gpu or is_diffusion(name_or_path, cache_only=cache_only):
            dtype = torch.bfloat16
        else:
            dtype = fastest_on_cpu(name_or_path) or torch.float32
    return device, dtype


def fastest_on_cpu(name: str) -> torch.dtype | None:
    """The dtype whose one-token step was the shorter on this CPU, once `record_cpu_steps` has the timing."""
    step_ms = _cpu_step_ms.get(name)
    return min(step_ms, key=step_ms.get) if step_ms else None


def cpu_step_ms(name: str) -> dict[torch.dtype, float] | None:
    """Each dtype's one-token step in ms, as timed at the model's first CPU load; None before."""
    return _cpu_step_ms.get(name)


def record_cpu_steps(name: str, step_ms: dict[torch.dtype, float]) -> None:
    _cpu_step_ms[name] = dict(step_ms)


@torch.no_grad()
def one_token_step_ms(modules: dict, context: int = 200, repeats: int = 8) -> dict:
    """{key: median ms of one AR decoding step, one new token over a `context`-token KV cache} for each
    causal LM module on CPU; the modules take turns, so load from elsewhere on the machine falls on each alike."""
    vocab = min(module.config.vocab_size for module in modules.values())
    x = torch.randint(0, min(vocab, 1000), (1, context + repeats + 1), generator=torch.Generator().manual_seed(0))
    caches = {key: module(x[:, :context], use_cache=True).past_key_values for key, module in modules.items()}
    times: dict = {key: [] for key in modules}
    for i in range(context, context + repeats + 1):  # the first step of each warms it up
        for key, module in modules.items():
            began = time.perf_counter()
            module(x[:, i:i + 1], past_key_values=caches[key], use_cache=True, logits_to_keep=1)
            times[key].append(time.perf_counter() - began)
    return {key: 1e3 * statistics.median(seconds[1:]) for key, seconds in times.items()}


def default_device(device: str | None = None) -> str:
    """The device asked for, else "cuda" when present, else "cpu"."""
    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_diffusion(name_or_path: str, cache_only: bool = False) -> bool:
    """A catalogue diffusion name, or a checkpoint whose config names a diffusion family."""
    if name_or_path in DIFFUSION_CHOICES:
        return True
    if name_or_path in AR_CHOICES:  # known AR: no need to read its config
        return False
    try:
        config = read_json(name_or_path, "config.json", cache_only=cache_only)
    except ModelUnavailable:
        return False
    return (config or {}).get("model_type") in DIFFUSION_MODEL_TYPES
