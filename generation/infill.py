"""Infilling: a text with blanks, or words pinned at answer positions, -> the canvas a run starts from.

Two ways to say what is given (both parse to a `Spec`, plain data without a tokenizer):

- a template, `The capital of France is ___, and it is famous for ___8.`: `___` (three or more
  underscores) is a blank of the default length, `___8` a blank of 8 tokens. The space before a
  blank goes into the blank (byte-level BPE words carry their leading space, so the model writes
  " Paris", not "Paris" after a lone space token). The canvas is the template, then the end of the
  turn and padding up to `gen_length`: the layout the models were trained on (answer, end-of-turn,
  padding), all of it fixed, so the model writes only in the blanks.
- constraints, `0:Once, 5:upon` (LLaDA's and Fast-dLLM's demos' format): answer-relative token
  position, colon, word. Each word is encoded with a leading space (none at position 0) and its
  tokens placed from that position on; every other position of the `gen_length` canvas is a blank.

`Spec.canvas(encode, mask_id, stop_ids, gen_length)` turns a Spec into an `Infill` (the canvas's
initial ids, masks at the blanks, and the fixed positions) with the model's tokenizer at the edge
(`encode`: text -> ids); the sampler starts from it (`stream_diffusion(..., infill=...)`) and never
proposes at a fixed position, because a fixed token is not a mask. `Spec.prefix` is what an
autoregressive model can use: the fixed tokens before the first blank. Every bad input raises
ConfigError with a message that says how to fix it.

Left out: blanks of unknown length (the canvas has a fixed size), and several words at one position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .config import ConfigError

TEMPLATE = "template"
CONSTRAINTS = "constraints"
DEFAULT_BLANK = 4  # tokens in a `___` blank that names no length
BLANK = re.compile(r"_{3,}(\d*)")  # `___` or `___8`
CONSTRAINT = re.compile(r"^\s*(\d+)\s*:(.+)$")  # `5: upon`

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class Infill:
    """The canvas a run starts from: answer-relative ids (mask_id at blanks) and the positions given."""

    initial: list[int]
    fixed: list[int]  # positions whose token is given: the sampler never proposes there

    @property
    def blanks(self) -> int:
        return len(self.initial) - len(self.fixed)


@dataclass(frozen=True)
class Spec:
    """What is given, before tokenizing: template pieces (text, or a blank's length) or (position, word)s."""

    kind: str  # TEMPLATE or CONSTRAINTS
    pieces: tuple[str | int, ...] = ()  # TEMPLATE: text pieces and blank lengths, in order
    words: tuple[tuple[int, str], ...] = ()  # CONSTRAINTS: (answer-relative position, word), by position

    def canvas(self, encode: Encode, mask_id: int, stop_ids: Sequence[int], gen_length: int) -> Infill:
        """The starting canvas of `gen_length` positions in the model's own ids, or ConfigError."""
        if self.kind == TEMPLATE:
            ids, fixed = _template_ids(self.pieces, encode, mask_id)
            _check_template_fits(self.pieces, len(ids), gen_length)
            padding = end_padding(stop_ids, gen_length - len(ids))
            return Infill(ids + padding, fixed + list(range(len(ids), gen_length)))
        initial = [mask_id] * gen_length
        for position, word in self.words:
            tokens = encode(word if position == 0 else " " + word)
            if position + len(tokens) > gen_length:
                raise ConfigError(f"constraint {position}:{word} needs positions {position}-"
                                  f"{position + len(tokens) - 1}, but the answer has positions 0-{gen_length - 1}; "
                                  f"use a smaller position or a longer answer")
            for offset, token in enumerate(tokens):
                if initial[position + offset] != mask_id:
                    raise ConfigError(f"constraint {position}:{word} overlaps an earlier word at position "
                                      f"{position + offset}; leave room for each word's tokens")
                initial[position + offset] = token
        return Infill(initial, [i for i, token in enumerate(initial) if token != mask_id])

    def prefix(self, encode: Encode) -> list[int]:
        """The given tokens before the first blank, for a model that can only continue a prefix."""
        marker = -1  # an id no tokenizer gives: the blanks of a throwaway canvas
        if self.kind == TEMPLATE:
            start, _ = _template_ids(self.pieces, encode, marker)
        else:
            room = max(p + len(encode(w if p == 0 else " " + w)) for p, w in self.words) + 1  # ends in a blank
            start = self.canvas(encode, marker, [marker], room).initial
        return start[: start.index(marker)]

    def describe(self) -> str:
        """A one-line summary: describe() -> '2 blanks (4 + 8 tokens)' or '2 words at positions 0, 5'."""
        if self.kind == TEMPLATE:
            blanks = [p for p in self.pieces if isinstance(p, int)]
            sizes = " + ".join(str(b) for b in blanks)
            return f"{len(blanks)} blank{'s' * (len(blanks) != 1)} ({sizes} tokens)"
        positions = ", ".join(str(p) for p, _ in self.words)
        return f"{len(self.words)} word{'s' * (len(self.words) != 1)} at position{'s' * (len(self.words) != 1)} {positions}"


def parse_template(text: str, default_blank: int = DEFAULT_BLANK) -> Spec:
    """parse_template('a ___ b ___2.') -> Spec(TEMPLATE, pieces=('a', 4, ' b', 2, '.')).

    The space before a blank moves into the blank; a blank of 0 tokens or a text with no blank is an error."""
    if isinstance(default_blank, bool) or not isinstance(default_blank, int) or default_blank < 1:
        raise ConfigError(f"the default blank length must be a whole number >= 1, got {default_blank!r}")
    pieces: list[str | int] = []
    cursor = 0
    for match in BLANK.finditer(text or ""):
        before = text[cursor:match.start()].rstrip(" ")
        if before:
            pieces.append(before)
        length = int(match.group(1)) if match.group(1) else default_blank
        if length < 1:
            raise ConfigError(f"blank {match.group(0)!r} asks for 0 tokens; write ___ or ___N with N >= 1")
        pieces.append(length)
        cursor = match.end()
    if not any(isinstance(p, int) for p in pieces):
        raise ConfigError("the template has no blank: write ___ (default length) or ___8 (8 tokens) where the "
                          "model should write, e.g. 'The capital of France is ___.'")
    if text[cursor:]:
        pieces.append(text[cursor:])
    return Spec(TEMPLATE, pieces=tuple(pieces))


def parse_constraints(text: str) -> Spec:
    """parse_constraints('0:Once, 5:upon') -> Spec(CONSTRAINTS, words=((0, 'Once'), (5, 'upon')))."""
    words = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = CONSTRAINT.match(part)
        if match is None or not match.group(2).strip():
            raise ConfigError(f"cannot read constraint {part.strip()!r}: write position:word, e.g. '0:Once, 5:upon' "
                              f"(positions count answer tokens from 0)")
        position = int(match.group(1))
        if position in words:
            raise ConfigError(f"two words at position {position}; give each position one word")
        words[position] = match.group(2).strip()
    if not words:
        raise ConfigError("no constraints: write position:word pairs, e.g. '0:Once, 5:upon'")
    return Spec(CONSTRAINTS, words=tuple(sorted(words.items())))


def start_canvas(mask_id: int, gen_length: int, infill: Infill | None) -> list[int]:
    """The canvas a diffusion run starts from: all masks, or the infill canvas, checked against `gen_length`."""
    if infill is None:
        return [mask_id] * gen_length
    if len(infill.initial) != gen_length:
        raise ConfigError(f"the infill canvas has {len(infill.initial)} positions but gen_length is "
                          f"{gen_length}; build it with the same gen_length")
    if infill.blanks == 0 or mask_id not in infill.initial:
        raise ConfigError("nothing to fill: the canvas has no blank")
    return list(infill.initial)


def encoder(tokenizer) -> Encode:
    """A model's tokenizer as `encode`: text -> ids, no special tokens added (the chat template adds those)."""
    return lambda text: tokenizer(text, add_special_tokens=False).input_ids


def end_padding(stop_ids: Sequence[int], count: int) -> list[int]:
    """End of turn, then padding: end_padding([2, 0], 3) -> [2, 0, 0] (stop_ids list end-of-turn first, padding last)."""
    if count <= 0:
        return []
    return [stop_ids[0]] + [stop_ids[-1]] * (count - 1)


def _template_ids(pieces: Sequence[str | int], encode: Encode, mask_id: int) -> tuple[list[int], list[int]]:
    """Each text piece encoded on its own (a blank cuts the text), each blank as masks."""
    ids: list[int] = []
    fixed: list[int] = []
    for piece in pieces:
        if isinstance(piece, int):
            ids += [mask_id] * piece
        else:
            tokens = encode(piece)
            fixed += range(len(ids), len(ids) + len(tokens))
            ids += tokens
    return ids, fixed


def _check_template_fits(pieces: Sequence[str | int], length: int, gen_length: int) -> None:
    longest = max(p for p in pieces if isinstance(p, int))
    if longest > gen_length:
        raise ConfigError(f"a blank of {longest} tokens is longer than the whole answer canvas ({gen_length} "
                          f"tokens); make the blank shorter or raise the answer length")
    if length > gen_length:
        raise ConfigError(f"the template takes {length} tokens (text and blanks) but the answer canvas has "
                          f"{gen_length}; raise the answer length to at least {length} or shorten the template")
