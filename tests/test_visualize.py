"""visualize/: token texts, colours, the canvas and legend HTML (escaping checked with hypothesis)."""

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from generation.history import AUTOREGRESSIVE, DIFFUSION, History
from visualize.canvas import MASK_GLYPH, render_canvas, render_history, render_legend
from visualize.colors import VIRIDIS, contrast, luminance, step_color, text_color_for
from visualize.tokens import _prefix_pieces, _windowed_pieces, run_texts, token_texts

MASK, EOS = "<mask>", "<eos>"


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """A small byte-level BPE trained on ASCII only, so every non-ASCII character spans several tokens."""
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[MASK, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    model.train_from_iterator(["the quick brown fox jumps over the lazy dog", "hello world, hello there"] * 20,
                              trainer)
    return PreTrainedTokenizerFast(tokenizer_object=model)


@pytest.fixture(scope="module")
def tok():
    return byte_level_tokenizer()


TOK = byte_level_tokenizer()  # for hypothesis tests, which cannot take function-scoped fixtures
MASK_ID, EOS_ID = TOK.convert_tokens_to_ids(MASK), TOK.convert_tokens_to_ids(EOS)


# --- token texts ---------------------------------------------------------------------------------

def test_multibyte_character_goes_to_the_token_that_completes_it(tok):
    ids = tok.encode("é🎉")
    assert len(ids) == 6  # 2 + 4 bytes, none merged (the vocabulary saw only ASCII)
    assert token_texts(tok, ids) == ["", "é", "", "", "", "🎉"]


def test_hidden_ids_are_none_and_split_runs(tok):
    ca, fe = tok.encode("ca"), tok.encode("fé")
    texts = token_texts(tok, [*ca, MASK_ID, *fe], hidden_ids=(MASK_ID,))
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


# --- colours -------------------------------------------------------------------------------------

def test_scale_runs_early_dark_to_late_light_and_text_stays_readable():
    assert step_color(1, 30) == VIRIDIS[0] and step_color(30, 30) == VIRIDIS[-1]
    colors = [step_color(k, 30) for k in range(1, 31)]
    lum = [luminance(c) for c in colors]
    assert lum == sorted(lum)  # lightness orders the steps, so the order survives colour blindness and greyscale
    assert min(contrast(c, text_color_for(c)) for c in colors) >= 4.5  # WCAG AA on every chip
    assert step_color(1, 1) == VIRIDIS[-1]


# --- canvas --------------------------------------------------------------------------------------

ALLOWED_TAGS = {"div", "span", "br"}
ALLOWED_ATTRS = {"class", "style", "title", "data-step", "data-kind", "data-total"}
STYLE = re.compile(r"background:#[0-9a-f]{6};color:#[0-9a-f]{6}")


class CanvasParser(HTMLParser):
    """Collects the tags and attributes of rendered HTML, and each token's text as shown."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.tokens, self.classes, self.titles = [], [], [], []
        self.stack = []  # open span classes

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        assert set(attrs) <= ALLOWED_ATTRS, attrs
        if tag == "span":
            assert "style" not in attrs or STYLE.fullmatch(attrs["style"]), attrs["style"]
            classes = attrs.get("class", "")
            self.stack.append(classes)
            if "um-tok" in classes.split():
                self.tokens.append("")
                self.classes.append(set(classes.split()))
                self.titles.append(attrs.get("title"))
        elif tag == "br":
            self.tokens[-1] += "\n"

    def handle_endtag(self, tag):
        if tag == "span":
            self.stack.pop()

    def handle_data(self, data):
        inside_token = any("um-tok" in classes.split() for classes in self.stack)
        if inside_token and "um-nl" not in self.stack[-1]:
            self.tokens[-1] += data


def parse(markup: str) -> CanvasParser:
    parser = CanvasParser()
    parser.feed(markup)
    parser.close()
    assert set(parser.tags) <= ALLOWED_TAGS
    return parser


def shown(text: str) -> str:
    """What the renderer should display for `text`, derived independently of visualize.canvas."""
    out = []
    for char in text:
        code = ord(char)
        if char in "\n\t":
            out.append(char)
        elif code < 0x20:
            out.append(chr(0x2400 + code))
        elif code == 0x7F:
            out.append("␡")
        elif 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    return "".join(out)


def diffusion_history(length: int, steps: list[list[tuple[int, int, float]]], stop_ids=(EOS_ID,)) -> History:
    history = History(kind=DIFFUSION, prompt_ids=[1, 2], initial=[MASK_ID] * length, mask_id=MASK_ID,
                      stop_ids=list(stop_ids), planned_steps=len(steps))
    for number, changes in enumerate(steps, start=1):
        history.record([p for p, _, _ in changes], [t for _, t, _ in changes], [s for _, _, s in changes],
                       0.01, number)
    return history


def ar_history(tokens: list[int], planned: int = 64) -> History:
    history = History(kind=AUTOREGRESSIVE, prompt_ids=[1], initial=[], stop_ids=[EOS_ID], planned_steps=planned)
    for number, token in enumerate(tokens, start=1):
        history.record([history.length], [token], [0.5], 0.02, number)
    return history


markup_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["<b>", "</span>", "<script>alert(1)</script>", "\" onmouseover=\"x", "'", "&amp;", "&#60;",
                     "\n", "  \n\n ", "\x00", "\r\n", "\t", "<!--", "]]>", "\u202e", "<br>", "&"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), markup_text), min_size=1, max_size=12), st.data())
def test_renderer_escapes_everything_and_loses_no_text(texts, data):
    changes = [(p, 5, 0.5) for p, text in enumerate(texts) if text is not None]
    history = diffusion_history(len(texts), [changes] if changes else [])
    parser = parse(render_canvas(history, texts))
    assert len(parser.tokens) == len(texts)  # one span per position: nothing injected, nothing merged
    for text, rendered, classes in zip(texts, parser.tokens, parser.classes):
        if text is None:
            assert rendered == MASK_GLYPH and "um-mask" in classes
        else:
            assert rendered == shown(text)
    ar = ar_history([5] * len(texts))
    ar_texts = [t or "" for t in texts]
    assert [t for t in parse(render_canvas(ar, ar_texts)).tokens] == [shown(t) for t in ar_texts]


def test_newlines_are_visible_breaks_and_spaces_are_kept():
    history = diffusion_history(2, [[(0, 5, 0.9), (1, 6, 0.8)]])
    markup = render_canvas(history, ["a\nb", "   "])
    assert '<span class="um-nl">↵</span><br>' in markup and ">   </span>" in markup


def test_replay_shows_the_canvas_as_it_was_at_each_step(tok):
    history = diffusion_history(4, [[(1, 5, 0.9)], [(0, 6, 0.7), (3, 7, 0.6)], [(2, 8, 0.5)]])
    for step, masked in [(0, 4), (1, 3), (2, 1), (3, 0)]:
        parser = parse(render_history(history, tok, step=step))
        assert sum("um-mask" in c for c in parser.classes) == masked
        now = {i for i, c in enumerate(parser.classes) if "um-now" in c}
        assert now == (set(history.steps[step - 1].positions) if step else set())
    parser = parse(render_history(history, tok, step=2))
    assert parser.titles[1] == "step 1 · score 0.90" and parser.titles[0] == "step 2 · score 0.70"
    assert render_history(history, tok) == render_history(history, tok, step=3)


def test_colour_is_the_step_of_the_last_change_as_of_the_shown_step(tok):
    history = diffusion_history(2, [[(0, 5, 0.9)], [(1, 6, 0.8)], [(0, 7, 0.7)]])  # position 0 changes twice
    assert 'data-step="1"' in render_history(history, tok, step=2).split("</span>")[0]
    assert 'data-step="3"' in render_history(history, tok, step=3).split("</span>")[0]
    assert f"background:{step_color(3, 3)}" in render_history(history, tok, step=3)


def test_positions_after_the_stop_token_are_dimmed(tok):
    history = diffusion_history(5, [[(0, 5, 0.9), (2, EOS_ID, 0.9)], [(1, 6, 0.5), (3, 7, 0.5), (4, 8, 0.5)]])
    parser = parse(render_history(history, tok))
    assert ["um-after" in c for c in parser.classes] == [False, False, True, True, True]
    assert "um-after" not in " ".join(sorted(parse(render_history(history, tok, step=0)).classes[0]))


def test_ar_canvas_grows_and_shows_a_left_to_right_gradient(tok):
    words = tok.encode("the quick brown fox")
    history = ar_history([*words, EOS_ID])
    steps = [int(m) for m in re.findall(r'title="step (\d+)', render_history(history, tok))]
    assert steps == list(range(1, len(words) + 2))
    last = len(words) + 1
    assert f"background:{step_color(last, last)}" in render_history(history, tok)  # the full scale once done
    assert len(parse(render_history(history, tok, step=2)).tokens) == 2
    running = ar_history(words, planned=64)  # still running: the scale spans the planned steps
    assert f"background:{step_color(len(words), 64)}" in render_history(running, tok)


def test_wrong_number_of_texts_is_a_clear_error():
    with pytest.raises(ValueError, match="3 texts for a canvas of 2"):
        render_canvas(diffusion_history(2, []), ["a", "b", "c"])


def test_legend_has_scale_labels_and_swatches():
    legend = render_legend(12)
    parser = parse(legend)
    text = html.unescape(re.sub(r"<[^>]+>", " ", legend))
    for label in ("step 1 · early", "step 12 · late", "masked", "changed this step", "after the answer"):
        assert label in text
    assert {"um-mask"} <= set().union(*parser.classes) and "um-now" in legend and "um-after" in legend
    assert "linear-gradient" in legend and VIRIDIS[0] in legend and VIRIDIS[-1] in legend
