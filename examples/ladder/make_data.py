"""Write the ladder example's data: a fictional product catalogue (docs/) and questions about it.

Deterministic (fixed seed, pure Python): running it again writes the same bytes. 36 products, one short
Markdown document each (a heading, one sentence, then price, warranty and product code in varying order),
and one question per product and fact (54 train + 54 test), phrased from three paraphrase templates per
fact. The split is BY PRODUCT: no fact of a test product ever appears in a train question, in a few-shot
demonstration drawn from the train split, or in the fine-tuning data.

    python make_data.py            # writes docs/*.md and questions.jsonl next to this file
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 7

# Brand words are unique per product; each product type appears twice (so a question about the Aurora
# Kettle also retrieves the other kettle, and the model has to read the name, not only the type).
BRANDS = [
    "Aurora", "Basalt", "Cirrus", "Dune", "Ember", "Fjord", "Glacier", "Harbor", "Iris",
    "Juniper", "Kestrel", "Lumen", "Meadow", "Nimbus", "Onyx", "Pebble", "Quartz", "Ridge",
    "Sierra", "Tundra", "Umber", "Vale", "Willow", "Yarrow", "Zephyr", "Alder", "Birch",
    "Cobalt", "Delta", "Echo", "Flint", "Granite", "Heron", "Indigo", "Jasper", "Kelp",
]  # fmt: skip
TYPES = {
    "Kettle": "an electric kettle with a glass body",
    "Desk Lamp": "an adjustable LED desk lamp",
    "Backpack": "a 28-litre hiking backpack with a rain cover",
    "Blender": "a countertop blender with six speeds",
    "Tent": "a two-person tent for three seasons",
    "Heater": "a ceramic space heater with a tip-over switch",
    "Headphones": "wireless headphones with noise cancelling",
    "Water Bottle": "an insulated steel bottle",
    "Monitor Arm": "a gas-spring arm for one monitor",
    "Fan": "a quiet tower fan with three speeds",
    "Toaster": "a two-slot toaster with a bagel setting",
    "Grill Pan": "a cast-iron grill pan",
    "Keyboard": "a mechanical keyboard with quiet switches",
    "Coffee Grinder": "a burr grinder for coffee beans",
    "Rain Jacket": "a light waterproof jacket",
    "Speaker": "a portable speaker for the outdoors",
    "Air Purifier": "an air purifier for small rooms",
    "Camp Stove": "a folding gas stove for camping",
}
SENTENCES = [
    "The {name} is {desc}.",
    "Meet the {name}: {desc}.",
    "{desc_cap}, sold as the {name}.",
    "Our {name} is {desc}.",
]
QUESTIONS = {
    "price": [
        "How much does the {name} cost?",
        "What is the price of the {name}?",
        "How much is the {name}?",
    ],
    "warranty": [
        "How long is the warranty on the {name}?",
        "What warranty comes with the {name}?",
        "How many years of warranty does the {name} have?",
    ],
    "code": [
        "What is the product code of the {name}?",
        "Which product code does the {name} have?",
        "What product code is the {name} sold under?",
    ],
}
LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"


def slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def build(seed: int = SEED) -> tuple[dict[str, str], list[dict[str, object]]]:
    """({file name: Markdown}, question rows) for the whole catalogue."""
    rng = random.Random(seed)
    types = [t for t in TYPES for _ in range(2)]
    rng.shuffle(types)
    prices = rng.sample(range(12, 100), len(BRANDS))  # distinct, so one price never answers two products
    products = []
    for i, (brand, kind) in enumerate(zip(BRANDS, types, strict=True)):
        name = f"{brand} {kind}"
        code = f"{rng.choice(LETTERS)}{rng.choice(LETTERS)}-{rng.randint(1000, 9999)}"
        years = rng.choice([1, 2, 2, 3, 3, 4, 5])
        facts = {
            "price": f"${prices[i]}",
            "warranty": f"{years} year" + ("s" if years > 1 else ""),
            "code": code,
        }
        products.append((name, TYPES[kind], facts))
    order = list(range(len(products)))
    rng.shuffle(order)
    test = {products[i][0] for i in order[: len(products) // 2]}

    docs: dict[str, str] = {}
    rows: list[dict[str, object]] = []
    counters = {"train": 0, "test": 0}
    for name, desc, facts in products:
        lines = {
            "price": f"- Price: {facts['price']}",
            "warranty": f"- Warranty: {facts['warranty']}",
            "code": f"- Product code: {facts['code']}",
        }
        keys = list(lines)
        rng.shuffle(keys)
        sentence = rng.choice(SENTENCES).format(name=name, desc=desc, desc_cap=desc[0].upper() + desc[1:])
        doc = f"# {name}\n\n{sentence}\n\n" + "\n".join(lines[k] for k in keys) + "\n"
        docs[f"{slug(name)}.md"] = doc
        split = "test" if name in test else "train"
        for attribute, templates in QUESTIONS.items():
            # Templates rotate within each split, so both splits see every phrasing about equally often.
            template = templates[counters[split] % len(templates)]
            counters[split] += 1 if attribute == "code" else 0
            rows.append(
                {
                    "id": f"{slug(name)}-{attribute}",
                    "question": template.format(name=name),
                    "reference": facts[attribute],
                    "context_ids": [f"{slug(name)}.md"],
                    "split": split,
                    "metadata": {"product": name, "attribute": attribute},
                }
            )
    return docs, rows


def main(out: Path) -> None:
    docs, rows = build()
    folder = out / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        if old.name not in docs:
            old.unlink()
    for file, text in docs.items():
        (folder / file).write_text(text, encoding="utf-8")
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    n_test = sum(r["split"] == "test" for r in rows)
    print(f"{len(docs)} documents in {folder}, {len(rows)} questions ({len(rows) - n_test} train, {n_test} test)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
