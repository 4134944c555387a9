"""Scrubbing personal data and secrets out of text before it becomes training data.

Each kind is a regular expression, and the ones that collide with ordinary numbers carry a second check:
card numbers must pass the Luhn checksum and IBANs the ISO 7064 mod-97 check, phone numbers need a
leading `+` or the separators of a US number (area code and exchange 2-9), and SSNs need the dashed
3-2-4 shape with the ranges the SSA never issues excluded. That is what lets prices, years, dates,
versions and order numbers through untouched. Secrets go first (an API key may contain digit runs that
would otherwise look like a phone number), then the kinds from most to least specific.

A scrubbed value is replaced by its kind in brackets (`[EMAIL]`), so a model trained on the result
learns where such a value goes without ever seeing one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

KINDS = ("secret", "email", "iban", "card", "ssn", "phone", "ip")
PLACEHOLDER = {kind: f"[{kind.upper()}]" for kind in KINDS}

_SECRET_PATTERNS = (
    # PEM private key blocks, whatever the algorithm.
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",  # OpenAI
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
    r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",  # JWT (header and payload are JSON)
)
_SECRET = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
# `Bearer <token>` and `password=...` keep their label: the text still reads as what it was.
_BEARER = re.compile(r"\b(Bearer\s+)(?!\[)[A-Za-z0-9._~+/=-]{8,}")
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![A-Za-z0-9])((?:password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key
        |secret[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|private[_-]?key|token)
       ["']?\s*[:=]\s*)
    (["']?)(?!\[)([^\s"',;]+)\2
    """
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_PHONE = re.compile(
    r"""(?x)
    (?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-]|[.,]\d)      # +44 20 7946 0958, +1-415-555-0100
    | (?<![\w.-])(?:1[ .-]?)?\(\s*[2-9]\d{2}\s*\)\s*[2-9]\d{2}[ .-]?\d{4}(?![\w-]|[.,]\d)   # (415) 555-0100
    | (?<![\w.-])(?:1[ .-])?[2-9]\d{2}([ .-])[2-9]\d{2}\1\d{4}(?![\w-]|[.,]\d)             # 415-555-0100
    """
)
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (every real card number does)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Whether `text` (spaces allowed) is an IBAN with a valid mod-97 check."""
    raw = text.replace(" ", "")
    if not 15 <= len(raw) <= 34:
        return False
    moved = raw[4:] + raw[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _digits_in_range(text: str, low: int, high: int) -> bool:
    n = sum(ch.isdigit() for ch in text)
    return low <= n <= high


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group(0))
    # A run of one repeated digit (0000 0000 0000 0000) passes Luhn but is a placeholder, not a card.
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)


_Check = Callable[[re.Match[str]], bool]
_STEPS: tuple[tuple[str, re.Pattern[str], _Check | None], ...] = (
    ("email", _EMAIL, None),
    ("iban", _IBAN, lambda m: iban_ok(m.group(0))),
    ("card", _CARD, _card),
    ("ssn", _SSN, None),
    ("phone", _PHONE, lambda m: _digits_in_range(m.group(0), 8, 15)),
    ("ip", _IPV4, None),
)


def scrub_text(text: str, counts: Counter[str] | None = None) -> tuple[str, Counter[str]]:
    """`text` with personal data and secrets replaced by `[KIND]`, and how many of each kind were replaced.

    Pass `counts` to accumulate over many texts."""
    found: Counter[str] = counts if counts is not None else Counter()
    out, n = _SECRET.subn(PLACEHOLDER["secret"], text)
    found["secret"] += n
    out, n = _BEARER.subn(lambda m: m.group(1) + PLACEHOLDER["secret"], out)
    found["secret"] += n
    out, n = _ASSIGNMENT.subn(lambda m: m.group(1) + m.group(2) + PLACEHOLDER["secret"] + m.group(2), out)
    found["secret"] += n
    for kind, pattern, check in _STEPS:
        out = _replace(pattern, out, kind, check, found)
    return out, found


def _replace(
    pattern: re.Pattern[str], text: str, kind: str, check: _Check | None, found: Counter[str]
) -> str:
    def sub(m: re.Match[str]) -> str:
        if check is not None and not check(m):
            return m.group(0)
        found[kind] += 1
        return PLACEHOLDER[kind]

    return pattern.sub(sub, text)


def scrub_value(value: Any, counts: Counter[str]) -> Any:
    """`value` with every string inside it (dict values, list items) scrubbed; keys are left alone."""
    if isinstance(value, str):
        return scrub_text(value, counts)[0]
    if isinstance(value, Mapping):
        return {k: scrub_value(v, counts) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v, counts) for v in value]
    return value
