"""A small private catalogue for the optimize tests: product documents in a real knowledge base (the local
MiniLM embedder, embedded Chroma), questions split by product, and the content/form/strict checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb

_NAMES = (
    "Aurora Kettle", "Basalt Pan", "Cirrus Fan", "Dune Pack", "Ember Heater", "Fjord Bottle",
    "Glacier Blender", "Harbor Lamp", "Iris Arm", "Juniper Tent", "Kestrel Phones", "Lumen Speaker",
    "Mistral Purifier", "Nimbus Pillow", "Orbit Webcam", "Pebble Battery",
)  # fmt: skip
#: slug -> (name, price, product code); the first eight are the training products.
PRODUCTS = {
    n.lower().replace(" ", "-"): (n, f"${19 + 7 * i}", f"{n[:2].upper()}-{1000 + 613 * i}")
    for i, n in enumerate(_NAMES)
}
TRAIN = tuple(list(PRODUCTS)[:8])

CHECKS = """
import json, re


def _norm(text):
    return re.sub(r"[^a-z0-9-]", "", str(text).lower())


def _answer(output):
    lines = [line for line in output.strip().splitlines() if line.strip()]
    try:
        data = json.loads(lines[0]) if len(lines) == 1 else None
    except ValueError:
        data = None
    if isinstance(data, dict) and list(data) == ["answer"] and isinstance(data["answer"], str):
        return data["answer"]
    return None


def correct(output, reference):
    ok = _norm(reference) in _norm(output)
    return ok, "gold value present" if ok else "gold value absent"


def format_ok(output):
    ok = _answer(output) is not None
    return ok, "one JSON object with answer" if ok else "not one JSON object with answer"


def strict(output, reference):
    answer = _answer(output)
    ok = answer is not None and _norm(answer) == _norm(reference)
    return ok, "exact JSON answer" if ok else "no exact JSON answer"
"""

PROMPT = """\
name: shop-qa
messages:
  - role: system
    content: 'Answer the question about our product with a JSON object {"answer": "..."}.'
  - role: user
    content: '{{ question }}'
params: {temperature: 0, max_tokens: 24}
"""

PLAN_HEAD = """\
name: shop-ladder
dataset: shop@latest
split: test
primary: strict
correct: correct
format: format
target: '{"answer": "{{ reference }}"}'
evaluators:
  - {type: python, name: correct, function: "checks.py:correct"}
  - {type: python, name: format, function: "checks.py:format_ok"}
  - {type: python, name: strict, function: "checks.py:strict"}
"""


def doc(slug: str) -> str:
    name, price, code = PRODUCTS[slug]
    return f"# {name}\n\nThe {name} is one of our products.\n\n- Price: {price}\n- Product code: {code}\n"


def cases() -> list[Case]:
    out = []
    for slug, (name, price, code) in PRODUCTS.items():
        split = "train" if slug in TRAIN else "test"
        for attr, question, value in (
            ("price", f"How much does the {name} cost?", price),
            ("code", f"What is the product code of the {name}?", code),
        ):
            out.append(
                Case(
                    id=f"{slug}-{attr}",
                    inputs={"question": question},
                    reference=value,
                    context_ids=[f"{slug}.md"],
                    split=split,
                    metadata={"product": slug, "attribute": attr},
                )
            )
    return out


def setup_catalogue(workspace: Path, plan_tail: str) -> Path:
    """Docs, knowledge base `shop`, dataset `shop`, checks.py, prompts/qa.yaml and ladder.yaml."""
    docs = workspace / "docs"
    docs.mkdir()
    for slug in PRODUCTS:
        (docs / f"{slug}.md").write_text(doc(slug), encoding="utf-8")
    (workspace / "checks.py").write_text(CHECKS, encoding="utf-8")
    (workspace / "prompts").mkdir()
    (workspace / "prompts" / "qa.yaml").write_text(PROMPT, encoding="utf-8")
    plan = workspace / "ladder.yaml"
    plan.write_text(PLAN_HEAD + plan_tail, encoding="utf-8")
    h = Honed(load_settings(start=workspace))
    try:
        create_kb(h.store, "shop", KnowledgeBaseConfig())
        kb = get_kb(h.store, h.settings, "shop")
        kb.ingest([docs])
        kb.close()
        record_cases(h.store, "shop", cases())
    finally:
        h.close()
    return plan


def facts_in(messages: list[dict[str, str]], question: str) -> bool:
    """Whether the product the question asks about has its document text in the last user message."""
    for name, price, _ in PRODUCTS.values():
        if name in question:
            return f"Price: {price}" in messages[-1]["content"]
    return False


def value_for(question: str) -> str:
    for name, price, code in PRODUCTS.values():
        if name in question:
            return code if "code" in question else price
    raise AssertionError(question)


def as_json(value: str) -> str:
    return json.dumps({"answer": value})


def demos_in(messages: list[dict[str, str]]) -> bool:
    return any(m["role"] == "assistant" for m in messages)


def question_of(messages: list[dict[str, str]]) -> str:
    text = messages[-1]["content"]
    return re.split(r"\n\n", text)[-1]
