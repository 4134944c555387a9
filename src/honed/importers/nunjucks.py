"""Nunjucks templates (promptfoo's) as honed's Jinja2 templates.

Nunjucks is a port of Jinja2, so most templates are already Jinja: `{{ var }}`, filters, `{% if %}`,
`{% for %}`. The differences that matter in prompts are rewritten: `{% elseif %}` is `{% elif %}`, and
JavaScript's `===`/`!==` are `==`/`!=`. The Nunjucks filters Jinja lacks (`dump`, `nl2br`) and promptfoo's
`load` are honed template filters (see `honed.prompts.template`). Whatever still does not compile (a
regex literal, a custom filter from `nunjucksFilters`) is refused with the template's location.
"""

from __future__ import annotations

import re

from honed.errors import InvalidInputError
from honed.prompts.template import check_syntax

_TAG = re.compile(r"(\{\{.*?\}\}|\{%.*?%\})", re.DOTALL)
_ELSEIF = re.compile(r"(\{%-?\s*)elseif\b")


def _rewrite_tag(tag: str) -> str:
    tag = _ELSEIF.sub(r"\1elif", tag)
    return tag.replace("!==", "!=").replace("===", "==")


def to_jinja(source: str, where: str) -> str:
    """`source` (a Nunjucks template) as a Jinja2 template; refuses one that cannot be translated."""
    out = _TAG.sub(lambda m: _rewrite_tag(m.group(0)), source)
    try:
        check_syntax(out)
    except ValueError as exc:
        raise InvalidInputError(
            f"{where}: the Nunjucks template does not translate to Jinja2: {exc}",
            hint="honed has Jinja's filters plus dump, json, load and nl2br; rewrite the template with those",
        ) from None
    return out
