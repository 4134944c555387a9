"""Prompt search (`honed optimize prompt`): few-shot and instruction candidates under a budget, chosen on
the dev split, judged against the start on the test split. See `search` for the phases."""

from honed.optimize.prompt.result import KIND, CandidateRecord, SearchResult, stored_search
from honed.optimize.prompt.search import optimize_prompt
from honed.optimize.prompt.spec import SearchSpec, load_search, parse_search

__all__ = [
    "KIND",
    "CandidateRecord",
    "SearchResult",
    "SearchSpec",
    "load_search",
    "optimize_prompt",
    "parse_search",
    "stored_search",
]
