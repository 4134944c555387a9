"""Curation: turn selected logs into a dataset version fit to train on.

The steps run in a fixed order and each one is counted, so a report says exactly where rows went:
select (a `LogFilter`) -> drop failed generations -> exact duplicates -> near duplicates -> leakage
against an eval set -> scrub -> split -> record. Duplicates and leakage are judged on the *raw* inputs,
before scrubbing, so that a placeholder (`[EMAIL]`) cannot make two different rows look the same or hide
a row that copies an eval case. One case per log, keyed by the log id, so re-curating the same logs gives
the same case ids and (with the same splits seed) the same splits.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honed.datasets.case import Case
from honed.datasets.registry import KIND, ImportResult, get_dataset, record_cases
from honed.datasets.splits import SplitPlan, assign_splits, parse_ratios
from honed.errors import InvalidInputError, NotFoundError
from honed.logs.dedupe import exact_duplicates, input_text, near_duplicates, nearest, normalise
from honed.logs.scrub import KINDS, scrub_text, scrub_value
from honed.rag.index.embedders.registry import DEFAULT_EMBEDDER
from honed.store.names import check_name

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.rag.types import Embedder, Vectors
    from honed.store.database import Store
    from honed.store.logs import LogFilter

#: How many dropped rows of each kind a report shows as examples.
EXAMPLES = 5
_SNIPPET = 160


@dataclass(frozen=True, slots=True)
class Leak:
    """A training row that copies (`exact`) or nearly copies (`near`) case `eval_case` of the eval set."""

    log_id: str
    eval_case: str
    similarity: float
    match: str
    input: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class DuplicateRow:
    """Log `log_id` was dropped as a duplicate of the kept log `kept`."""

    log_id: str
    kept: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class CurationReport:
    """What each step of `curate_logs` did, and the dataset version it recorded."""

    dataset: str = ""
    hash: str = ""
    status: str = ""
    selected: int = 0
    dropped_errors: int = 0
    dropped_empty: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    duplicate_examples: list[DuplicateRow] = field(default_factory=list)
    leakage_against: str | None = None
    leaking: list[Leak] = field(default_factory=list)
    leakage_dropped: int = 0
    scrubbed: dict[str, int] = field(default_factory=dict)
    references_from_corrections: int = 0
    cases: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["duplicate_examples"] = [d.to_dict() for d in self.duplicate_examples]
        out["leaking"] = [leak.to_dict() for leak in self.leaking]
        return out


def curate_logs(
    store: Store,
    name: str,
    where: LogFilter,
    *,
    dedupe: bool = True,
    near_threshold: float | None = 0.95,
    embedder: str | Embedder = DEFAULT_EMBEDDER,
    settings: Settings | None = None,
    split: str | None = "train=0.8,test=0.2",
    seed: int = 0,
    group_by: str | None = None,
    leakage_against: str | None = None,
    leakage_threshold: float = 0.95,
    allow_leakage: bool = False,
    scrub: bool = False,
    note: str | None = None,
) -> CurationReport:
    """Record the logs `where` selects as a version of dataset `name`; return what each step did.

    `dedupe` drops exact duplicates of the inputs and, unless `near_threshold` is None, rows whose input
    embedding is within that cosine similarity of an earlier kept row (the oldest of a group is kept).
    `leakage_against` names an eval dataset (`NAME[@REF]`): a row whose input equals or is within
    `leakage_threshold` of one of its cases is dropped, or kept with `allow_leakage` (it is still
    reported). `scrub` replaces personal data and secrets in inputs, messages and the reference.
    `split` gives ratios (`train=0.8,test=0.2`, None for no splits); `group_by` (`session_id`,
    `trace_id`, `prompt`, `model` or a key of the log's metadata) keeps each group in one split, and a
    log without that value is a group of its own. `embedder` is a reference or an Embedder; references
    are built with `settings` and cached in the store's embedding cache.

    Bad input (an unknown eval set, bad ratios, nothing left to record) raises before anything is written.
    """
    check_name(KIND, name)  # before any embedding work, not after
    _check_threshold("near_threshold", near_threshold)
    _check_threshold("leakage_threshold", leakage_threshold)
    plan = SplitPlan(ratios=parse_ratios(split), seed=seed, by="metadata._group") if split else None
    eval_cases = list(get_dataset(store, leakage_against).cases) if leakage_against else []
    report = CurationReport(leakage_against=leakage_against)

    logs = sorted(store.logs.query(where), key=lambda r: (r["created_at"], r["id"]))
    report.selected = len(logs)
    if not logs:
        raise NotFoundError(
            "no logged generation matches the filter", hint="loosen the filter; see `honed logs list`"
        )
    ids = [r["id"] for r in logs]
    feedback = store.logs.feedback_for(ids)
    scores = store.logs.scores_for(ids)

    cases: list[Case] = []
    groups: list[str] = []
    for row in logs:
        case = _case(row, feedback[row["id"]], scores[row["id"]], report)
        if case is not None:
            cases.append(case)
            groups.append(_group(row, group_by))

    texts = [input_text(c.inputs) for c in cases]
    drop: dict[int, str] = {}
    needs_vectors = bool(texts) and ((dedupe and near_threshold is not None) or bool(eval_cases))
    model, owned = _embedder(embedder, store, settings) if needs_vectors else (None, None)
    try:
        vectors = model.embed(texts) if model is not None else None
        if dedupe:
            _dedupe(cases, texts, vectors, near_threshold, drop, report)
        if model is not None and vectors is not None and eval_cases:
            found = _leaks(cases, texts, vectors, eval_cases, model, leakage_threshold, drop)
            for i, leak in found:
                report.leaking.append(
                    leak if not scrub else dataclasses.replace(leak, input=_clean(leak.input))
                )
                if not allow_leakage:
                    drop[i] = "leak"
            report.leakage_dropped = 0 if allow_leakage else len(found)
    finally:
        if owned is not None:
            owned.close()

    kept = [i for i in range(len(cases)) if i not in drop]
    counts: Counter[str] = Counter()
    chosen = [_scrub(cases[i], counts) if scrub else cases[i] for i in kept]
    if scrub:
        report.scrubbed = {kind: counts[kind] for kind in KINDS}
    if not chosen:
        raise InvalidInputError(
            f"no logs left to curate: {_where_they_went(report)}",
            hint="loosen the filter, raise --near, or pass --allow-leakage",
        )
    if plan is not None:
        chosen, warnings = _split(chosen, [groups[i] for i in kept], plan, group_by)
        report.warnings.extend(warnings)
    result = record_cases(store, name, chosen, note=note or f"curated from {len(logs)} logs")
    report.dataset = result.dataset.ref
    report.hash = result.dataset.hash
    report.status = result.status
    report.cases = len(chosen)
    report.splits = result.dataset.split_counts()
    return report


# -- one log -> one case -------------------------------------------------------------------------------


def _case(
    row: dict[str, Any],
    feedback: list[dict[str, Any]],
    scores: dict[str, dict[str, Any]],
    report: CurationReport,
) -> Case | None:
    corrections = [f["text"] for f in feedback if f["kind"] == "correction" and f.get("text")]
    output = row.get("output")
    if corrections:
        reference, source = corrections[-1], "correction"
        report.references_from_corrections += 1
    elif row.get("error"):
        report.dropped_errors += 1
        return None
    elif output is None or not str(output).strip():
        report.dropped_empty += 1
        return None
    else:
        reference, source = output, "output"
    inputs = row.get("inputs") or None
    if inputs is None:
        question = last_user_text(row.get("messages") or [])
        if question is None:
            report.dropped_empty += 1
            return None
        inputs = {"input": question}
    metadata: dict[str, Any] = {
        "log_id": row["id"],
        "prompt": row.get("prompt"),
        "prompt_version": row.get("prompt_version"),
        "model": row["model"],
        "messages": row.get("messages"),
        "reference_from": source,
        "feedback": feedback_summary(feedback),
        "scores": {name: s.get("value") for name, s in sorted(scores.items())},
    }
    for key in ("session_id", "trace_id"):
        if row.get(key) is not None:
            metadata[key] = row[key]
    return Case(id=row["id"], inputs=inputs, reference=reference, metadata=metadata)


def last_user_text(messages: Sequence[dict[str, Any]]) -> str | None:
    """The text of the last user message (text parts joined), or None when there is none."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        text = content_text(message.get("content"))
        if text.strip():
            return text
    return None


def content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def feedback_summary(feedback: list[dict[str, Any]]) -> dict[str, Any]:
    """Latest thumbs and rating, whether a correction exists, and a count per kind."""
    latest: dict[str, Any] = {}
    kinds: Counter[str] = Counter()
    for f in feedback:  # oldest first, so the last one of a kind wins
        kinds[f["kind"]] += 1
        if f["kind"] in ("thumbs", "rating"):
            latest[f["kind"]] = f.get("value")
    return {
        "thumbs": latest.get("thumbs"),
        "rating": latest.get("rating"),
        "corrected": kinds["correction"] > 0,
        "counts": dict(sorted(kinds.items())),
    }


def _group(row: dict[str, Any], group_by: str | None) -> str:
    if group_by is None:
        return str(row["id"])
    value = row.get(group_by) if group_by in row else (row.get("metadata") or {}).get(group_by)
    # A log with no session (say) shares nothing with other logs: it is a group of its own.
    return f"{group_by}={value}" if value is not None else f"log={row['id']}"


# -- the steps -----------------------------------------------------------------------------------------


def _embedder(
    ref: str | Embedder, store: Store, settings: Settings | None
) -> tuple[Embedder, Embedder | None]:
    """The embedder to use and, when built here, the one to close afterwards."""
    if not isinstance(ref, str):
        return ref, None
    from honed.config import Settings
    from honed.rag.index.embedders import CachedEmbedder, build_embedder

    built = CachedEmbedder(build_embedder(ref, settings or Settings()), store)
    return built, built


def _dedupe(
    cases: list[Case],
    texts: list[str],
    vectors: Vectors | None,
    threshold: float | None,
    drop: dict[int, str],
    report: CurationReport,
) -> None:
    exact = exact_duplicates(texts)
    for d in exact:
        drop[d.index] = "exact"
    report.exact_duplicates = len(exact)
    examples = [DuplicateRow(cases[d.index].id, cases[d.of].id, 1.0) for d in exact[:EXAMPLES]]
    if threshold is not None and vectors is not None:
        alive = [i for i in range(len(cases)) if i not in drop]
        near = near_duplicates(vectors[alive], threshold)
        for d in near:
            drop[alive[d.index]] = "near"
        report.near_duplicates = len(near)
        examples += [
            DuplicateRow(cases[alive[d.index]].id, cases[alive[d.of]].id, round(d.similarity, 4))
            for d in near[:EXAMPLES]
        ]
    report.duplicate_examples = examples


def _leaks(
    cases: list[Case],
    texts: list[str],
    vectors: Vectors,
    eval_cases: list[Case],
    model: Embedder,
    threshold: float,
    drop: dict[int, str],
) -> list[tuple[int, Leak]]:
    """(row index, leak) for each row still kept that equals or nearly equals an eval case's input."""
    eval_texts = [input_text(c.inputs) for c in eval_cases]
    exact = {normalise(t): c.id for t, c in zip(eval_texts, eval_cases, strict=True)}
    alive = [i for i in range(len(cases)) if i not in drop]
    index, score = nearest(vectors[alive], model.embed(eval_texts))
    found: list[tuple[int, Leak]] = []
    for pos, i in enumerate(alive):
        snippet = texts[i][:_SNIPPET]
        same = exact.get(normalise(texts[i]))
        if same is not None:
            found.append((i, Leak(cases[i].id, same, 1.0, "exact", snippet)))
        elif score[pos] >= threshold:
            nearest_id = eval_cases[index[pos]].id
            found.append((i, Leak(cases[i].id, nearest_id, round(score[pos], 4), "near", snippet)))
    return found


def _clean(text: str) -> str:
    return scrub_text(text)[0]


def _scrub(case: Case, counts: Counter[str]) -> Case:
    metadata = dict(case.metadata)
    if metadata.get("messages") is not None:
        metadata["messages"] = scrub_value(metadata["messages"], counts)
    return case.model_copy(
        update={
            "inputs": scrub_value(case.inputs, counts),
            "reference": scrub_value(case.reference, counts),
            "metadata": metadata,
        }
    )


def _split(
    cases: list[Case], groups: list[str], plan: SplitPlan, group_by: str | None
) -> tuple[list[Case], list[str]]:
    # Split on a private group key (the log id, or the group's value), then put the real metadata back.
    keyed = [c.model_copy(update={"metadata": {"_group": g}}) for c, g in zip(cases, groups, strict=True)]
    assigned, warnings = assign_splits(keyed, plan if group_by else dataclasses.replace(plan, by=None))
    out = [c.with_split(a.split) for c, a in zip(cases, assigned, strict=True)]
    return out, [w.replace("metadata._group", group_by or "log") for w in warnings]


def _check_threshold(name: str, value: float | None) -> None:
    if value is not None and not 0.0 < value <= 1.0:
        raise InvalidInputError(
            f"{name} must be a cosine similarity in (0, 1], not {value}", hint="e.g. 0.95 (1 = identical)"
        )


def _where_they_went(report: CurationReport) -> str:
    parts = [
        f"{report.selected} selected",
        f"{report.dropped_errors} with errors",
        f"{report.dropped_empty} without output",
        f"{report.exact_duplicates} exact duplicates",
        f"{report.near_duplicates} near duplicates",
        f"{report.leakage_dropped} leaking into {report.leakage_against}",
    ]
    return ", ".join(parts)


def add_log_to_dataset(store: Store, log_ref: str, name: str, *, by: str | None = None) -> ImportResult:
    """Add one log to dataset `name` as a case, the way `curate_logs` makes it (a correction is the
    reference, else the output), as a new version: the latest version's cases plus this one (replacing
    a case of the same id, so adding a log twice changes nothing), or the dataset's first version. `by`
    (a web UI user) is recorded in the audit log."""
    check_name(KIND, name)
    entry = store.logs.get(log_ref)
    report = CurationReport()
    case = _case(entry.log, entry.feedback, {s["evaluator"]: s for s in entry.scores}, report)
    if case is None:
        why = "it failed" if report.dropped_errors else "it has no output and no user input to ask again"
        raise InvalidInputError(
            f"log {entry.log['id']} cannot become a case: {why}",
            hint="give it a correction (the output it should have been) first",
        )
    try:
        cases = [c for c in get_dataset(store, name).cases if c.id != case.id]
    except NotFoundError:
        cases = []
    result = record_cases(store, name, [*cases, case], note=f"added log {entry.log['id']}")
    if by is not None:
        detail = {"log_id": entry.log["id"], "version": result.dataset.number, "status": result.status}
        store.audit.record(by, "dataset.add_log", KIND, name, detail)
    return result
