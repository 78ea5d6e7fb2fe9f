"""generation/bigrams.py: the pair counts that rescore speculative drafts, and their file."""

import math

import pytest
import torch

from generation.bigrams import SMOOTHING, UNIGRAM_WEIGHT, Bigrams


def test_counts_round_trip_through_the_file(tmp_path):
    bigrams = Bigrams.counted([[3, 1, 3, 1], [1, 3, 2]], vocab_size=5)  # pairs: 3 1 (x2), 1 3 (x2), 3 2
    assert bigrams.offsets.tolist() == [0, 0, 1, 1, 3, 3]  # 1 has one follower, 3 two
    assert (bigrams.followers.tolist(), bigrams.counts.tolist()) == ([3, 1, 2], [2.0, 2.0, 1.0])
    bigrams.save(tmp_path / "b.npz")
    loaded = Bigrams.load(tmp_path / "b.npz")
    for name in ("offsets", "followers", "counts", "prior", "bonus"):
        assert torch.equal(getattr(loaded, name), getattr(bigrams, name)), name


def test_a_score_is_the_logit_plus_the_bigram_term_less_part_of_the_unigram():
    bigrams = Bigrams.counted([[3, 1, 3, 1], [1, 3, 2]], vocab_size=5)
    logits = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    followed = torch.tensor([0, 2, 1, 2, 0]) + 1.0  # how often each token followed any, +1
    unigram = -UNIGRAM_WEIGHT * (followed / followed.sum()).log()
    after_3 = logits + unigram + torch.tensor([0, math.log(1 + 2 / SMOOTHING), math.log(1 + 1 / SMOOTHING), 0, 0])
    torch.testing.assert_close(bigrams.rescore(logits, 3), after_3)
    torch.testing.assert_close(bigrams.rescore(logits, 4), logits + unigram)  # nothing followed 4
    assert torch.equal(logits, torch.arange(5.0))  # the logits are left as they were


def test_the_likeliest_follower_is_the_most_frequent_one():
    bigrams = Bigrams.counted([[3, 1, 3, 1], [1, 3, 2], [0, 2, 2, 2]], vocab_size=5)  # after 3: 1 twice, 2 once
    assert bigrams.likeliest_after(3) == 1 and bigrams.likeliest_after(2) == 2
    assert bigrams.likeliest_after(4) is None  # nothing followed 4


def test_counts_too_large_for_the_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="uint16"):
        Bigrams.counted([[0, 1]], vocab_size=70_000).save(tmp_path / "b.npz")
