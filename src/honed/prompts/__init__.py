"""Prompts: versioned templates (sandboxed Jinja2), labels, chains and structured output.

Usage (`h` is `honed.connect()`):

from honed.prompts import load_prompt, push, get_prompt
from honed.run import run_prompt

prompt = load_prompt("prompts/qa.yaml")          # strict: errors say FILE:LINE: field: problem
[pushed] = push(h.store, [prompt], note="shorter system message")
version, prompt = get_prompt(h.store, "qa@production")
print(run_prompt(h, prompt, {"question": "Why is the sky blue?"}).text)   # rendering and the call: honed.run
"""

from honed.prompts.chain import Chain, ChainStep
from honed.prompts.diff import Diff, FieldChange, diff_prompts
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
    "ChainStep",
    "Diff",
    "Example",
    "FieldChange",
    "Prompt",
    "PromptMessage",
    "Pushed",
    "Summary",
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
    "push",
    "remove_label",
    "set_label",
    "to_yaml",
]
