"""Stage 1: a deterministic grid of chat instructions (topics x task types), split train / held-out.

Every prompt is `task.format(topic=...)`, e.g. ("photosynthesis", "Explain {topic} in simple terms.")
-> "Explain photosynthesis in simple terms.". The split is fixed by a hash of the prompt text, so the
same prompt lands in the same split on every machine and every budget; held-out prompts are never
distilled for training. Left out: multi-turn chats and system prompts other than the template's own.

    python -m training.prompts --out data/prompts.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

TOPICS = (
    # science and nature
    "photosynthesis", "black holes", "volcanoes", "the water cycle", "gravity", "DNA", "vaccines",
    "climate change", "earthquakes", "the human heart", "electricity", "magnets", "rainbows", "bees",
    "coral reefs", "the moon", "the solar system", "dinosaurs", "evolution", "the immune system",
    "sleep", "clouds", "tides", "rainforests", "deserts", "whales", "octopuses", "mushrooms",
    "the speed of light", "atoms", "chemical reactions", "the periodic table", "batteries", "sound waves",
    # technology
    "the internet", "computers", "smartphones", "artificial intelligence", "robots", "solar panels",
    "electric cars", "3D printing", "passwords", "email", "video games", "cloud storage", "GPS",
    "programming", "databases", "open source software", "social media", "online privacy",
    # everyday life
    "cooking pasta", "baking bread", "making coffee", "brewing tea", "gardening", "houseplants",
    "saving money", "budgeting", "job interviews", "public speaking", "learning a language",
    "time management", "exercise", "running", "swimming", "cycling", "yoga", "healthy breakfast",
    "drinking water", "moving to a new city", "packing for a trip", "camping", "hiking",
    "recycling", "cleaning a kitchen", "writing a resume", "making friends", "studying for exams",
    "reading books", "keeping a journal", "meditation", "stress", "dogs", "cats", "birds",
    # culture, history, society
    "the Roman Empire", "ancient Egypt", "the printing press", "the Olympic Games", "democracy",
    "libraries", "museums", "music", "jazz", "painting", "photography", "poetry", "theatre",
    "football", "chess", "the history of flight", "trains", "bridges", "cities", "farming",
    "the ocean", "mountains", "winter", "summer", "autumn leaves", "friendship", "kindness",
    "volunteering", "teamwork", "curiosity", "maps", "money", "markets", "inflation", "taxes",
)

TASKS = (
    "Explain {topic} in simple terms.",
    "What is {topic}?",
    "Give me three facts about {topic}.",
    "List five things everyone should know about {topic}.",
    "Describe {topic} to a ten-year-old.",
    "Write a short story about {topic}.",
    "Write a short poem about {topic}.",
    "Give me some advice about {topic}.",
    "What are the pros and cons of {topic}?",
    "How can I learn more about {topic}?",
    "Why is {topic} important?",
    "Summarize the main ideas of {topic} in a few sentences.",
    "Write a short paragraph about {topic}.",
    "What are common misconceptions about {topic}?",
    "Compare {topic} with something from everyday life.",
    "Write a haiku about {topic}.",
    "Give me a step-by-step guide related to {topic}.",
    "What questions would a beginner ask about {topic}? Answer one of them.",
    "Tell me an interesting fact about {topic}.",
    "Write a friendly tweet about {topic}.",
)

HELD_OUT_PERCENT = 5  # about 5% of the grid (~120 prompts) is never trained on


def prompt_grid() -> list[str]:
    """All topic x task prompts, in a fixed order."""
    return [task.format(topic=topic) for topic in TOPICS for task in TASKS]


def is_held_out(prompt: str) -> bool:
    """Stable across machines and Python versions (hashlib, not hash())."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def split_prompts() -> dict[str, list[str]]:
    grid = prompt_grid()
    return {"train": [p for p in grid if not is_held_out(p)], "held_out": [p for p in grid if is_held_out(p)]}


def messages(prompt: str) -> list[dict]:
    """The chat both teacher and student see: one user turn (the template adds its system turn)."""
    return [{"role": "user", "content": prompt}]


def write_prompts(out: Path) -> dict[str, list[str]]:
    split = split_prompts()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(split, indent=1))
    return split


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/prompts.json"))
    args = parser.parse_args(argv)
    split = write_prompts(args.out)
    print(f"{len(split['train'])} train prompts, {len(split['held_out'])} held-out -> {args.out}")


if __name__ == "__main__":
    main()
