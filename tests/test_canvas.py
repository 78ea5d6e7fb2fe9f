"""visualize/canvas.py: a frame of the canvas as HTML and the legend (escaping checked with hypothesis)."""

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import TINY_EOS_ID, TINY_MASK_ID, ar_history, diffusion_history
from generation.history import History
from visualize.canvas import MASK_GLYPH, cell_html, cells, render_canvas, render_history, render_legend, render_step_line
from visualize.colors import VIRIDIS, step_color
from fakes import BYTE_LEVEL_EOS, BYTE_LEVEL_MASK, byte_level_tokenizer

TOK = byte_level_tokenizer()  # module level for hypothesis tests, which cannot take function-scoped fixtures
MASK_ID, EOS_ID = TOK.convert_tokens_to_ids(BYTE_LEVEL_MASK), TOK.convert_tokens_to_ids(BYTE_LEVEL_EOS)


def run(length, steps, stop_ids=None):
    """A diffusion History over TOK's ids (mask and stop are TOK's)."""
    return diffusion_history(length, steps, mask_id=MASK_ID, stop_ids=(EOS_ID,) if stop_ids is None else stop_ids)


def ar_run(tokens, planned=64):
    return ar_history(tokens, planned=planned, stop_ids=(EOS_ID,))


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
    history = run(len(texts), [changes] if changes else [])
    parser = parse(render_canvas(history, texts))
    assert len(parser.tokens) == len(texts)  # one span per position: nothing injected, nothing merged
    for text, rendered, classes in zip(texts, parser.tokens, parser.classes):
        if text is None:
            assert rendered == MASK_GLYPH and "um-mask" in classes
        else:
            assert rendered == shown(text)
    ar = ar_run([5] * len(texts))
    ar_texts = [t or "" for t in texts]
    assert [t for t in parse(render_canvas(ar, ar_texts)).tokens] == [shown(t) for t in ar_texts]


def test_newlines_are_visible_breaks_and_spaces_are_kept():
    history = run(2, [[(0, 5, 0.9), (1, 6, 0.8)]])
    markup = render_canvas(history, ["a\nb", "   "])
    assert '<span class="um-nl">↵</span><br>' in markup and ">   </span>" in markup


def test_replay_shows_the_canvas_as_it_was_at_each_step():
    history = run(4, [[(1, 5, 0.9)], [(0, 6, 0.7), (3, 7, 0.6)], [(2, 8, 0.5)]])
    for step, masked in [(0, 4), (1, 3), (2, 1), (3, 0)]:
        parser = parse(render_history(history, TOK, step=step))
        assert sum("um-mask" in c for c in parser.classes) == masked
        now = {i for i, c in enumerate(parser.classes) if "um-now" in c}
        assert now == (set(history.steps[step - 1].positions) if step else set())
    parser = parse(render_history(history, TOK, step=2))
    assert parser.titles[1] == "step 1 · score 0.90" and parser.titles[0] == "step 2 · score 0.70"
    assert render_history(history, TOK) == render_history(history, TOK, step=3)


def test_colour_is_the_step_of_the_last_change_as_of_the_shown_step():
    history = run(2, [[(0, 5, 0.9)], [(1, 6, 0.8)], [(0, 7, 0.7)]])  # position 0 changes twice
    assert 'data-step="1"' in render_history(history, TOK, step=2).split("</span>")[0]
    assert 'data-step="3"' in render_history(history, TOK, step=3).split("</span>")[0]
    assert f"background:{step_color(3, 3)}" in render_history(history, TOK, step=3)


def test_positions_after_the_stop_token_are_dimmed():
    history = run(5, [[(0, 5, 0.9), (2, EOS_ID, 0.9)], [(1, 6, 0.5), (3, 7, 0.5), (4, 8, 0.5)]])
    parser = parse(render_history(history, TOK))
    assert ["um-after" in c for c in parser.classes] == [False, False, True, True, True]
    assert "um-after" not in " ".join(sorted(parse(render_history(history, TOK, step=0)).classes[0]))


def test_ar_canvas_grows_and_shows_a_left_to_right_gradient():
    words = TOK.encode("the quick brown fox")
    history = ar_run([*words, EOS_ID])
    steps = [int(m) for m in re.findall(r'title="step (\d+)', render_history(history, TOK))]
    assert steps == list(range(1, len(words) + 2))
    last = len(words) + 1
    assert f"background:{step_color(last, last)}" in render_history(history, TOK)  # the full scale once done
    assert len(parse(render_history(history, TOK, step=2)).tokens) == 2
    running = ar_run(words, planned=64)  # still running: the scale spans the planned steps
    assert f"background:{step_color(len(words), 64)}" in render_history(running, TOK)


