"""Running a prompt: render it for its inputs (retrieval, dynamic examples and resources included) and
call the model. The one entry point every front end uses (the CLI, the library, the web playground).

Usage (`h` is `honed.connect()`):

from honed.prompts import get_prompt
from honed.run import run_prompt

version, prompt = get_prompt(h.store, "qa@production")
print(run_prompt(h, prompt, {"question": "Why is the sky blue?"}).text)
"""

from honed.run.prompt import (
    ChainResult,
    Grid,
    Piece,
    PromptRun,
    StepResult,
    arun_chain,
    arun_prompt,
    arun_prompt_grid,
    astream_prompt,
    astream_prompt_grid,
    prompt_log_context,
    ready,
    run_chain,
    run_prompt,
    run_prompt_many,
)
from honed.run.render import Rendered, Renderer

__all__ = [
    "ChainResult",
    "Grid",
    "Piece",
    "PromptRun",
    "Rendered",
    "Renderer",
    "StepResult",
    "arun_chain",
    "arun_prompt",
    "arun_prompt_grid",
    "astream_prompt",
    "astream_prompt_grid",
    "prompt_log_context",
    "ready",
    "run_chain",
    "run_prompt",
    "run_prompt_many",
]
