"""Scrubbing: every kind is found in its common spellings, and ordinary numbers (prices, years, dates,
versions, order numbers, product codes) survive untouched."""

from __future__ import annotations

from collections import Counter

import pytest

from honed.logs.scrub import iban_ok, luhn_ok, scrub_text, scrub_value

POSITIVE = [
    ("mail me at jane.doe+work@example.co.uk please", "mail me at [EMAIL] please", "email"),
    ("Contact: JOHN_SMITH@mail.example.com.", "Contact: [EMAIL].", "email"),
    ("call +44 20 7946 0958 today", "call [PHONE] today", "phone"),
    ("call +1-415-555-0100", "call [PHONE]", "phone"),
    ("ring +49 (0)30 901820", "ring [PHONE]", "phone"),
    ("office: (415) 555-0100", "office: [PHONE]", "phone"),
    ("cell 415-555-0199.", "cell [PHONE].", "phone"),
    ("cell 415.555.0199", "cell [PHONE]", "phone"),
    ("cell 1-800-555-0199", "cell [PHONE]", "phone"),
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27", "card"),
    ("card 4111-1111-1111-1111", "card [CARD]", "card"),
    ("amex 378282246310005", "amex [CARD]", "card"),
    ("pay to GB82 WEST 1234 5698 7654 32 now", "pay to [IBAN] now", "iban"),
    ("IBAN DE89370400440532013000", "IBAN [IBAN]", "iban"),
    ("from 192.168.1.20 and 10.0.0.1", "from [IP] and [IP]", "ip"),
    ("SSN 123-45-6789", "SSN [SSN]", "ssn"),
    ("key sk-proj-abcDEF1234567890abcdefXYZ_-99", "key [SECRET]", "secret"),
    ("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz0123", "OPENAI_API_KEY=[SECRET]", "secret"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]", "secret"),
    ("gh ghp_" + "a1B2" * 9, "gh [SECRET]", "secret"),
    ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "pat [SECRET]", "secret"),
    ("slack xoxb-1234567890-abcdefghij", "slack [SECRET]", "secret"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "google [SECRET]", "secret"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt [SECRET]",
        "secret",
    ),
    ("Authorization: Bearer abc.def-ghi_jkl123", "Authorization: Bearer [SECRET]", "secret"),
    ("password=hunter2!", "password=[SECRET]", "secret"),
    ('{"api_key": "0123abcd"}', '{"api_key": "[SECRET]"}', "secret"),
    ("db_password: 'Tr0ub4dor&3'", "db_password: '[SECRET]'", "secret"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY----- done",
        "[SECRET] done",
        "secret",
    ),
]

NEGATIVE = [
    "The price is $1,299.99 or 1299.99 EUR, down from $2,000.",
    "Released in 2024; updated 2024-03-15 and 15/03/2024 at 10:30.",
    "Upgrade to version 1.2.3 or v2.10.1.4 of the library.",
    "Order #123456789 and order number 2024-000123 shipped.",
    "Product code SKU-12345-AB, part 4711-0815, model XJ-900.",
    "We sold 1,000,000 units; 12345678 is the ticket id.",
    "Call extension 4567 or room 101.",
    "Ratio 3.14159 and 0.95 threshold, 99.9% uptime.",
    "Tracking 1Z999AA10123456784 is on its way.",
    "ISBN 978-3-16-148410-0 and 555 apples.",
    "max_tokens=512 and tokens: 100 were used",
    "Placeholder card 0000 0000 0000 0000 is not real.",
    "Invoice 4111111111111112 fails the checksum.",
    "IP-like version 300.1.2.3 is not an address.",
]


@pytest.mark.parametrize(("text", "expected", "kind"), POSITIVE)
def test_finds_each_kind(text: str, expected: str, kind: str) -> None:
    out, counts = scrub_text(text)
    assert out == expected
    assert counts[kind] == expected.count(f"[{kind.upper()}]")
    assert sum(counts.values()) == counts[kind]


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_numbers_survive(text: str) -> None:
    out, counts = scrub_text(text)
    assert out == text
    assert sum(counts.values()) == 0


def test_counts_accumulate_over_nested_values() -> None:
    counts: Counter[str] = Counter()
    value = {
        "question": "I am bob@example.com, call 415-555-0100",
        "history": [{"role": "user", "content": "my card 4242 4242 4242 4242"}, 7, None],
    }
    out = scrub_value(value, counts)
    assert out == {
        "question": "I am [EMAIL], call [PHONE]",
        "history": [{"role": "user", "content": "my card [CARD]"}, 7, None],
    }
    assert counts == Counter({"email": 1, "phone": 1, "card": 1})


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")


def test_scrubbing_twice_changes_nothing_more() -> None:
    once, _ = scrub_text("token: abcdef123456 and Bearer zzzzzzzzzz and x@y.io")
    twice, counts = scrub_text(once)
    assert twice == once and sum(counts.values()) == 0
