"""page/start.py: the page starts on the first preset of the profile's order that fits the hardware it
finds (a faked device and memory meter here), says why in one line, and the README's hardware table is
the one the estimate prints."""

import re
from pathlib import Path

import pytest
import torch

from generation import dtypes, memory, presets
from page import pickers
from page.start import hardware_table, start_preset

README = Path(__file__).resolve().parent.parent / "README.md"
GiB = 2**30


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """The page starts before any model loads: the AR model's CPU dtype is not timed yet (generation/dtypes.py),
    whatever earlier tests in this process loaded."""
    monkeypatch.setattr(dtypes, "_cpu_step_ms", {})
    pickers.verdict.cache_clear()
    pickers.preset_verdict.cache_clear()


@pytest.fixture
def machine(monkeypatch):
    """machine(gpu=80): a GPU with 80 GiB free; machine(ram=16): no GPU, 16 GiB of RAM free."""
    def fake(gpu: float | None = None, ram: float = 16, profile: str = "space"):
        monkeypatch.setenv(presets.PROFILE_ENV, profile)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu is not None)
        monkeypatch.setattr(memory, "free_memory",
                            lambda device: int((gpu if str(device).startswith("cuda") else ram) * GiB))
        pickers.verdict.cache_clear()
        pickers.preset_verdict.cache_clear()
    yield fake
    pickers.verdict.cache_clear()
    pickers.preset_verdict.cache_clear()


def is_embedded_pair(preset):
    return (preset.diffusion, preset.autoregressive) == (presets.BLOCK_DIFFUSION_SMOLLM2, presets.AR_SMOLLM2)


def test_a_cpu_only_space_starts_on_the_embedded_pair_and_says_a_gpu_is_needed(machine):
    machine(gpu=None, ram=16)
    start = start_preset()
    assert is_embedded_pair(start.preset)
    assert re.fullmatch(r"No GPU here \(16\.0 GiB of RAM free\): starting on .+ \(~\d+\.\d GiB\); "
                        r"the large presets need a GPU with ~\d+\.\d GiB or more\.", start.reason)


def test_a_cpu_with_ram_for_a_7b_pair_still_starts_small(machine):
    """A large preset needs a GPU: RAM that holds it is not reason enough to start a 7B model on a CPU."""
    machine(gpu=None, ram=256)
    assert is_embedded_pair(start_preset().preset)


def test_an_80_gb_gpu_starts_on_the_7_8b_pair_and_names_what_the_larger_one_needs(machine):
    machine(gpu=80)
    start = start_preset()
    assert start.preset.large and 7e9 < presets.KNOWN_PARAMETERS[start.preset.diffusion] < 8.1e9
    assert start.reason.startswith("GPU with 80.0 GiB free: starting on Dream 7B vs Qwen2.5 7B")
    larger = pickers.preset_verdict(presets.presets()[0]).need_bytes
    assert start.reason.endswith(f"larger presets need ~{memory.gib(larger)} or more.")


def test_a_24_gb_gpu_starts_on_the_first_preset_whose_pair_fits(machine):
    machine(gpu=24)
    start = start_preset()
    fits = [p for p in presets.presets() if pickers.preset_verdict(p).ok]
    assert start.preset == fits[0] and not start.preset.large  # no 7B pair fits in 24 GiB with its partner
    assert pickers.verdict(presets.DREAM_INSTRUCT).ok  # though Dream alone would


def test_the_largest_gpu_starts_on_the_largest_preset(machine):
    machine(gpu=141)
    largest = max(presets.PRESETS, key=lambda p: presets.KNOWN_PARAMETERS[p.diffusion])
    assert start_preset().preset == largest


@pytest.mark.parametrize("gpu,ram", [(None, 6), (None, 16), (None, 32), (None, 512), (8, 16), (16, 16), (24, 16),
                                     (40, 16), (48, 16), (70, 16), (80, 16), (141, 16), (1000, 16)])
@pytest.mark.parametrize("profile", ["space", "local"])
def test_no_start_preset_shows_cannot_run_here(machine, gpu, ram, profile):
    machine(gpu=gpu, ram=ram, profile=profile)
    start = start_preset().preset
    labels = dict((value, label) for label, value in pickers.preset_choices())
    assert "cannot run here" not in labels[start.label]
    assert "cannot run here" not in pickers.picker_label(start.diffusion) + pickers.picker_label(start.autoregressive)


def test_where_nothing_fits_it_starts_on_the_smallest_and_says_so(machine):
    machine(gpu=None, ram=1)
    start = start_preset()
    assert is_embedded_pair(start.preset) and "does not fit either" in start.reason


def test_the_readme_hardware_table_is_the_one_the_estimate_prints():
    assert hardware_table() in README.read_text(), "README's Space tables are stale: paste `python -m page.start`"


def test_the_readme_quotes_the_start_line_the_page_shows(machine):
    machine(gpu=None, ram=14)
    assert start_preset().reason in " ".join(README.read_text().split())
