"""One step of a History as plain data (`Step`: what it changed, its drafts and candidates, its work), what a step
did as History.changes reports it (`StepChanges`), and writing a step into a canvas (`apply_step`, `write`).
Left out: everything derived over several steps (history.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Step:
    positions: list[int]  # answer-relative canvas positions changed in this step
    tokens: list[int]  # the token now at each of those positions
    scores: list[float | None]  # the sampler's score for each (None where the algorithm has none)
    seconds: float  # wall time of this step, model forward included
    forward_passes: int  # model forward passes since the start of the run (cumulative)
    # sequence positions the step's forward passes computed (the work: a cached step computes only
    # its block); None where not recorded (AR runs, runs saved before this was kept)
    computed_positions: int | None = None
    # what the same forwards compute without a KV cache (the whole sequence; for a block-causal model
    # everything up to the block's end): the baseline of work_saved(); None where not recorded
    uncached_positions: int | None = None
    # drafts this step proposed for the next one to check, shown as ghosts until then (speculative decoding);
    # answer-relative positions and their tokens, empty where the decoder writes its drafts onto the canvas
    draft_positions: list[int] = field(default_factory=list)
    draft_tokens: list[int] = field(default_factory=list)
    # per changed position (in `positions` order), the model's likeliest tokens there at that moment by its own
    # probabilities (sampling.top_candidates: before temperature and top-p), likeliest first:
    # [[token_id, probability], ...] (up to 5, probabilities rounded to float16 precision); empty where the
    # sampler does not record them (masks written back, decoders without candidates, runs saved before they were)
    candidates: list[list[list]] = field(default_factory=list)


@dataclass(frozen=True)
class StepChanges:
    """What one step did, as answer-relative positions (History.changes)."""
    committed: list[int]  # left the mask (or, with no mask, got their first token) in this step
    revised: list[int]  # held a written token that this step replaced (or masked again)
    drafted: list[int]  # proposed for the next step to check, not written (speculative decoding)
    rejected: list[int]  # drafted by the step before and not kept by this one



def apply_step(canvas: list[int], record: Step) -> None:
    """Write one step's changes into `canvas` in place; a position one past the end appends (AR growth)."""
    for position, token in zip(record.positions, record.tokens):
        write(canvas, position, token)


def write(canvas: list[int], position: int, token: int) -> None:
    """canvas[position] = token, or append it one past the end: write([5], 1, 7) -> [5, 7]."""
    if position == len(canvas):
        canvas.append(token)
    else:
        canvas[position] = token
