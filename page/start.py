"""Where the page starts: the first preset of the profile's order that fits the hardware found at start
(GPU memory, or RAM where there is no GPU, where a large preset is never the start), by the estimate
the preset picker shows, and the one line that says why. `python -m page.start` prints the README's
Space hardware table from the same estimate (tests/test_page_start.py keeps the two equal).

Left out: the estimate (generation.memory), the order (generation.presets), the picker labels (pickers.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from generation import memory, presets
from generation.dtypes import default_device
from generation.presets import Preset
from page.pickers import app_device, preset_verdict


@dataclass(frozen=True)
class Start:
    preset: Preset
    reason: str  # one line for the page: the hardware found, and why this preset


def start_preset() -> Start:
    """Where this machine starts, decided with the preset picker's own verdicts (taken once per preset)."""
    order = presets.presets()
    gpu = default_device(app_device()).startswith("cuda")
    return choose_start(order, {p: preset_verdict(p) for p in order}, gpu)


def choose_start(order: list[Preset], verdicts: dict[Preset, memory.Verdict], gpu: bool) -> Start:
    """The first preset in `order` whose pair fits (a large one only on a GPU); the smallest when none does."""
    candidates = [p for p in order if gpu or not p.large] or order
    chosen = next((p for p in candidates if verdicts[p].ok), None)
    if chosen is None:
        chosen = min(candidates, key=lambda p: verdicts[p].need_bytes or 0)
    skipped = [p for p in order[:order.index(chosen)] if p in candidates]  # the ones before it that do not fit
    return Start(chosen, _reason(chosen, verdicts, skipped, gpu, [p for p in order if p.large]))


def _reason(chosen: Preset, verdicts: dict[Preset, memory.Verdict], skipped: list[Preset], gpu: bool,
            large: list[Preset]) -> str:
    """E.g. "No GPU here (22.6 GiB of RAM free): starting on SmolLM2 135M block diffusion vs SmolLM2 135M (~4.9 GiB);
    the large presets need a GPU with ~36.6 GiB or more." """
    verdict = verdicts[chosen]
    free = memory.gib(verdict.free_bytes) if verdict.free_bytes is not None else "unmeasured memory"
    where = f"GPU with {free} free" if gpu else f"No GPU here ({free} of RAM free)"
    need = f" (~{memory.gib(verdict.need_bytes)})" if verdict.need_bytes is not None else ""
    line = f"{where}: starting on {chosen.label}{need}"
    if not verdict.ok:
        return f"{line}, the smallest preset, though it does not fit either."
    if not gpu and large:
        on_gpu = [n for n in (memory.needed_for(_pair(p), "cuda") for p in large) if n is not None]
        with_size = f" with ~{memory.gib(min(on_gpu))} or more" if on_gpu else ""
        return f"{line}; the large presets need a GPU{with_size}."
    needs = [verdicts[p].need_bytes for p in skipped if verdicts[p].need_bytes is not None]
    if needs:
        return f"{line}; larger presets need ~{memory.gib(min(needs))} or more."
    return f"{line}, the first preset that fits."


def _pair(preset: Preset) -> tuple[str, str]:
    return preset.diffusion, preset.autoregressive


# Space hardware: what its page calls it, its device, and the memory the estimate plans with (GiB): a
# little under the nominal size (the CUDA context, the OS); ZeroGPU's is what memory.py plans with there.
SPACE_HARDWARE = (
    ("CPU basic (16 GB RAM)", "cpu", 14),
    ("CPU upgrade (32 GB RAM)", "cpu", 30),
    ("Nvidia T4 (16 GB)", "cuda", 15),
    ("Nvidia A10G or L4 (24 GB)", "cuda", 22),
    ("Nvidia L40S (48 GB)", "cuda", 44),
    ("ZeroGPU (a 70 GB slice of an H200)", "cuda", memory.ZERO_GPU_DEFAULT_GB),
    ("Nvidia A100 or H100 (80 GB)", "cuda", 79),
    ("Nvidia H200 (141 GB)", "cuda", 139),
)


def hardware_table() -> str:
    """The README's tables: what each preset needs, and where each Space hardware starts (UNMASK_PROFILE=space).
    From the model cards' parameter counts, so the README does not depend on this machine's hub cache."""
    rows = ["| preset | needs on a GPU (bf16) | needs on CPU (RAM) |", "|---|---|---|"]
    for p in presets.PRESETS:
        gpu, cpu = (memory.needed_for(_pair(p), device, card_counts=True) for device in ("cuda", "cpu"))
        rows.append(f"| {p.label} | ~{memory.gib(gpu)} | ~{memory.gib(cpu)} |")
    rows += ["", "| Space hardware | planned with | starts on | also runs |", "|---|---|---|---|"]
    order = presets.presets("space")
    for name, device, size in SPACE_HARDWARE:
        verdicts = {p: _planned(p, device, int(size * 2**30)) for p in order}
        start = choose_start(order, verdicts, gpu=device == "cuda").preset
        others = [p.label for p in order if p != start and verdicts[p].ok and (device == "cuda" or not p.large)]
        rows.append(f"| {name} | {size:g} GiB | {start.label} | {', '.join(others) or '—'} |")
    return "\n".join(rows)


def _planned(preset: Preset, device: str, free: int) -> memory.Verdict:
    need = memory.needed_for(_pair(preset), device, card_counts=True)
    return memory.Verdict(need <= free, "", need, free, device)


if __name__ == "__main__":
    print(hardware_table())
