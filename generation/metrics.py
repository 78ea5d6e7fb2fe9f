"""How good is an answer? The two sample-quality measures of the diffusion-LM literature (generative
perplexity under a judge and unigram entropy: MDLM arXiv 2406.07524, FS-DFM arXiv 2509.20624), in one place for the sweep (generation/sweep.py) and the training evaluation
(training/evaluate.py):

- `teacher_nll`: the answer's negative log-likelihood under a causal judge, conditioned on the prompt;
  `perplexity` pools it over tokens: exp(sum NLL / sum tokens) (generative perplexity);
- `unigram_entropy`: the entropy of an answer's token-id histogram, in nats (it grows with length, so
  compare answers of similar length; low entropy flags repetitive text that games perplexity);
- `repeated_ngrams`: seq-rep-n (Welleck et al., unlikelihood training, arXiv 1908.04319), the share of an
  answer's n-grams that repeat an earlier one in it: loops ("it is a language that uses ..., and it is a
  language that uses ...") and runs of punctuation, read off directly.

Torch is imported only by `teacher_nll`, so the entropy and the pooling work without it.
Left out: other judges and measures (MAUVE, task accuracies).
"""

from __future__ import annotations

import math
from collections import Counter


def unigram_entropy(ids: list[int]) -> float:
    """Entropy in nats of the token-id histogram: [1, 1, 2, 2] -> log 2 = 0.693; [] -> 0."""
    if not ids:
        return 0.0
    counts = Counter(ids)
    n = len(ids)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def repeated_ngrams(ids: list[int], n: int = 4) -> float:
    """seq-rep-n: 1 - distinct n-grams / n-grams; [1, 2, 1, 2, 1] at n=2 -> 1 - 2/4 = 0.5; 0 below n + 1 tokens."""
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def teacher_nll(teacher, prompt_ids: list[int], answer_ids: list[int]) -> float:
    """Sum of -log p(answer token | prompt, earlier answer tokens) under the causal `teacher`
    (a generation.CausalLM), in nats; 0 for an empty answer."""
    if not answer_ids:
        return 0.0
    import torch  # here, not at the top: the rest of this module needs no torch

    with torch.no_grad():
        x = torch.tensor([list(prompt_ids) + list(answer_ids)], device=teacher.device)
        logits = teacher.module(x).logits[0, len(prompt_ids) - 1:-1].double()  # row i predicts token i+1
        return float(torch.nn.functional.cross_entropy(logits, x[0, len(prompt_ids):], reduction="sum"))


def perplexity(nll: float, tokens: int) -> float:
    """exp(nll / tokens), pooled over tokens; NaN when there are no tokens: perplexity(2 * math.log(4), 2) -> 4."""
    return math.exp(nll / tokens) if tokens else float("nan")
