"""bench/defaults.py, the table the page's default sampling comes from: its settings and what counts as a loop."""

from bench.defaults import Answer, loops, parse_settings
from generation.metrics import repeated_ngrams


def test_settings_read_temperature_top_p_and_optional_penalties():
    assert parse_settings("0.5/0.9,1/1/1.2,1/1/1/0.8") == [(0.5, 0.9, 1.0, 0.0), (1.0, 1.0, 1.2, 0.0),
                                                         (1.0, 1.0, 1.0, 0.8)]


def test_one_repeated_4gram_against_none_is_no_loop_two_are():
    once = list(range(30)) + [0, 1, 2, 3]  # 34 tokens, 31 4-grams, one of them a repeat
    twice = once + [4]
    none = Answer(0.0, 0.0, 34)
    assert not loops([Answer(repeated_ngrams(once), 0.0, len(once))], [none])
    assert loops([Answer(repeated_ngrams(twice), 0.0, len(twice))], [none])
    assert not loops([Answer(0.30, 0.0, 64)], [Answer(0.20, 0.0, 64)])  # within 1.5x of the AR answers
    assert loops([Answer(0.40, 0.0, 64)], [Answer(0.20, 0.0, 64)])
