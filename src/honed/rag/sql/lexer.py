"""SQL split into tokens the way the database's own lexer splits it.

The checks in `honed.rag.sql.check` are only as good as this agreement: a text the server reads as a
function call must never look like a string, a comment or another name here. So the rules follow the
servers' lexers, not Python's idea of text: whitespace is ASCII whitespace only, every non-ASCII character
can be part of a name, an unquoted name is folded to lower case in ASCII only, and PostgreSQL's `U&"..."`
names are decoded (with their `UESCAPE`). Anything unterminated is an error rather than a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from honed.errors import InvalidInputError

Dialect = Literal["sqlite", "postgresql"]

_SPACE = frozenset(" \t\n\r\f\v")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# A number, as PostgreSQL 15 reads one; letters right after it start a new token (the server calls that
# "trailing junk" and refuses the query, so reading them as a name here only ever refuses more).
_NUMBER = re.compile(
    r"0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?"
)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["word", "ident", "string", "number", "punct"]
    text: str  # words upper-cased (ASCII letters only); quoted identifiers without their quotes
    start: int = field(default=0, compare=False)  # where it is in the text: sql[start:end]
    end: int = field(default=0, compare=False)
    #: the name the server sees: a word folded to lower case, a quoted identifier as written (decoded)
    name: str = field(default="", compare=False)
    #: a U&"..." identifier whose escapes are still to be decoded (see `_decode_unicode_names`)
    escaped: bool = field(default=False, compare=False)


def is_word_start(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "_" or ch >= "\x80"


def is_word_char(ch: str) -> bool:
    return is_word_start(ch) or ("0" <= ch <= "9") or ch == "$"


def tokens(sql: str, dialect: Dialect) -> list[Token]:
    """SQL split into tokens the way the database reads it, comments dropped. An unterminated string,
    identifier or comment is an error: what the database would make of it is not worth guessing."""
    out: list[Token] = []
    i, n = 0, len(sql)
    pg = dialect == "postgresql"

    def unterminated(what: str) -> InvalidInputError:
        return InvalidInputError(f"the SQL has an unterminated {what}", hint="close it, or remove it")

    def quoted(i: int, close: str) -> int:
        """The index of the quote closing the identifier opened just before `i` (a doubled one is part of
        the name)."""
        while True:
            end = sql.find(close, i)
            if end < 0:
                raise unterminated("quoted identifier")
            if close != "]" and sql.startswith(close * 2, end):
                i = end + 2
                continue
            return end

    def string_end(j: int, backslash: bool) -> int:
        """The index of the quote closing the string whose body starts at `j`."""
        while True:
            if j >= n:
                raise unterminated("string")
            if backslash and sql[j] == "\\":
                j += 2
            elif sql[j] == "'":
                if not sql.startswith("''", j):
                    return j
                j += 2
            else:
                j += 1

    while i < n:
        ch = sql[i]
        if ch in _SPACE:
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            # PostgreSQL nests block comments; SQLite ends one at the first */.
            depth, i = 1, i + 2
            while depth:
                if i >= n:
                    raise unterminated("comment")
                if sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                elif pg and sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                else:
                    i += 1
        elif pg and ch in "uU" and sql.startswith("&", i + 1) and sql[i + 2 : i + 3] in ("'", '"'):
            # U&'...' and U&"..." (the U cannot be the end of a longer name: that branch comes later).
            if sql[i + 2] == "'":
                end = string_end(i + 3, backslash=False)
                out.append(Token("string", sql[i + 3 : end], i, end + 1))
            else:
                end = quoted(i + 3, '"')
                body = sql[i + 3 : end].replace('""', '"')
                out.append(Token("ident", body, i, end + 1, name=body, escaped=True))
            i = end + 1
        elif ch == "'":
            # E'...' strings (PostgreSQL) take backslash escapes; every other string only ''.
            backslash = bool(
                pg and out and out[-1].kind == "word" and out[-1].text == "E" and out[-1].end == i
            )
            end = string_end(i + 1, backslash)
            if backslash:
                out.pop()  # the E belongs to the string
            out.append(Token("string", sql[i + 1 : end], i, end + 1))
            i = end + 1
        elif ch == '"' or (not pg and ch in "`["):
            close = {"[": "]"}.get(ch, ch)
            end = quoted(i + 1, close)
            body = sql[i + 1 : end].replace(close * 2, close) if close != "]" else sql[i + 1 : end]
            out.append(Token("ident", body, i, end + 1, name=body))
            i = end + 1
        elif ch == "$" and pg and not (i > 0 and is_word_char(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is None:  # $1: a parameter
                j = i + 1
                while j < n and "0" <= sql[j] <= "9":
                    j += 1
                out.append(Token("punct", sql[i:j], i, j))
                i = j
                continue
            end = sql.find(tag.group(0), tag.end())
            if end < 0:
                raise unterminated("dollar-quoted string")
            out.append(Token("string", sql[tag.end() : end], i, end + len(tag.group(0))))
            i = end + len(tag.group(0))
        elif ("0" <= ch <= "9") or (ch == "." and "0" <= sql[i + 1 : i + 2] <= "9" and i + 1 < n):
            number = _NUMBER.match(sql, i)
            j = number.end() if number else i + 1
            out.append(Token("number", sql[i:j], i, j))
            i = j
        elif is_word_start(ch):
            j = i + 1
            while j < n and is_word_char(sql[j]):
                j += 1
            word = sql[i:j]
            out.append(Token("word", word.translate(_UPPER), i, j, name=word.translate(_LOWER)))
            i = j
        else:
            out.append(Token("punct", ch, i, i + 1))
            i += 1
    return _decode_unicode_names(out) if pg else out


def _decode_unicode_names(toks: list[Token]) -> list[Token]:
    """Decode each U&"..." identifier with its escape character (`\\`, or the one `UESCAPE 'c'` after it
    names), as PostgreSQL does before it looks the name up."""
    out: list[Token] = []
    k = 0
    while k < len(toks):
        t = toks[k]
        k += 1
        if not t.escaped:
            out.append(t)
            continue
        escape = "\\"
        if k + 1 < len(toks) and toks[k].kind == "word" and toks[k].text == "UESCAPE":
            if toks[k + 1].kind != "string" or len(toks[k + 1].text) != 1:
                raise _bad_escape("UESCAPE needs a single character in quotes")
            escape = toks[k + 1].text
            if escape in "0123456789abcdefABCDEF+'\"" or escape in _SPACE:
                raise _bad_escape(f"{escape!r} cannot be a Unicode escape character")
            k += 2
        decoded = _unescape(t.text, escape)
        out.append(replace(t, text=decoded, name=decoded, escaped=False))
    return out


def _unescape(body: str, escape: str) -> str:
    out: list[str] = []
    i = 0
    high: int | None = None  # the first half of a surrogate pair
    while i < len(body):
        ch = body[i]
        if ch != escape:
            if high is not None:
                raise _bad_escape("a surrogate pair is cut in half")
            out.append(ch)
            i += 1
            continue
        if body.startswith(escape, i + 1):
            out.append(escape)
            i += 2
            continue
        digits = 6 if body.startswith("+", i + 1) else 4
        start = i + 1 + (digits == 6)
        code = body[start : start + digits]
        if len(code) != digits or not all(c in "0123456789abcdefABCDEF" for c in code):
            raise _bad_escape(f"invalid Unicode escape {body[i : start + digits]!r}")
        value = int(code, 16)
        i = start + digits
        if 0xD800 <= value <= 0xDBFF and high is None:
            high = value
            continue
        if 0xDC00 <= value <= 0xDFFF:
            if high is None:
                raise _bad_escape("a surrogate pair is cut in half")
            value = 0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00)
            high = None
        elif high is not None or value == 0 or value > 0x10FFFF:
            raise _bad_escape(f"invalid Unicode code point {value:#x}")
        out.append(chr(value))
    if high is not None:
        raise _bad_escape("a surrogate pair is cut in half")
    return "".join(out)


def _bad_escape(what: str) -> InvalidInputError:
    return InvalidInputError(f"the SQL has a bad U& name: {what}", hint='write the name plainly ("name")')


def at(toks: list[Token], k: int, *texts: str, kind: str = "punct") -> bool:
    """Whether token `k` exists and is one of `texts` of that kind (words are upper-case)."""
    return 0 <= k < len(toks) and toks[k].kind == kind and toks[k].text in texts
