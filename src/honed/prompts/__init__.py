"""Prompts: versioned templates (sandboxed Jinja2), labels, chains and structured output.

Usage (`h` is `honed.connect()`):

from honed.prompts import load_prompt, push, get_prompt, run_prompt

prompt = load_prompt("prompts/qa.yaml")          # strict: errors say FILE:LINE: field: problem
[pushed] = push(h.store, [prompt], note="shorter system message")
version, prompt = get_prompt(h.store, "qa@production")
completion = run_prompt(h.client, prompt, {"question": "Why is the sky blue?"})
"""

from honed.prompts.chain import Chain, ChainStep
from honed.prompts.diff import Diff, FieldChange, diff_prompts
from honed.prompts.execute import ChainResult, StepResult, arun_chain, prompt_request, run_chain, run_prompt
from honed.prompts.files import load_chain, load_file, load_files, load_prompt, load_prompts, to_yaml
from honed.prompts.registry import (
    Pushed,
    Summary,
    get_chain,
    get_item,
    get_prompt,
    history,
    list_all,
    parse_ref,
    push,
    remove_label,
    set_label,
)
from honed.prompts.spec import Example, Prompt, PromptMessage

__all__ = [
    "Chain",
    "ChainResult",
    "ChainStep",
    "Diff",
    "Example",
    "FieldChange",
    "Prompt",
    "PromptMessage",
    "Pushed",
    "StepResult",
    "Summary",
    "arun_chain",
    "diff_prompts",
    "get_chain",
    "get_item",
    "get_prompt",
    "history",
    "list_all",
    "load_chain",
    "load_file",
    "load_files",
    "load_prompt",
    "load_prompts",
    "parse_ref",
    "prompt_request",
    "push",
    "remove_label",
    "run_chain",
    "run_prompt",
    "set_label",
    "to_yaml",
]
