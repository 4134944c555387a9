"""Datasets: cases, content-addressed versions, JSONL/CSV import, JSONL export, deterministic splits.

Typical use: `import_file(store, "faq", Path("faq.jsonl"), plan=SplitPlan(seed=0))` records a version
(new only if the content changed); `get_dataset(store, "faq@v1").split("test")` reads one split back.
"""

from honed.datasets.case import STANDARD_SPLITS, Case, derived_id
from honed.datasets.columns import Columns
from honed.datasets.readers import FORMATS, ParsedFile, detect_format, read_cases
from honed.datasets.registry import (
    FORMAT,
    KIND,
    DatasetVersion,
    ImportResult,
    dataset_body,
    dataset_history,
    get_dataset,
    import_file,
    list_datasets,
    parse_ref,
    record_cases,
)
from honed.datasets.splits import DEFAULT_RATIOS, SplitPlan, assign_splits, parse_ratios
from honed.datasets.writers import case_line, export_jsonl, write_jsonl

__all__ = [
    "DEFAULT_RATIOS",
    "FORMAT",
    "FORMATS",
    "KIND",
    "STANDARD_SPLITS",
    "Case",
    "Columns",
    "DatasetVersion",
    "ImportResult",
    "ParsedFile",
    "SplitPlan",
    "assign_splits",
    "case_line",
    "dataset_body",
    "dataset_history",
    "derived_id",
    "detect_format",
    "export_jsonl",
    "get_dataset",
    "import_file",
    "list_datasets",
    "parse_ratios",
    "parse_ref",
    "read_cases",
    "record_cases",
    "write_jsonl",
]
