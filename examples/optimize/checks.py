"""The example's own evaluator: does the JSON answer contain a gold answer (SQuAD-style normalisation)?"""

import json
import re
import string


def _norm(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(w for w in text.split() if w not in {"a", "an", "the"})


def answer_correct(output: str, reference: list[str]) -> tuple[bool, str]:
    try:
        answer = json.loads(output.strip().splitlines()[0])["answer"]
    except (ValueError, KeyError, TypeError, IndexError):
        return False, "no JSON answer on the first line"
    got = _norm(str(answer))
    for gold in reference:
        if _norm(gold) and re.search(rf"\b{re.escape(_norm(gold))}\b", got):
            return True, f"{answer!r} contains {gold!r}"
    return False, f"{answer!r} matches none of {reference!r}"
