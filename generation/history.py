"""`History`: what a generation did, step by step, as plain data.

One type serves both backends. A diffusion run starts from a canvas of `gen_length` tokens
(all masks, or random tokens for models that start from noise) and each step changes some
positions; an autoregressive run starts from an empty canvas and step i appends token i.
Only the changes are stored, so the size grows with the number of changes, not steps x length.
History owns the facts derived from it, so callers do not recompute them: `canvas_at(k)` (the
canvas after step k), `canvases()` (every step's canvas in turn), `as_of(k)` (the whole History as
it was after step k, for replay), `answer_end(canvas)` (where the answer ends), `answer_tokens()`
(answer tokens written so far; an infilling run's given tokens, `fixed`, do not count; per step:
`answer_tokens_per_step()`), the work done (`computed_positions`, `tokens_per_forward()`, `work_saved()`),
`copy()` (a snapshot later steps do not touch), `changes(k)` (what step k committed, revised, drafted and
rejected). `collect(stream)` runs a stream of Histories (either
backend) to its end and returns the last one.

Deliberately left out: text, colours, HTML. Token ids only; decoding happens at the edge.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .steps import Step, StepChanges, apply_step, write

DIFFUSION = "diffusion"
AUTOREGRESSIVE = "autoregressive"


@dataclass
class History:
    kind: str  # DIFFUSION or AUTOREGRESSIVE
    prompt_ids: list[int]
    initial: list[int]  # the canvas before step 1 (masks for masked diffusion; empty for AR)
    mask_id: int | None = None  # the placeholder of a not-yet-committed position (masked diffusion)
    stop_ids: list[int] = field(default_factory=list)  # the answer ends at the first of these
    planned_steps: int | None = None  # steps the run was set up for (None where data-dependent)
    settings: dict = field(default_factory=dict)  # the config the run used, as a plain dict
    model: str = ""  # name of the model that ran
    steps: list[Step] = field(default_factory=list)
    last_changed: list[int | None] = field(default_factory=list)  # per position: step it last changed
    first_committed: list[int | None] = field(default_factory=list)  # per position: step it left the mask
    stopped: bool = False  # True if a stop signal ended the run early
    fixed: list[int] = field(default_factory=list)  # positions given before the run (infilling): never changed

    @classmethod
    def start(cls, kind: str, model, prompt_ids: list[int], initial: list[int], config=None,
              planned_steps: int | None = None, fixed: Iterable[int] = (), stopped: bool = False) -> History:
        """The History of a run that starts now: `model`'s mask id (None for an AR model), stop ids and name,
        the config as a dict. History.start(DIFFUSION, lm, [1, 2], [lm.mask_id] * 8, config) -> 0 steps."""
        return cls(kind=kind, prompt_ids=list(prompt_ids), initial=list(initial),
                   mask_id=getattr(model, "mask_id", None), stop_ids=list(model.stop_ids),
                   planned_steps=planned_steps, settings=config.to_dict() if config is not None else {},
                   model=model.name, fixed=list(fixed), stopped=stopped)

    def __post_init__(self) -> None:
        if not self.last_changed:
            self.last_changed = [None] * len(self.initial)
            self.first_committed = [None] * len(self.initial)
        self._canvas = self.canvas_at(len(self.steps))

    def record(self, positions: list[int], tokens: list[int], scores: list[float | None],
               seconds: float, forward_passes: int, committed: list[int] | None = None,
               computed_positions: int | None = None, uncached_positions: int | None = None,
               draft_positions: Iterable[int] = (), draft_tokens: Iterable[int] = (),
               candidates: Iterable[list[list]] = ()) -> None:
        """Append one step; positions are answer-relative, at most one past the canvas end.

        A position counts as committed in the step it first leaves the mask (or, with no mask, first
        gets a token), unless the sampler says itself which positions it accepted in this step
        (`committed`: DiffusionGemma keeps revising tokens after it has drawn them). `draft_positions` /
        `draft_tokens`: what the step drafted for the next one to check, without writing it; `candidates`: per
        position, the likeliest tokens there (see Step)."""
        step_number = len(self.steps) + 1
        self.steps.append(Step(list(positions), list(tokens), list(scores), seconds, forward_passes,
                               computed_positions, uncached_positions, list(draft_positions), list(draft_tokens),
                               list(candidates)))
        for position, token in zip(positions, tokens):
            if position == len(self._canvas):  # autoregressive growth
                self._canvas.append(token)
                self.last_changed.append(None)
                self.first_committed.append(None)
            was_mask = self._canvas[position] == self.mask_id
            self._canvas[position] = token
            self.last_changed[position] = step_number
            if committed is None and self.first_committed[position] is None and (was_mask or self.mask_id is None):
                self.first_committed[position] = step_number
        for position in committed or ():
            if self.first_committed[position] is None:
                self.first_committed[position] = step_number

    @property
    def canvas(self) -> list[int]:
        """The canvas after the latest step (a copy)."""
        return list(self._canvas)

    @property
    def length(self) -> int:
        """Canvas positions so far (fixed for diffusion, growing for AR)."""
        return len(self._canvas)

    def canvas_at(self, step: int) -> list[int]:
        """The canvas after `step` steps (0 = the initial canvas)."""
        canvas = list(self.initial)
        for record in self.steps[:step]:
            apply_step(canvas, record)
        return canvas

    def canvases(self) -> Iterator[tuple[int, Step, list[int]]]:
        """(step number, its record, the canvas after it) for every step in order; each canvas is a new list."""
        canvas = list(self.initial)
        for number, record in enumerate(self.steps, start=1):
            apply_step(canvas, record)
            yield number, record, list(canvas)

    def answer_end(self, canvas: Sequence[int] | None = None) -> int:
        """Where the answer ends in `canvas` (default: the latest): the first stop token, else the canvas end.

        With stop_ids [0]: answer_end([5, 7, 0, 0]) -> 2; answer_end([5, 7]) -> 2."""
        canvas = self._canvas if canvas is None else canvas
        stops = set(self.stop_ids)
        return next((i for i, token in enumerate(canvas) if token in stops), len(canvas))

    def answer_length(self, step: int | None = None) -> int:
        """Positions before the first stop token after `step` steps (default: the latest)."""
        return self.answer_end(None if step is None else self.canvas_at(step))

    def answer_tokens(self, canvas: Sequence[int] | None = None) -> int:
        """Answer tokens written in `canvas` (default: the latest): positions before the answer's end that
        hold a token, not the mask, and were not given (AR: every generated answer token)."""
        canvas = self._canvas if canvas is None else canvas
        answer = canvas[: self.answer_end(canvas)]
        given = sum(1 for i in self.fixed if i < len(answer) and answer[i] != self.mask_id)
        return sum(token != self.mask_id for token in answer) - given

    def answer_tokens_per_step(self) -> list[int]:
        """answer_tokens() after each step, in one pass over the changes (what the race chart plots live):
        a running count, rescanned only when a stop token appears before the answer's end.

        AR [5, 7, stop]: [1, 2, 2]."""
        canvas, stops, given = list(self.initial), set(self.stop_ids), set(self.fixed)

        def written(i: int) -> bool:
            return canvas[i] != self.mask_id and i not in given

        end = self.answer_end(canvas)
        count = sum(written(i) for i in range(end))
        out = []
        for record in self.steps:
            for position, token in zip(record.positions, record.tokens):
                if position < end:
                    count -= written(position)
                write(canvas, position, token)
                if position < end and token in stops:  # the answer now ends earlier
                    end = position
                    count = sum(written(i) for i in range(end))
                elif position < end:
                    count += written(position)
                elif position == end and token not in stops:  # the end moves right, to the next stop
                    while end < len(canvas) and canvas[end] not in stops:
                        count += written(end)
                        end += 1
            out.append(count)
        return out

    def copy(self) -> History:
        """A snapshot that later steps of the run do not touch (recorded Steps never change, so they are shared)."""
        clone = copy.copy(self)
        clone.steps, clone.settings = list(self.steps), dict(self.settings)
        clone.last_changed, clone.first_committed = list(self.last_changed), list(self.first_committed)
        clone._canvas = list(self._canvas)
        return clone

    def as_of(self, step: int) -> History:
        """The History as it was after `step` steps (clamped to 0..len(steps)): what a replay shows then."""
        step = max(0, min(int(step), len(self.steps)))
        if step == len(self.steps):
            return self.copy()
        past = copy.copy(self)
        past.steps, past.settings, past.stopped = self.steps[:step], dict(self.settings), False
        past._canvas = self.canvas_at(step)
        past.last_changed = [None] * len(past._canvas)
        for number, record in enumerate(past.steps, start=1):
            for position in record.positions:
                past.last_changed[position] = number
        past.first_committed = [s if s is not None and s <= step else None
                                for s in self.first_committed[: len(past._canvas)]]
        return past

    def changes(self, step: int) -> StepChanges:
        """What step `step` (1-based; 0 = none) committed, revised, drafted, and which of the previous step's
        drafts it did not keep.

        Masks [m, m], step 1 writes 5 at 0 and drafts 7 at 1, step 2 writes 6 at 1:
        changes(2) -> committed [1], revised [], drafted [], rejected [1]."""
        if step <= 0 or step > len(self.steps):
            return StepChanges([], [], [], [])
        record, before = self.steps[step - 1], self.canvas_at(step - 1)
        after = list(before)
        apply_step(after, record)
        written = {p for earlier in self.steps[:step - 1] for p in earlier.positions}  # not the initial noise
        revised = [p for p, t in zip(record.positions, record.tokens)
                   if p in written and p < len(before) and before[p] not in (self.mask_id, t)]
        committed = [p for p in dict.fromkeys(record.positions)
                     if p < len(self.first_committed) and self.first_committed[p] == step]
        earlier = self.steps[step - 2] if step > 1 else Step([], [], [], 0.0, 0)
        rejected = [p for p, t in zip(earlier.draft_positions, earlier.draft_tokens)
                    if p >= len(after) or after[p] != t]
        return StepChanges(committed, revised, list(record.draft_positions), rejected)

    def has_drafts(self) -> bool:
        """Whether any step drafted tokens without writing them (speculative decoding)."""
        return any(step.draft_positions for step in self.steps)

    def answer_ids(self) -> list[int]:
        return self._canvas[: self.answer_end()]

    @property
    def forward_passes(self) -> int:
        return self.steps[-1].forward_passes if self.steps else 0

    @property
    def computed_positions(self) -> int | None:
        """Positions computed by all forward passes so far; None if any step did not record it."""
        return _total(step.computed_positions for step in self.steps)

    def committed(self) -> int:
        """Canvas positions committed so far (diffusion: left the mask, or accepted; AR: tokens written)."""
        return sum(step is not None for step in self.first_committed)

    def tokens_per_forward(self) -> float | None:
        """Committed positions per forward pass (above 1 when steps commit several, as with Fast-dLLM's
        threshold); None before the first forward."""
        return self.committed() / self.forward_passes if self.forward_passes else None

    def out_of_order(self) -> float:
        """The share of answer tokens written while a position to their left was still masked: 0 for a canvas that
        fills left to right (AR, speculative decoding), what the denoising map shows off its diagonal otherwise.
        A position counts from the step it last left the mask (with no mask: the step it was accepted); given
        tokens do not count.

        Masks [m, m, m], step 1 writes position 2, step 2 writes 0 and 1: 1/3 (position 2 came before 0 and 1)."""
        written = self._unmasked_steps()
        answer = [p for p in range(self.answer_end()) if p not in set(self.fixed) and written[p] is not None]
        latest, early = 0, 0
        for position in answer:
            early += written[position] < latest
            latest = max(latest, written[position])
        return early / len(answer) if answer else 0.0

    def revisions(self) -> int:
        """How many times the run changed a token it had written (to another token, or back to the mask): 0 for
        decoders that never revise; a verifier's corrections and rejected drafts; a noise model's redraws.

        Masks [m, m], step 1 writes 5 at 0, step 2 writes 6 at 0 and 7 at 1: 1."""
        canvas, written, count = list(self.initial), set(), 0
        for record in self.steps:
            for position, token in zip(record.positions, record.tokens):
                if position < len(canvas):
                    count += position in written and token != canvas[position]
                write(canvas, position, token)
                (written.add if token != self.mask_id else written.discard)(position)
        return count

    def _unmasked_steps(self) -> list[int | None]:
        """Per canvas position, the step in which it last left the mask (models without a mask: first_committed)."""
        if self.mask_id is None:
            return list(self.first_committed)
        canvas, steps = list(self.initial), [None] * len(self._canvas)
        for number, record in enumerate(self.steps, start=1):
            for position, token in zip(record.positions, record.tokens):
                if (position == len(canvas) or canvas[position] == self.mask_id) and token != self.mask_id:
                    steps[position] = number
                write(canvas, position, token)
        return steps

    def work_saved(self) -> float | None:
        """How many times fewer positions the forwards computed than the same forwards without a KV cache
        (each step records both). None where not recorded.

        8 forwards over a prompt of 6 and a canvas of 16 that computed 44 positions: 8 * 22 / 44 -> 4.0"""
        computed, uncached = self.computed_positions, _total(step.uncached_positions for step in self.steps)
        return uncached / computed if computed and uncached else None

    @property
    def cache(self) -> str:
        """The diffusion sampler's KV cache mode; "none" where the settings name none (runs saved before
        caching existed, AR runs: their decoding loop keeps its own, exact cache)."""
        return self.settings.get("cache", "none")

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def elapsed(self) -> list[float]:
        """Seconds from the start of the run to the end of each step."""
        total, out = 0.0, []
        for step in self.steps:
            total += step.seconds
            out.append(total)
        return out

    def seconds_to_first_token(self) -> float | None:
        """Time until the first step that committed anything (AR: time to first token)."""
        for seconds, step in zip(self.elapsed(), self.steps):
            if step.positions:
                return seconds
        return None

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> History:
        data = json.loads(text)
        data["steps"] = [Step(**step) for step in data["steps"]]
        return cls(**data)


def collect(states: Iterable[History]) -> History | None:
    """Run a stream of Histories (diffusion or AR) to its end; the last one, or None if it yielded nothing."""
    history = None
    for history in states:
        pass
    return history


def _total(counts) -> int | None:
    """The sum, or None if any count is None (not recorded)."""
    counts = list(counts)
    return None if None in counts else sum(counts)
