"""The ladder example's evaluators, one per axis, so a change that fixes one can be told from one that fixes
the other:

- `correct` (content): the gold value appears anywhere in the output, whatever the form.
- `format` (behaviour): the output is exactly one line, a JSON object {"answer": "<string>"}.
- `strict` (both): the format holds and the answer equals the gold value.

Values are compared normalised: lowercase; `$` dropped; a hyphen before a digit dropped (AU-7468 = AU7468);
other punctuation is a word break, except a decimal point between digits; the words "year(s)", "yr(s)",
"usd", "dollar(s)" dropped; number words one..ten as digits. Matching is by whole words, so "2" never
matches "12" and "$89" never matches "$189".
"""

from __future__ import annotations

import json
import re

_UNITS = {"year", "years", "yr", "yrs", "usd", "dollar", "dollars"}
_NUMBERS = {
    w: str(i)
    for i, w in enumerate("zero one two three four five six seven eight nine ten".split())
}


def norm(text: str) -> list[str]:
    """The words of `text` after normalisation (see the module docstring)."""
    text = text.lower().replace("$", "")
    text = re.sub(r"(?<=[a-z0-9])-(?=\d)", "", text)
    text = re.sub(r"(?<=\d)\.0+\b", "", text)  # 89.00 = 89
    text = re.sub(r"(?!(?<=\d)\.(?=\d))[^a-z0-9]", " ", text)
    return [_NUMBERS.get(w, w) for w in text.split() if w not in _UNITS]


def _contains(words: list[str], gold: list[str]) -> bool:
    n = len(gold)
    return n > 0 and any(words[i : i + n] == gold for i in range(len(words) - n + 1))


def _answer(output: str) -> tuple[str | None, str]:
    """(the answer string, "") when the output is exactly one JSON line {"answer": "<string>"}; else
    (None, why not)."""
    text = output.strip()
    if not text:
        return None, "empty output"
    first, _, rest = text.partition("\n")
    try:
        obj = json.loads(first)
    except ValueError:
        return None, f"first line is not JSON: {first[:60]!r}"
    if not isinstance(obj, dict):
        return None, f"first line is JSON {type(obj).__name__}, not an object"
    if set(obj) != {"answer"}:
        return None, f"JSON keys are {sorted(obj)}, not exactly ['answer']"
    if not isinstance(obj["answer"], str):
        return None, f"answer is a {type(obj['answer']).__name__}, not a string"
    if rest.strip():
        return None, f"text after the JSON line: {rest.strip()[:40]!r}"
    return obj["answer"], ""


def correct(output: str, reference: str) -> tuple[bool, str]:
    gold = norm(reference)
    if _contains(norm(output), gold):
        return True, f"output contains {reference!r}"
    return False, f"{reference!r} not in output {output.strip()[:60]!r}"


def format(output: str) -> tuple[bool, str]:  # noqa: A001 - the evaluator's name in the spec
    answer, why = _answer(output)
    if answer is None:
        return False, why
    return True, f"one JSON line, answer {answer!r}"


def strict(output: str, reference: str) -> tuple[bool, str]:
    answer, why = _answer(output)
    if answer is None:
        return False, f"bad format: {why}"
    if norm(answer) == norm(reference):
        return True, f"answer {answer!r} = {reference!r}"
    return False, f"answer {answer!r} != {reference!r}"
