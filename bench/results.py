"""The results page: docs/results.md, written from the evaluation JSON next to each shipped adapter.

The numbers of the project's models live in one place: the JSON `training/evaluate.py` writes
(`assets/<model>/eval.json`, which the pipeline's card stage copies beside the adapter and its model
card). This command turns each into a table (a row per setting, a column per measure) with what each
column means and the command that produced it; the README, the model cards' readers and the code's
comments link here instead of restating the figures.

A row's numeric fields become columns: the known ones in a fixed order with a title and a meaning
(`COLUMNS`), any other one after them under its own name, so a measure added to `training/evaluate.py`
appears on the page without a change here (add it to `COLUMNS` to give it a title and a meaning).

Left out: the sample answers and the training runs (the model cards have them), timing ratios.

    python -m bench.results                      # every assets/*/eval.json -> docs/results.md
    python -m bench.results runs/eval.json --out /tmp/results.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from training.evaluate import calibration_words, sampling_words

ROOT = Path(__file__).resolve().parent.parent
EVALUATIONS = "assets/*/eval.json"  # relative to the repository root
PAGE = ROOT / "docs" / "results.md"
MISSING = "–"  # a column this evaluation did not measure


@dataclass(frozen=True)
class Column:
    title: str
    meaning: str
    format: str = "{:.2f}"  # applied to the JSON value
    scale: float = 1.0  # the value is multiplied by this first (fractions shown as percent)


COLUMNS = {
    "gen_ppl": Column("gen. perplexity", "generative perplexity of the answers under the judge, conditioned on the "
                      "same chat prompt, pooled over answer tokens: exp(sum NLL / sum tokens); lower reads more like "
                      "the judge, but loops score low too, so read it beside the repetition", "{:.1f}"),
    "unigram_entropy_nats": Column("unigram entropy (nats)", "entropy of an answer's token ids, averaged over "
                                   "answers; low means few distinct tokens (compare with the length)"),
    "repeated_4grams": Column("repeated 4-grams", "share of an answer's 4-grams seen earlier in it (seq-rep-4), "
                              "averaged over answers: how much of it loops", "{:.0f}%", 100.0),
    "mean_length": Column("mean length (tokens)", "answer tokens up to the first stop token", "{:.0f}"),
    "tokens_per_forward": Column("tokens / forward", "answer positions committed per model forward pass "
                                 "(1 for the AR model)"),
    "leaks": Column("leaks", "answers holding a mask or another special token, of all answers", "{}"),
    "seconds_per_answer": Column("s / answer", "wall-clock seconds per answer, one answer at a time, on the "
                                 "hardware the evaluation names; not a speed benchmark (`bench/speed.py` is)", "{:.1f}"),
}
NOT_COLUMNS = {"answers", "prompts"}  # numbers about a row, not measures of it (leaks are shown out of `answers`)


def columns(rows: list[dict]) -> list[str]:
    """The known measures any row has, in `COLUMNS` order, then every other numeric field in first-seen order."""
    seen = [k for row in rows for k, v in row.items() if _is_number(v) and k not in NOT_COLUMNS]
    return [k for k in COLUMNS if k in seen] + list(dict.fromkeys(k for k in seen if k not in COLUMNS))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def column(key: str) -> Column:
    """A known column, or one named after an unknown field: 'out_of_order_share' -> 'out of order share'."""
    return COLUMNS.get(key) or Column(key.replace("_", " "), f"`{key}` as `training/evaluate.py` records it",
                                      "{:.2f}")


def cell(row: dict, key: str) -> str:
    """One value as the column formats it: 0.1 repeated 4-grams -> '10%', 0 leaks of 80 answers -> '0/80'."""
    value = row.get(key)
    if not _is_number(value):
        return MISSING
    if key == "leaks" and "answers" in row:
        return f"{value}/{row['answers']}"
    spec = column(key)
    return spec.format.format(value * spec.scale)


def setting(row: dict) -> str:
    """The row's name and, for a diffusion row, its settings as the model card writes them."""
    if "diffusion" not in row:
        return row["setting"]
    from training.evaluate import describe  # the card's wording, one copy

    return f"{row['setting']} ({describe(row['diffusion'])})"


def table(evaluation: dict) -> str:
    keys = columns(evaluation["rows"])
    head = "| setting | " + " | ".join(column(k).title for k in keys) + " |"
    rule = "|---|" + "---:|" * len(keys)
    body = ["| " + " | ".join([setting(row)] + [cell(row, k) for k in keys]) + " |" for row in evaluation["rows"]]
    return "\n".join([head, rule, *body])


def legend(evaluations: list[dict]) -> str:
    """What each column on the page means, once for every table."""
    keys = columns([row for evaluation in evaluations for row in evaluation["rows"]])
    return "\n".join(f"- **{column(k).title}**: {column(k).meaning}." for k in keys)


def setup(evaluation: dict) -> str:
    """Who answered what, where: prompts, seeds, length, temperature, dtypes, judge, hardware, date."""
    config = evaluation["config"]
    dtypes = ", ".join(f"{name} {dtype}" for name, dtype in evaluation.get("dtypes", {}).items())
    parts = [f"{len(evaluation['prompts'])} held-out prompts x {config.get('seeds', 1)} seed(s), "
             f"{config['gen_length']}-token answers, {sampling_words(config)} for every row",
             f"judge: {evaluation['judge']}", calibration_words(evaluation)]
    if dtypes:
        parts.append(f"dtypes: {dtypes}")
    if evaluation.get("ar_step_ms"):
        parts.append("the AR model's one-token step: " + ", ".join(f"{d} {ms:.1f} ms" for d, ms in evaluation["ar_step_ms"].items()))
    parts.append(f"device {evaluation.get('device', 'cpu')} ({evaluation.get('hardware', 'hardware not recorded')}, "
                 f"{evaluation.get('date', 'date not recorded')})")
    return "; ".join(part for part in parts if part) + "."  # no calibration: no words


def section(path: Path, evaluation: dict) -> str:
    where = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    model = path.parent.name
    command = evaluation.get("command", "python -m training.evaluate")
    card = path.parent / "README.md"
    lines = [f"## {model}", "",
             f"From `{where}`, produced by `{command}` (`training/evaluate.py`)"
             + (f"; the model card (`{card.resolve().relative_to(ROOT)}`) has the recipe and sample answers."
                if card.exists() and card.resolve().is_relative_to(ROOT) else "."),
             "", setup(evaluation)]
    if evaluation.get("reconstructed"):
        lines += ["", f"Note: {evaluation['reconstructed']}."]
    return "\n".join(lines + ["", table(evaluation), ""])


def page(paths: list[Path]) -> str:
    loaded = [json.loads(p.read_text()) for p in paths]
    head = ("# Results\n\nWritten by `python -m bench.results` from the evaluation JSON of each model "
            "(`training/evaluate.py`); do not edit by hand: rerun the evaluation, then this command. "
            "`tests/test_results.py` fails when this page is not what the command writes. A row is a setting "
            "(the AR model first, as the reference); the columns:\n\n" + legend(loaded) + "\n")
    return "\n".join([head] + [section(p, e) for p, e in zip(paths, loaded)])


def evaluations() -> list[Path]:
    return sorted(ROOT.glob(EVALUATIONS))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="*", type=Path, help=f"default: {EVALUATIONS}")
    parser.add_argument("--out", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    args.out.write_text(page(args.evaluations or evaluations()))
    print(f"results -> {args.out}")


if __name__ == "__main__":
    main()
