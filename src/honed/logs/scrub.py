"""Scrubbing personal data and secrets out of text before it becomes training data. Best effort: it finds
the common shapes of each kind, not every one.

Where a maintained detector exists it does the judging: phone numbers are found by libphonenumber's
matcher (`phonenumbers`) for international numbers and the national formats of a few default regions;
card numbers must pass the Luhn check and IBANs their country's format and mod-97 check (`python-stdnum`);
IPv4 and IPv6 candidates must parse as addresses (`ipaddress`). Secret patterns are transcribed from
gitleaks' rules (v8.30, config/gitleaks.toml; cited by rule id below), plus the shapes those rules leave
out: a bare AWS secret key, `Authorization: Basic ...`, a URL's `user:password@`, and `label: value`
pairs (`password=...`). Secrets go first (an API key may contain digit runs that would otherwise look like
a phone number), then the kinds from most to least specific.

Some rules keep ordinary text untouched: a phone number written without a country code counts only when
grouped the way its region writes phone numbers (or, when a valid number, split by spaces or dashes and
starting with the trunk prefix), never when glued to a longer number (`0.0040322581`); an SSN needs the
dashed 3-2-4 shape; loopback and unspecified addresses (127.0.0.1, ::1, 0.0.0.0) are left, as they say
nothing about anyone; a `token:` or `secret:` in prose needs a digit in its value to count. A four-part
version string that is also a valid IPv4 address (`1.2.3.4`) is scrubbed as `[IP]`: the two cannot be
told apart.

A scrubbed value is replaced by its kind in brackets (`[EMAIL]`), so a model trained on the result
learns where such a value goes without ever seeing one.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import phonenumbers
from stdnum import iban as _stdnum_iban
from stdnum import luhn as _stdnum_luhn

KINDS = ("secret", "email", "iban", "card", "ssn", "phone", "ip")
PLACEHOLDER = {kind: f"[{kind.upper()}]" for kind in KINDS}

#: Regions whose national phone formats (no country code) are recognised; numbers written with a country
#: code are recognised whatever their region.
PHONE_REGIONS = ("US", "GB", "FR")

# Token ends: gitleaks ends most rules with `(?:[\x60'"\s;]|\\[nr]|$)`; here a token simply may not run on,
# so that a key followed by a full stop or a comma is still found.
_END = r"(?![A-Za-z0-9_-])"
_SECRET_PATTERNS = (
    # PEM private key blocks, whatever the algorithm (gitleaks: private-key).
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY"
    r"(?: BLOCK)?-----",
    r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic (sk-ant-api03-...)
    r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",  # gitleaks: aws-access-token
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # gitleaks: github-pat, -oauth, -app-token, -refresh-token
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",  # gitleaks: github-fine-grained-pat
    r"\bglpat-[\w-]{20,}" + _END,  # gitleaks: gitlab-pat
    r"\bxox[abposre]-[A-Za-z0-9-]{10,}",  # gitleaks: slack-bot-token, -user-token, -legacy-*
    r"\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+",  # gitleaks: slack-app-token
    # gitleaks: slack-webhook-url
    r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
    r"\b(?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99}" + _END,  # gitleaks: stripe-access-token
    r"\bAIza[\w-]{35}" + _END,  # gitleaks: gcp-api-key
    r"\bhf_[A-Za-z]{34}" + _END,  # gitleaks: huggingface-access-token
    r"\bnpm_[A-Za-z0-9]{36}" + _END,  # gitleaks: npm-access-token
    r"\bpypi-AgEIcHlwaS5vcmc[\w-]{50,1000}",  # gitleaks: pypi-upload-token
    r"\bSG\.[A-Za-z0-9=_.-]{66}" + _END,  # gitleaks: sendgrid-api-token
    r"\bSK[0-9a-fA-F]{32}\b",  # gitleaks: twilio-api-key
    r"\b(?:EAAA|sq0atp-)[\w-]{22,60}" + _END,  # gitleaks: square-access-token
    r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",  # gitleaks: shopify-*
    r"\bdapi[a-f0-9]{32}(?:-\d)?\b",  # gitleaks: databricks-api-token
    r"\bdo[opr]_v1_[a-f0-9]{64}\b",  # gitleaks: digitalocean-*
    r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",  # JWT (header and payload are JSON)
)
_SECRET = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
# `Bearer <token>`, `Authorization: Basic <credentials>` and `password=...` keep their label: the text
# still reads as what it was. (The header shapes follow gitleaks' curl-auth-header rule.)
_BEARER = re.compile(r"\b(Bearer\s+)(?!\[)[A-Za-z0-9._~+/=-]{8,}")
_AUTH_HEADER = re.compile(
    r"""(?i)\b(authorization["']?\s*[:=]\s*["']?(?:basic|token|api-token)[ \t]+)"""
    r"(?!\[)[A-Za-z0-9._~+/=-]{8,}"
)
_BASIC = re.compile(r"\b(Basic[ \t]+)(?!\[)([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])")
# The password in a URL's `user:password@` (the pattern of detect-secrets' BasicAuthDetector).
_URL_PASSWORD = re.compile(r"(://[^:/?#\[\]@!$&'()*+,;=\s]+:)(?!\[)[^:/?#\[\]@!$&'()*+,;=\s]+(?=@)")
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![A-Za-z0-9])((?:password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key
        |secret[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|private[_-]?key|token)
       ["']?\s*[:=]\s*)
    (["']?)(?!\[)([^\s"',;]+)\2
    """
)
# Unquoted values that are code, not secrets: `api_key: str | None`, `token = None`.
_CODE_WORDS = frozenset({"none", "null", "nil", "true", "false", "undefined", "str", "bytes", "int", "bool"})
# Labels that ordinary prose uses too ("a token: requests with it..."): their unquoted value needs a digit.
_WEAK_LABELS = frozenset({"token", "secret"})


def _assigned(m: re.Match[str]) -> bool:
    """Whether a `label: value` match holds a secret rather than code or prose."""
    if m.group(2):
        return True  # a quoted literal
    value = m.group(3)
    if "(" in value or value.rstrip(").,").lower() in _CODE_WORDS:
        return False  # a call, a type or a constant
    label = re.match(r"[A-Za-z_-]+", m.group(1))
    weak = label is not None and label.group(0).lower() in _WEAK_LABELS
    return not weak or any(ch.isdigit() for ch in value)


# An AWS secret access key: 40 characters of base64 without a label. It is told from other 40-character
# runs by mixing upper case, lower case and digits with high entropy: a random key scores above 4.3 bits
# per character in more than 99.9% of cases, a path or a camel-cased identifier below.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=_.-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])")
_AWS_MIN_ENTROPY = 4.3

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# 13 to 19 digits, optionally grouped by spaces, dashes or dots; never after a `+` (that is a phone number).
_CARD = re.compile(r"(?<![\w.,+-])\d(?:[ .-]?\d){12,18}(?![\w-]|[.,]\d)")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
# IPv6 candidates: hex groups and colons (and a trailing dotted IPv4); `ipaddress` decides.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4}|)(?![\w:]|\.\d)"
)


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (every real card number does)."""
    return digits.isdigit() and _stdnum_luhn.is_valid(digits)


def iban_ok(text: str) -> bool:
    """Whether `text` (spaces and either case allowed) is an IBAN: its country's length and format and a
    valid mod-97 check."""
    return bool(_stdnum_iban.is_valid(text.upper()))


def _entropy(text: str) -> float:
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _aws_secret(m: re.Match[str]) -> bool:
    key = m.group(0)
    mixed = any(c.isupper() for c in key) and any(c.islower() for c in key) and any(c.isdigit() for c in key)
    return mixed and _entropy(key) >= _AWS_MIN_ENTROPY


def _basic_credentials(m: re.Match[str]) -> bool:
    """Whether a bare `Basic xxx` carries base64 of `user:password` (and is not just the word Basic)."""
    token = m.group(2)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in decoded and decoded.isprintable()


def _card(m: re.Match[str]) -> bool:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    separators = set(re.findall(r"\D", text))
    groups = re.split(r"\D", text)
    # One kind of separator, groups of three or more digits (4-4-4-4, 4-6-5): not a list of numbers. A run
    # of one repeated digit (0000 0000 0000 0000) passes Luhn but is a placeholder, not a card.
    return (
        len(separators) <= 1
        and (not separators or min(len(g) for g in groups) >= 3)
        and 13 <= len(digits) <= 19
        and len(set(digits)) > 1
        and luhn_ok(digits)
    )


def _ip(m: re.Match[str]) -> bool:
    text = m.group(0)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False  # 127.0.0.1, 0.0.0.0, ::1 say nothing about anyone
    if address.version == 4:
        return True
    # `a[1::2]` (a slice) and `fe80::1` parse as IPv6: require three groups, as any routable address has.
    return sum(1 for group in re.split(r"[:.]", text) if group) >= 3


_DIGIT_GROUPS = re.compile(r"\d+")
_PLAIN_GROUPS = re.compile(r"\d+(?:[ -]\d+)+$")
_GLUED_BEFORE = re.compile(r"[\w.,]$")
_GLUED_AFTER = re.compile(r"\w|[.,]\d")


def _phone_ok(match: phonenumbers.PhoneNumberMatch, region: str, text: str) -> bool:
    raw = match.raw_string
    if _GLUED_BEFORE.search(text, 0, match.start) or _GLUED_AFTER.match(text, match.end):
        return False  # part of a longer number: `0.0040322581`, `2.5551234567`
    number = match.number
    groups = _DIGIT_GROUPS.findall(raw)
    if len(phonenumbers.national_significant_number(number)) < 8:
        return False  # extensions, room numbers, local numbers without an area code
    valid = phonenumbers.is_valid_number(number)
    if raw.lstrip("(").startswith(("+", "00")):
        # A country code: valid, or grouped exactly as the international format groups it (a number of a
        # range kept free for fiction, such as +44 7700 900123, is still shaped like a phone number).
        formatted = _DIGIT_GROUPS.findall(
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        )
        return valid or (len(formatted) >= 3 and groups[1:] == formatted[1:] and _possible(number))
    if len(groups) < 2:
        return False  # an undivided run of digits is an id as often as a phone number
    national = _DIGIT_GROUPS.findall(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    prefix = metadata.national_prefix if metadata is not None else None
    # Grouped as the region writes its numbers (a format that groups at all: libphonenumber leaves a
    # number of no known shape, such as the digits of a decimal, in one piece).
    exact = groups == national or (prefix and groups[0] == prefix and groups[1:] == national)
    if exact and len(national) >= 2:
        return _possible(number)
    # Otherwise a valid number written with its trunk prefix, in groups split by spaces or dashes only
    # (`0207 946 0958`): not a sum, a list of decimals or a date.
    return valid and bool(prefix) and groups[0].startswith(prefix or "") and bool(_PLAIN_GROUPS.match(raw))


def _possible(number: phonenumbers.PhoneNumber) -> bool:
    return bool(phonenumbers.is_possible_number(number))


def _phones(text: str) -> list[tuple[int, int]]:
    if not any(ch.isdigit() for ch in text):
        return []
    spans: list[tuple[int, int]] = []
    for region in PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
        spans.extend((m.start, m.end) for m in matcher if _phone_ok(m, region, text))
    return spans


_Check = Callable[[re.Match[str]], bool]
_Finder = Callable[[str], Iterable[tuple[int, int]]]


def _regex(pattern: re.Pattern[str], check: _Check | None = None) -> _Finder:
    def find(text: str) -> list[tuple[int, int]]:
        return [m.span() for m in pattern.finditer(text) if check is None or check(m)]

    return find


def _either(*finders: _Finder) -> _Finder:
    def find(text: str) -> list[tuple[int, int]]:
        return [span for finder in finders for span in finder(text)]

    return find


_STEPS: tuple[tuple[str, _Finder], ...] = (
    ("email", _regex(_EMAIL)),
    ("iban", _regex(_IBAN, lambda m: iban_ok(m.group(0)))),
    ("card", _regex(_CARD, _card)),
    ("ssn", _regex(_SSN)),
    ("phone", _phones),
    ("ip", _either(_regex(_IPV4, _ip), _regex(_IPV6, _ip))),
)


def scrub_text(text: str, counts: Counter[str] | None = None) -> tuple[str, Counter[str]]:
    """`text` with personal data and secrets replaced by `[KIND]`, and how many of each kind were replaced.

    Pass `counts` to accumulate over many texts."""
    found: Counter[str] = counts if counts is not None else Counter()
    secret = PLACEHOLDER["secret"]
    out, n = _SECRET.subn(secret, text)
    found["secret"] += n
    labelled_secrets = (
        (_BEARER, None),
        (_AUTH_HEADER, None),
        (_BASIC, _basic_credentials),
        (_URL_PASSWORD, None),
    )
    for labelled, check in labelled_secrets:
        out = _keep_label(labelled, check, out, found)
    out = _keep_label(_ASSIGNMENT, _assigned, out, found, quote_group=2)
    out = _replace(_regex(_AWS_SECRET, _aws_secret), out, "secret", found)
    for kind, finder in _STEPS:
        out = _replace(finder, out, kind, found)
    return out, found


def _keep_label(
    pattern: re.Pattern[str],
    check: _Check | None,
    text: str,
    found: Counter[str],
    *,
    quote_group: int | None = None,
) -> str:
    """`text` with each match of `pattern` (that passes `check`) replaced by its label (group 1) and
    `[SECRET]`, in the quotes the value had (`quote_group`)."""

    def sub(m: re.Match[str]) -> str:
        if check is not None and not check(m):
            return m.group(0)
        found["secret"] += 1
        quote = m.group(quote_group) if quote_group is not None else ""
        return m.group(1) + quote + PLACEHOLDER["secret"] + quote

    return pattern.sub(sub, text)


def _replace(finder: _Finder, text: str, kind: str, found: Counter[str]) -> str:
    """`text` with every span `finder` reports replaced by the kind's placeholder (overlapping spans, as
    from several phone regions, merged)."""
    spans = sorted(set(finder(text)))
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[str] = []
    last = 0
    for start, end in merged:
        parts += [text[last:start], PLACEHOLDER[kind]]
        last = end
        found[kind] += 1
    parts.append(text[last:])
    return "".join(parts)


def scrub_value(value: Any, counts: Counter[str]) -> Any:
    """`value` with every string inside it (dict values, list items) scrubbed; keys are left alone."""
    if isinstance(value, str):
        return scrub_text(value, counts)[0]
    if isinstance(value, Mapping):
        return {k: scrub_value(v, counts) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v, counts) for v in value]
    return value
