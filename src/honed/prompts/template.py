"""Sandboxed Jinja2 templates for prompt messages.

Prompt text often carries user-supplied or retrieved content, and templates themselves get shared and
pasted, so they are rendered in Jinja2's `SandboxedEnvironment`: `{{ ''.__class__ }}` and friends raise
instead of reaching Python internals. `StrictUndefined` makes a missing variable an error that names it;
silently rendering an empty string would send a broken prompt to the model and spend money measuring it.
Autoescaping is off (this is not HTML) and trailing newlines are kept (they can matter to a model).

Beyond Jinja's own filters, templates have the few that prompts written for Nunjucks (promptfoo) use and
Jinja lacks: `dump` (JSON text, as JavaScript's JSON.stringify; `json` is the same), `load` (parse JSON
text) and `nl2br` (newlines as `<br />`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator

from honed.errors import InvalidInputError


def _dump(value: Any, indent: int | str | None = None) -> str:
    # JSON.stringify's spacing: none between items unless an indent is given.
    if indent in (None, 0, ""):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _load(text: str) -> Any:
    return json.loads(text)


def _nl2br(text: Any) -> str:
    return str(text).replace("\r\n", "<br />\n").replace("\n", "<br />\n")


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters.update({"dump": _dump, "json": _dump, "load": _load, "nl2br": _nl2br})
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'$")


def check_syntax(source: str) -> None:
    """Raise `ValueError` (for pydantic validators) if `source` is not a valid template."""
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error: {exc.message} (template line {exc.lineno})") from None


def _checked(source: str) -> str:
    check_syntax(source)
    return source


#: A field of a pydantic model that holds a template: its syntax is checked when the model is read.
TemplateText = Annotated[str, AfterValidator(_checked)]


def template_variables(source: str) -> set[str]:
    """Variables `source` reads from its context (not those it sets itself or loops over)."""
    return set(meta.find_undeclared_variables(_ENV.parse(source)))


def render(source: str, variables: Mapping[str, Any], *, where: str) -> str:
    """Render `source`; every failure is an `InvalidInputError` prefixed by `where` (e.g. "prompt 'qa'
    message 2 (user)") whose hint lists the variables that were given."""
    if "{" not in source and "\r" not in source:
        # Plain text (a fixed system message, say) renders to itself: Jinja would only normalise "\r".
        return source
    given = ", ".join(sorted(variables)) or "none"
    try:
        return _compile(source).render(dict(variables))
    except SecurityError as exc:
        raise InvalidInputError(
            f"{where}: the template tried an unsafe operation ({exc})",
            hint="templates may only read variables, their items and their public attributes",
        ) from None
    except UndefinedError as exc:
        text = str(exc.message or exc)
        m = _UNDEFINED.match(text)
        if m:
            raise InvalidInputError(
                f"{where}: undefined variable {m.group(1)!r}", hint=f"given variables: {given}"
            ) from None
        m = _NO_ATTRIBUTE.search(text)
        what = f"undefined attribute or key {m.group(1)!r}" if m else text
        raise InvalidInputError(f"{where}: {what}", hint=f"given variables: {given}") from None
    except TemplateSyntaxError as exc:  # pragma: no cover - prompts are syntax-checked when loaded
        raise InvalidInputError(f"{where}: template syntax error: {exc.message}") from None
    # A template can fail like any expression ({{ 1 / 0 }}, {{ n + 'x' }}): still the user's input.
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise InvalidInputError(f"{where}: template error: {exc}", hint=f"given variables: {given}") from None


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    # Experiments render one prompt thousands of times: compile each distinct text once.
    return _ENV.from_string(source)
