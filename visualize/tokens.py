"""Token ids -> the text each token contributes, for painting tokens one by one.

Decoding token by token breaks byte-level BPE: an emoji, a CJK character or an accented letter is
often split over two or three tokens whose bytes are not valid UTF-8 on their own. So each run of
visible tokens is decoded as a whole and the characters are handed back to token positions: a
character belongs to the token that completes it, earlier partial tokens get "". Joining the
pieces of a run always gives exactly `tokenizer.decode(run)`.

Three ways to split a run, fastest first, each checked against the whole-run decode:
byte-level BPE tokens mapped straight to bytes; incremental decoding over a short window (as
streaming servers do); and, as the exact fallback, one decode per prefix (quadratic, rare).

Left out: a run that starts after a hidden position is decoded without its left context, so a
SentencePiece tokenizer drops that run's leading space (byte-level BPE is unaffected).
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterable, Sequence

REPLACEMENT = "\ufffd"  # what decoders emit for bytes that are not (yet) a whole character


def token_texts(tokenizer, ids: Sequence[int], hidden_ids: Iterable[int] = ()) -> list[str | None]:
    """The text of each token; None where the id is hidden (e.g. the mask id).

    With a byte-level BPE tokenizer where "é" is two tokens (bytes C3 and A9) and 99 is hidden:
    token_texts(tok, [id("ca"), id(b"\\xc3"), id(b"\\xa9"), 99, id("!")], hidden_ids=(99,))
    -> ["ca", "", "é", None, "!"]
    """
    hidden = set(hidden_ids)
    out: list[str | None] = [None] * len(ids)
    start = 0
    while start < len(ids):
        if ids[start] in hidden:
            start += 1
            continue
        end = start
        while end < len(ids) and ids[end] not in hidden:
            end += 1
        out[start:end] = run_texts(tokenizer, list(ids[start:end]))
        start = end
    return out


def run_texts(tokenizer, ids: list[int]) -> list[str]:
    """Split `decode(ids)` over the tokens of one run; the pieces join to the whole decode."""
    whole = _decode(tokenizer, ids)
    for method in (_byte_level_pieces, _windowed_pieces):
        pieces = method(tokenizer, ids)
        if pieces is not None and "".join(pieces) == whole:
            return pieces
    return _prefix_pieces(tokenizer, ids, whole)


def _decode(tokenizer, ids: list[int]) -> str:
    # Special tokens stay visible (a stop token is part of the canvas); spacing stays as the model wrote it.
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@functools.cache
def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's bytes_to_unicode: byte-level BPE vocabularies spell byte b as chr(f(b))."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + extra)] = byte
            extra += 1
    return table


def _byte_level_pieces(tokenizer, ids: list[int]) -> list[str] | None:
    """Byte-level BPE: token strings are bytes in disguise; decode them with an incremental UTF-8 decoder."""
    table = _unicode_to_byte()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces = []
    for token in tokenizer.convert_ids_to_tokens(ids):
        if token is None or any(char not in table for char in token):
            return None
        pieces.append(decoder.decode(bytes(table[char] for char in token)))
    if pieces:
        pieces[-1] += decoder.decode(b"", final=True)
    return pieces


def _windowed_pieces(tokenizer, ids: list[int], context: int = 4) -> list[str]:
    """Incremental decoding: each new token is decoded after a few tokens of left context, which
    keeps SentencePiece's word-initial spaces; a token that ends in a partial character waits."""
    pieces, prefix, read = [], 0, 0
    for i in range(len(ids)):
        before = _decode(tokenizer, ids[prefix:read])
        after = _decode(tokenizer, ids[prefix:i + 1])
        if len(after) > len(before) and not after.endswith(REPLACEMENT) and after.startswith(before):
            pieces.append(after[len(before):])
            prefix, read = max(i + 1 - context, 0), i + 1
        else:
            pieces.append("")
    return pieces


def _prefix_pieces(tokenizer, ids: list[int], whole: str) -> list[str]:
    """Exact fallback: token i owns the characters its prefix adds to the whole decode."""
    pieces, done = [], 0
    for i in range(len(ids) - 1):
        prefix = _decode(tokenizer, ids[:i + 1])
        complete = not prefix.endswith(REPLACEMENT) and whole.startswith(prefix) and len(prefix) >= done
        pieces.append(whole[done:len(prefix)] if complete else "")
        done = len(prefix) if complete else done
    pieces.append(whole[done:])
    return pieces