def test_wrong_number_of_texts_is_a_clear_error():
    with pytest.raises(ValueError, match="3 texts for a canvas of 2"):
        render_canvas(run(2, []), ["a", "b", "c"])


def test_legend_has_scale_labels_and_swatches():
    legend = render_legend(12)
    parser = parse(legend)
    text = html.unescape(re.sub(r"<[^>]+>", " ", legend))
    for label in ("step 1 · early", "step 12 · late", "masked", "changed this step", "after the answer"):
        assert label in text
    assert {"um-mask"} <= set().union(*parser.classes) and "um-now" in legend and "um-after" in legend
    assert "linear-gradient" in legend and VIRIDIS[0] in legend and VIRIDIS[-1] in legend


def test_given_tokens_have_their_own_style_and_escaped_text():
    history = diffusion_history(3, [[(1, 5, 0.9)]])
    history.fixed = [0]
    html_out = render_canvas(history, ["<b>&", "x", None])
    assert '<span class="um-tok um-fixed" title="given: fixed, never changes">&lt;b&gt;&amp;</span>' in html_out
    assert html_out.count("um-fixed") == 1 and "given (fixed)" in render_legend(4, fixed=True)
    assert "given (fixed)" not in render_legend(4)


def test_the_step_line_says_what_the_shown_step_did():
    history = History(kind="diffusion", prompt_ids=[1], initial=[TINY_MASK_ID] * 3, mask_id=TINY_MASK_ID,
                      stop_ids=[TINY_EOS_ID], planned_steps=4)
    history.record([0], [5], [0.5], 0.01, 1)
    history.record([1, 0], [7, 6], [0.5, 0.5], 0.01, 2)
    assert "Step 2</strong> of 4 · 1 committed · 1 revised" in render_step_line(history, 2)
    assert "drafted" not in render_step_line(history, 2) and "Step 0" in render_step_line(history, 0)


def test_a_tokens_candidates_show_as_escaped_text_with_percentages():
    history = History(kind="autoregressive", prompt_ids=[1], initial=[], stop_ids=[TINY_EOS_ID])
    history.record([0], [5], [0.41], 0.01, 1, candidates=[[[5, 0.41], [6, 0.22], [7, 0.09], [8, 0.004], [9, 0.001]]])
    names = {5: " sea", 6: "<b>ocean", 7: "\n", 8: " ", 9: "x"}
    (cell,) = cells(history, ["sea"], 1, candidate_text=names.get)
    page = cell_html(cell, 1)
    assert 'data-candidates="sea 41% · &lt;b&gt;ocean 22% · ↵ 9% · ␣ &lt;1% · x &lt;1%"' in page
    assert 'data-tip="step 1 · score 0.41"' in page and "title=" not in page


def test_drafts_show_as_ghosts_then_as_tokens_or_a_rejection():
    """Speculative decoding: step 1 writes 'the' and drafts ' quick<b>' after it; step 2 keeps ' quick' and writes
    another token where '<b>' was drafted: the ghosts are escaped, faint and masked underneath; the rejected
    position says so on hover."""
    tokenizer = byte_level_tokenizer()
    ids = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    mask = tokenizer.convert_tokens_to_ids(BYTE_LEVEL_MASK)
    the, quick, tag, fox = ids("the"), ids(" quick"), ids("<b>"), ids(" fox")
    assert len(the) == len(quick) == len(fox) == 1
    history = History(kind="diffusion", prompt_ids=[1], initial=[mask] * 5, mask_id=mask, stop_ids=[])
    history.record([0], the, [0.5], 0.01, 1, draft_positions=range(1, 1 + 1 + len(tag)), draft_tokens=quick + tag)
    history.record([1, 2], quick + fox, [0.5, 0.5], 0.01, 2)
    first = render_history(history, tokenizer, step=1)
    assert first.count("um-ghost") == 1 + len(tag) and "quick" in first and "&lt;" in first and "<b>" not in first
    second = render_history(history, tokenizer, step=2)
    assert "um-ghost" not in second and second.count("um-rejected") == 1
    assert "was rejected here" in second
