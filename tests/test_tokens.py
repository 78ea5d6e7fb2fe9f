"""visualize/tokens.py: whole-sequence decoding mapped back to tokens (multi-byte characters intact)."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import BYTE_LEVEL_MASK, byte_level_tokenizer
from visualize.tokens import _prefix_pieces, _windowed_pieces, run_texts, token_texts

TOK = byte_level_tokenizer()  # module level for hypothesis tests, which cannot take function-scoped fixtures
MASK_ID = TOK.convert_tokens_to_ids(BYTE_LEVEL_MASK)


def test_multibyte_character_goes_to_the_token_that_completes_it():
    ids = TOK.encode("é🎉")
    assert len(ids) == 6  # 2 + 4 bytes, none merged (the vocabulary saw only ASCII)
    assert token_texts(TOK, ids) == ["", "é", "", "", "", "🎉"]


def test_hidden_ids_are_none_and_split_runs():
    ca, fe = TOK.encode("ca"), TOK.encode("fé")
    texts = token_texts(TOK, [*ca, MASK_ID, *fe], hidden_ids=(MASK_ID,))
    assert texts[len(ca)] is None
    assert "".join(texts[: len(ca)]) == "ca" and "".join(texts[len(ca) + 1:]) == "fé"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_pieces_join_to_the_whole_decode_with_every_method(text):
    ids = TOK.encode(text)
    whole = TOK.decode(ids)
    assert whole == text  # byte-level BPE is lossless
    assert "".join(token_texts(TOK, ids)) == whole
    assert "".join(_windowed_pieces(TOK, ids)) == whole
    assert "".join(_prefix_pieces(TOK, ids, whole)) == whole
    assert "\ufffd" not in "".join(token_texts(TOK, ids))  # no half characters shown as replacement marks


class SentencePieceLike:
    """A fake non-byte-level tokenizer: '▁' marks a word start, the first one is dropped on decode, and
    <0xNN> tokens are UTF-8 bytes (SentencePiece byte fallback)."""

    pieces = ["▁hello", "▁world", "!", "<0xC3>", "<0xA9>", "▁caf"]

    def convert_ids_to_tokens(self, ids):
        return [self.pieces[i] for i in ids]

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        data = b""
        for piece in self.convert_ids_to_tokens(ids):
            byte = re.fullmatch(r"<0x([0-9A-F]{2})>", piece)
            data += bytes([int(byte.group(1), 16)]) if byte else piece.replace("▁", " ").encode()
        return data.decode("utf-8", errors="replace").removeprefix(" ")


def test_non_byte_level_tokenizer_keeps_word_spaces_and_split_characters():
    fake = SentencePieceLike()
    assert run_texts(fake, [0, 1, 2]) == ["hello", " world", "!"]
    assert run_texts(fake, [5, 3, 4, 1]) == ["caf", "", "é", " world"]
