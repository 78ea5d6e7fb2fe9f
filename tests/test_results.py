"""The results page: a table per evaluation JSON, new numeric fields as columns on their own, and
docs/results.md exactly what `python -m bench.results` writes now (so it cannot go stale)."""

import json

from bench import results

FIXTURE = {
    "config": {"gen_length": 16, "temperature": 0.7, "seeds": 1},
    "device": "cpu", "judge": "the teacher", "dtypes": {"tiny": "float32"}, "hardware": "a test CPU", "date": "2026-01-01",
    "prompts": ["a", "b"],
    "rows": [
        {"setting": "AR model (T=0.7)", "kind": "ar", "gen_ppl": 3.61, "unigram_entropy_nats": 3.756, "repeated_4grams": 0.05,
         "mean_length": 99.4, "tokens_per_forward": 1.0, "leaks": 0, "answers": 2, "seconds_per_answer": 3.66,
         "samples": []},
        {"setting": "block, page default", "kind": "diffusion", "model": "student",
         "diffusion": {"steps": 16, "block_length": 4, "algorithm": "low_confidence", "cache": "prefix"},
         "gen_ppl": 2.7, "unigram_entropy_nats": 3.5, "repeated_4grams": 0.1, "mean_length": 101.0,
         "tokens_per_forward": 1.86, "leaks": 1, "answers": 2, "seconds_per_answer": 2.5, "out_of_order_share": 0.25,
         "samples": [], "prompts": 2},
    ],
}


def test_an_evaluation_becomes_a_table_with_unknown_measures_as_columns(tmp_path):
    path = tmp_path / "model" / "eval.json"
    path.parent.mkdir()
    path.write_text(json.dumps(FIXTURE))
    assert results.table(json.loads(path.read_text())) == "\n".join([
        "| setting | gen. perplexity | unigram entropy (nats) | repeated 4-grams | mean length (tokens) | tokens / forward "
        "| leaks | s / answer | out of order share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| AR model (T=0.7) | 3.6 | 3.76 | 5% | 99 | 1.00 | 0/2 | 3.7 | – |",
        "| block, page default (16 steps, blocks of 4, low_confidence, prefix cache) | 2.7 | 3.50 | 10% | 101 | 1.86 | 1/2 "
        "| 2.5 | 0.25 |",
    ])
    page = results.page([path])
    assert "- **out of order share**: `out_of_order_share` as `training/evaluate.py` records it." in page
    assert "2 held-out prompts x 1 seed(s), 16-token answers" in page and "(a test CPU, 2026-01-01)" in page


def test_the_page_in_the_repository_is_what_the_command_writes_now():
    assert results.evaluations(), "no assets/*/eval.json"
    assert results.PAGE.read_text() == results.page(results.evaluations()), \
        "docs/results.md is stale: run `python -m bench.results`"
