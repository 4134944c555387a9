"""Importers: suites written for other tools as honed prompts, a dataset and an experiment spec.

`import_promptfoo(store, Path("promptfooconfig.yaml"), models=ModelMap.parse(["openai:*=local/m"]),
default_model=...)` and `import_openai_evals(...)` map everything or refuse with one line naming what and
where; only then do they write the files (`--out`) and record the prompt and dataset versions.
"""

from honed.importers.common import Imported, ImportPlan, ModelMap
from honed.importers.openai_evals import import_openai_evals, plan_openai_evals
from honed.importers.promptfoo import import_promptfoo, plan_promptfoo

__all__ = [
    "ImportPlan",
    "Imported",
    "ModelMap",
    "import_openai_evals",
    "import_promptfoo",
    "plan_openai_evals",
    "plan_promptfoo",
]
