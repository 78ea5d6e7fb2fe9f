"""Bigram counts of the training answers, to sharpen the drafts of self-speculative decoding (speculative.py).

A block-causal model's first draft is blind to the token just before it: the causal path draws that token in
the same forward, so the drafter can only predict the token after it averaged over what it might be. When the
tree is built that token is known, and how often each token followed it in the distilled answers says a lot
about what comes next. Each draft is scored by

    score(y) = drafter logit(y) + log(1 + n(x, y) / SMOOTHING) - UNIGRAM_WEIGHT * log u(y)

where x is the token before the draft, n(x, y) how often y followed x, and u(y) how often y follows anything
(its share of all pairs, +1 each): a product of the drafter with the bigram, less part of the unigram that
both count (with the full unigram it would be pointwise mutual information; a part ranks better). The
verifier still draws every token from the causal path, so answers are exactly what they were; only how many
tokens a forward commits changes. The counts also draft on their own: the chain's last draft's most frequent
follower goes after it (`likeliest_after`, speculative.py BIGRAM_DRAFTS).

The constants were fitted on training prompts (30 of them, drafts of 2, T=0.7, 1,813 trees; the table built
from the other prompts' answers): the tree's 4 first drafts held the next token 0.671 of the time with the
drafter's logits alone, 0.761 with the bigram term alone (UNIGRAM_WEIGHT 0, SMOOTHING 0.02), 0.781 with both;
SMOOTHING 0.005 / 0.02 / 0.05 gave 0.777 / 0.779 / 0.781, UNIGRAM_WEIGHT 0.3 / 0.6 / 1.0 gave 0.764 / 0.735 /
0.624 (SMOOTHING 0.1). Dropping the pairs seen once (2 in 3 of them) lost 0.017.

Stored next to the adapter as FILE: for every token, how many distinct tokens followed it, then those tokens
and their counts, in token order (uint16 arrays, numpy's compressed archive: 0.29 MB for 143k pairs).
Left out: longer contexts (a trigram with backoff to these counts held 0.795, for a table several times larger).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

FILE = "bigrams.npz"
SMOOTHING = 0.05
UNIGRAM_WEIGHT = 0.3


class Bigrams:
    """How often each token followed each other: `followers[offsets[x]:offsets[x + 1]]` followed x,
    `counts[...]` times each."""

    def __init__(self, row_lengths: torch.Tensor, followers: torch.Tensor, counts: torch.Tensor) -> None:
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), row_lengths.long().cumsum(0)])
        self.followers, self.counts = followers.long(), counts.float()
        self.vocab_size = len(row_lengths)
        seen = torch.zeros(self.vocab_size).index_add_(0, self.followers, self.counts) + 1
        self.prior = -UNIGRAM_WEIGHT * (seen / seen.sum()).log()  # (V,) the unigram term of every score
        self.bonus = (1 + self.counts / SMOOTHING).log()  # the bigram term of every stored pair

    @classmethod
    def counted(cls, sequences: Iterable[list[int]], vocab_size: int) -> Bigrams:
        """The counts of every adjacent pair in `sequences`."""
        pairs = [torch.tensor(s[:-1]) * vocab_size + torch.tensor(s[1:]) for s in sequences if len(s) > 1]
        keys, counts = torch.cat(pairs).unique(return_counts=True)
        return cls(torch.bincount(keys // vocab_size, minlength=vocab_size), keys % vocab_size, counts)

    def save(self, path: Path) -> None:
        if self.vocab_size > 2 ** 16 or (len(self.counts) and self.counts.max() >= 2 ** 16):
            raise ValueError("bigram ids and counts are stored as uint16")
        np.savez_compressed(path, row_lengths=self.offsets.diff().numpy().astype(np.uint16),
                            followers=self.followers.numpy().astype(np.uint16),
                            counts=self.counts.numpy().astype(np.uint16))

    @classmethod
    def load(cls, path: Path) -> Bigrams:
        with np.load(path) as stored:
            return cls(*(torch.from_numpy(stored[name].astype(np.int64))
                         for name in ("row_lengths", "followers", "counts")))

    def likeliest_after(self, previous: int) -> int | None:
        """The token that followed `previous` most often (None when nothing did)."""
        row = self._row(previous)
        return int(self.followers[row][self.counts[row].argmax()]) if row.start < row.stop else None

    def rescore(self, logits: torch.Tensor, previous: int) -> torch.Tensor:
        """The drafts' scores (V,) of drafter logits (V,) for the token after `previous` (a new tensor)."""
        scores = logits + self.prior.to(logits.device)
        row = self._row(previous)
        return scores.index_add_(0, self.followers[row].to(logits.device), self.bonus[row].to(logits.device))

    def _row(self, previous: int) -> slice:
        """Where the followers of `previous` are stored."""
        return slice(int(self.offsets[previous]), int(self.offsets[previous + 1]))
