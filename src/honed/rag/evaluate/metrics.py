"""Retrieval metrics whose numbers are trec_eval's: MAP, MRR, P@k, R@k, nDCG(@k), hit_rate@k, R-prec.

Nothing here computes a measure. The values come from trec_eval's own C code (pytrec_eval-terrier,
driven through `ir_measures`); this module names the measures, reads and writes TREC files, and decides
which queries count, which is where wrappers usually drift from trec_eval:

- trec_eval averages over the queries that are in both the run and the qrels. `ir_measures`' evaluator
  instead adds a 0 for every qrels query the run lacks (always trec_eval's `-c`), so we drop those unless
  `complete=True` asks for `-c`.
- A query the qrels judge without any relevant document still counts (as 0), as in trec_eval: only
  queries with no judgments at all are ignored.
- Ties in score are broken by trec_eval (by doc id, descending). We hand it the scores as given and never
  re-rank, so a run written out and evaluated by the trec_eval binary gives the same numbers.
- `relevance_level` is trec_eval's `-l`: on graded qrels, a document counts as relevant for the binary
  measures when its grade is at least this. nDCG ignores it and uses the grades as gains, as trec_eval does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from honed.errors import InvalidInputError

Qrels = dict[str, dict[str, int]]
"""query id -> doc id -> grade: 0/1, or graded (higher is more relevant; trec_eval reads < 0 as unjudged)."""

Ranking = dict[str, dict[str, float]]
"""A run: query id -> doc id -> score (higher is retrieved first)."""

V = TypeVar("V")

__all__ = [
    "Qrels",
    "Ranking",
    "RetrievalEvaluation",
    "RetrievalMeasure",
    "evaluate",
    "parse_measures",
    "rank_lists_to_ranking",
    "read_qrels",
    "read_run",
    "write_run",
]


@dataclass(frozen=True, slots=True)
class _Family:
    display: str
    aliases: tuple[str, ...]
    cutoff: Literal["required", "forbidden", "optional"]
    form: str  # how the error message lists it


_FAMILIES = (
    _Family("P", ("p", "precision"), "required", "P@k (precision@k)"),
    _Family("R", ("r", "recall"), "required", "R@k (recall@k)"),
    _Family("MAP", ("map", "ap"), "forbidden", "MAP (AP)"),
    _Family("MRR", ("mrr", "rr"), "forbidden", "MRR (RR)"),
    _Family("nDCG", ("ndcg",), "optional", "nDCG, nDCG@k (ndcg@k)"),
    _Family("hit_rate", ("hit_rate", "success"), "required", "hit_rate@k (Success@k)"),
    _Family("R-prec", ("r-prec", "rprec"), "forbidden", "R-prec (Rprec)"),
)
_BY_ALIAS = {alias: family for family in _FAMILIES for alias in family.aliases}
KNOWN_FORMS = ", ".join(family.form for family in _FAMILIES)
_NAME = re.compile(r"^\s*([A-Za-z_-]+)\s*(?:@\s*(\S*))?\s*$")


@dataclass(frozen=True, slots=True)
class RetrievalMeasure:
    """One measure: `name` is how results show it (`P@5`, `MAP`, `nDCG@10`), `cutoff` the k of `@k`."""

    name: str
    family: str
    cutoff: int | None = None

    @property
    def trec_name(self) -> str:
        """The name trec_eval prints for this measure (`P_5`, `map`, `ndcg_cut_10`, `success_5`)."""
        k = self.cutoff
        return {
            "P": f"P_{k}",
            "R": f"recall_{k}",
            "MAP": "map",
            "MRR": "recip_rank",
            "nDCG": "ndcg" if k is None else f"ndcg_cut_{k}",
            "hit_rate": f"success_{k}",
            "R-prec": "Rprec",
        }[self.family]

    def _ir_measure(self, relevance_level: int) -> Any:
        import ir_measures  # here, not at module level: importing it installs a logging handler

        # rel is left at its default when it is 1 so the measure objects stay the plain, common ones.
        rel: dict[str, int] = {} if relevance_level == 1 else {"rel": relevance_level}
        k = self.cutoff
        if self.family == "P":
            return ir_measures.P(**rel) @ k
        if self.family == "R":
            return ir_measures.R(**rel) @ k
        if self.family == "MAP":
            return ir_measures.AP(**rel)
        if self.family == "MRR":
            return ir_measures.RR(**rel)
        if self.family == "nDCG":
            return ir_measures.nDCG if k is None else ir_measures.nDCG @ k
        if self.family == "hit_rate":
            return ir_measures.Success(**rel) @ k
        return ir_measures.Rprec(**rel)


def parse_measures(names: str | Iterable[str | RetrievalMeasure]) -> list[RetrievalMeasure]:
    """The measures these names mean, in order, duplicates dropped. A string may list several, comma
    separated (`"MAP,P@5,nDCG@10"`). Names are case-insensitive; unknown ones raise `InvalidInputError`."""
    items: Iterable[str | RetrievalMeasure] = (
        [part for part in names.split(",") if part.strip()] if isinstance(names, str) else names
    )
    out: dict[str, RetrievalMeasure] = {}
    for item in items:
        measure = item if isinstance(item, RetrievalMeasure) else _parse_one(item)
        out.setdefault(measure.name, measure)
    if not out:
        raise InvalidInputError("no retrieval measure given", hint=f"known measures: {KNOWN_FORMS}")
    return list(out.values())


def _parse_one(name: str) -> RetrievalMeasure:
    if not isinstance(name, str):
        raise InvalidInputError(
            f"a measure name must be a string, not {name!r}", hint=f"known: {KNOWN_FORMS}"
        )
    match = _NAME.match(name)
    family = _BY_ALIAS.get(match.group(1).lower()) if match else None
    if match is None or family is None:
        raise InvalidInputError(f"unknown retrieval measure {name.strip()!r}", hint=f"known: {KNOWN_FORMS}")
    raw_k = match.group(2)
    if raw_k is None:
        if family.cutoff == "required":
            raise InvalidInputError(
                f"measure {name.strip()!r} needs a cutoff",
                hint=f"e.g. {family.display}@10 (known: {KNOWN_FORMS})",
            )
        return RetrievalMeasure(family.display, family.display)
    if family.cutoff == "forbidden":
        raise InvalidInputError(
            f"measure {family.display} takes no cutoff, got {name.strip()!r}",
            hint=f"write {family.display} (known: {KNOWN_FORMS})",
        )
    if not raw_k.isdigit() or int(raw_k) < 1:
        raise InvalidInputError(
            f"the cutoff in {name.strip()!r} must be a whole number of at least 1",
            hint=f"e.g. {family.display}@10",
        )
    k = int(raw_k)
    return RetrievalMeasure(f"{family.display}@{k}", family.display, k)


@dataclass(frozen=True, slots=True)
class RetrievalEvaluation:
    """What `evaluate` found. `per_query[query_id][measure]` is each evaluated query's value (query ids
    in natural order); `aggregate[measure]` is the mean over those queries (trec_eval's "all" line).
    `unjudged_queries` were in the run but not the qrels (ignored, as trec_eval does); `missing_queries`
    were judged but not in the run (0 when `complete`, otherwise ignored)."""

    measures: tuple[str, ...]
    per_query: dict[str, dict[str, float]]
    aggregate: dict[str, float]
    relevance_level: int
    complete: bool
    unjudged_queries: tuple[str, ...]
    missing_queries: tuple[str, ...]

    @property
    def num_queries(self) -> int:
        """How many queries the means are over (trec_eval's `num_q`)."""
        return len(self.per_query)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measures": list(self.measures),
            "aggregate": self.aggregate,
            "per_query": self.per_query,
            "num_queries": self.num_queries,
            "relevance_level": self.relevance_level,
            "complete": self.complete,
            "unjudged_queries": list(self.unjudged_queries),
            "missing_queries": list(self.missing_queries),
        }


def evaluate(
    ranking: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: str | Iterable[str | RetrievalMeasure],
    *,
    relevance_level: int = 1,
    complete: bool = False,
) -> RetrievalEvaluation:
    """Evaluate a run against qrels exactly as `trec_eval -q [-c] [-l N]` would.

    By default the queries are those in both the run and the qrels; `complete=True` (trec_eval's `-c`)
    takes every judged query and scores the ones the run lacks as 0. `relevance_level` is `-l`."""
    wanted = parse_measures(measures)
    if isinstance(relevance_level, bool) or not isinstance(relevance_level, int) or relevance_level < 1:
        raise InvalidInputError(
            f"relevance_level must be a whole number of at least 1, got {relevance_level!r}",
            hint="the lowest grade that counts as relevant (trec_eval's -l), e.g. 2 on 0-3 graded qrels",
        )
    judged = _checked_qrels(qrels)
    run = _checked_run(ranking)
    if not judged:
        raise InvalidInputError(
            "the qrels judge no query", hint="give at least one query with judged documents"
        )
    in_both = [q for q in run if q in judged]
    missing = [q for q in judged if q not in run]
    queries = sorted(in_both + missing) if complete else sorted(in_both)
    if not queries:
        raise InvalidInputError(
            "no query is in both the run and the qrels",
            hint=f"the query ids must match (run has e.g. {next(iter(run), 'none')!r}, "
            f"qrels have e.g. {next(iter(judged))!r}), or pass complete=True to score missing queries as 0",
        )

    import ir_measures

    by_ir = {m._ir_measure(relevance_level): m for m in wanted}
    values: dict[str, dict[str, float]] = {m.name: {} for m in wanted}
    if in_both:
        evaluator = ir_measures.pytrec_eval.evaluator(list(by_ir), judged)
        run_in_both = {q: run[q] for q in in_both}
        for metric in evaluator.iter_calc(run_in_both):
            # ir_measures appends a 0 for every judged query the run lacks; trec_eval only does so for -c.
            if metric.query_id in run_in_both:
                values[by_ir[metric.measure].name][metric.query_id] = float(metric.value)
    if complete:
        # trec_eval -c scores a missing query on a one-document bogus run: 0 for every measure offered here.
        for per_q in values.values():
            for q in missing:
                per_q[q] = 0.0

    aggregate: dict[str, float] = {}
    for name, per_q in values.items():
        if set(per_q) != set(queries):  # pragma: no cover - would mean ir_measures changed behaviour
            raise RuntimeError(f"pytrec_eval returned {name} for {len(per_q)} of {len(queries)} queries")
        # Summed one by one in trec_eval's query order, so the mean rounds exactly as trec_eval's does.
        total = 0.0
        for q in queries:
            total += per_q[q]
        aggregate[name] = total / len(queries)
    per_query = {q: {name: values[name][q] for name in values} for q in sorted(queries, key=_natural)}
    return RetrievalEvaluation(
        measures=tuple(m.name for m in wanted),
        per_query=per_query,
        aggregate=aggregate,
        relevance_level=relevance_level,
        complete=complete,
        unjudged_queries=tuple(sorted((q for q in run if q not in judged), key=_natural)),
        missing_queries=tuple(sorted(missing, key=_natural)),
    )


def _checked_qrels(qrels: Mapping[str, Mapping[str, int]]) -> Qrels:
    # A query with an empty judgment set is dropped: trec_eval cannot have one, and pytrec_eval
    # misreports the queries after it (cvangysel/pytrec_eval#49).
    out: Qrels = {}
    for qid, docs in qrels.items():
        if not docs:
            continue
        checked: dict[str, int] = {}
        for doc_id, rel in docs.items():
            if isinstance(rel, bool) or not isinstance(rel, int):
                raise InvalidInputError(
                    f"qrels grade for query {qid!r}, doc {doc_id!r} must be an integer, not {rel!r}",
                    hint="grades are whole numbers: 0 not relevant, 1 relevant, higher more relevant",
                )
            checked[str(doc_id)] = rel
        out[str(qid)] = checked
    return out


def _checked_run(ranking: Mapping[str, Mapping[str, float]]) -> Ranking:
    out: Ranking = {}
    for qid, docs in ranking.items():
        if not docs:
            continue  # a query that retrieved nothing is absent from a TREC run file too
        checked: dict[str, float] = {}
        for doc_id, score in docs.items():
            if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
                raise InvalidInputError(
                    f"run score for query {qid!r}, doc {doc_id!r} must be a number, not {score!r}",
                    hint="a run maps query id -> doc id -> score (higher first); see rank_lists_to_ranking",
                )
            checked[str(doc_id)] = float(score)
        out[str(qid)] = checked
    return out


def _natural(qid: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order ("2" before "10"), then the rest alphabetically."""
    return (0, int(qid), qid) if qid.isdigit() else (1, 0, qid)


def rank_lists_to_ranking(lists: Mapping[str, Sequence[str]]) -> Ranking:
    """A run from ranked doc id lists (best first): descending scores n, n-1, ..., 1, so no ties."""
    out: Ranking = {}
    for qid, doc_ids in lists.items():
        if isinstance(doc_ids, str):
            raise InvalidInputError(f"the ranking of query {qid!r} must be a list of doc ids, not a string")
        if len(set(doc_ids)) != len(doc_ids):
            dup = next(d for i, d in enumerate(doc_ids) if d in doc_ids[:i])
            raise InvalidInputError(
                f"doc {dup!r} is ranked twice for query {qid!r}", hint="each doc may appear once per query"
            )
        n = len(doc_ids)
        out[qid] = {doc_id: float(n - i) for i, doc_id in enumerate(doc_ids)}
    return out


# --- TREC files -------------------------------------------------------------------------------------------

_QRELS_HINT = "qrels lines are `query_id iteration doc_id relevance`, e.g. `301 0 FR940202-2-00150 1`"
_RUN_HINT = "run lines are `query_id Q0 doc_id rank score tag`, e.g. `301 Q0 FR940202-2-00150 1 12.5 bm25`"


def _content_lines(path: Path, hint: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, fields) of each line that is not blank or a comment (`#` first, as trec_eval)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file", hint="check the path") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: not UTF-8 text ({exc.reason})", hint=hint) from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read ({exc.strerror})", hint="check the path") from None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            yield number, fields


def read_qrels(path: str | Path) -> Qrels:
    """Read a TREC qrels file (`qid iter docid rel`). Blank lines and lines starting with `#` are skipped;
    anything else malformed raises `InvalidInputError` naming FILE:LINE."""
    path = Path(path)
    qrels: Qrels = {}
    for number, fields in _content_lines(path, _QRELS_HINT):
        where = f"{path}:{number}"
        if len(fields) != 4:
            raise InvalidInputError(f"{where}: expected 4 fields, got {len(fields)}", hint=_QRELS_HINT)
        qid, _iteration, doc_id, rel = fields
        if not re.fullmatch(r"[+-]?\d+", rel):
            raise InvalidInputError(f"{where}: relevance {rel!r} is not an integer", hint=_QRELS_HINT)
        _add_once(qrels, where, qid, doc_id, int(rel), "judged", "keep one judgment per query and doc")
    return qrels


def read_run(path: str | Path) -> Ranking:
    """Read a TREC run (`qid Q0 docid rank score tag`). As trec_eval: the rank column is not used (order
    comes from the score), fields after the tag are ignored, blank and `#` lines are skipped."""
    path = Path(path)
    run: Ranking = {}
    for number, fields in _content_lines(path, _RUN_HINT):
        where = f"{path}:{number}"
        if len(fields) < 6:
            raise InvalidInputError(f"{where}: expected 6 fields, got {len(fields)}", hint=_RUN_HINT)
        qid, _q0, doc_id, rank, raw_score = fields[:5]
        if not re.fullmatch(r"[+-]?\d+", rank):
            # trec_eval ignores the rank, but a non-integer there almost always means swapped columns.
            raise InvalidInputError(f"{where}: rank {rank!r} is not an integer", hint=_RUN_HINT)
        try:
            score = float(raw_score)
        except ValueError:
            score = math.nan
        if math.isnan(score):
            raise InvalidInputError(f"{where}: score {raw_score!r} is not a number", hint=_RUN_HINT)
        _add_once(run, where, qid, doc_id, score, "retrieved", "each doc may appear once per query")
    return run


def _add_once(
    table: dict[str, dict[str, V]], where: str, qid: str, doc_id: str, value: V, verb: str, fix: str
) -> None:
    """table[qid][doc_id] = value, where a second line for the same pair is an error (as in trec_eval)."""
    docs = table.setdefault(qid, {})
    if doc_id in docs:
        raise InvalidInputError(
            f"{where}: doc {doc_id!r} is {verb} twice for query {qid!r}",
            hint=f"{fix} (trec_eval rejects duplicates too)",
        )
    docs[doc_id] = value


def write_run(path: str | Path, ranking: Mapping[str, Mapping[str, float]], tag: str) -> None:
    """Write a TREC run file: per query, docs best first with ranks 1, 2, ...; tied scores in trec_eval's
    own order (doc id descending) so the rank column agrees with how trec_eval will rank them. Scores are
    written in full precision, so `read_run` gives back the same floats."""
    if not isinstance(tag, str) or not tag or _has_space(tag):
        raise InvalidInputError(f"run tag {tag!r} must be one word", hint="e.g. bm25 or dense-minilm")
    run = _checked_run(ranking)
    lines: list[str] = []
    for qid in sorted(run, key=_natural):
        if _has_space(qid):
            raise InvalidInputError(
                f"query id {qid!r} contains whitespace", hint="TREC files split on spaces"
            )
        docs = sorted(run[qid].items(), key=lambda item: item[0], reverse=True)
        docs.sort(key=lambda item: -item[1])  # stable: ties keep doc id descending
        for rank, (doc_id, score) in enumerate(docs, 1):
            if _has_space(doc_id):
                raise InvalidInputError(
                    f"doc id {doc_id!r} (query {qid!r}) contains whitespace",
                    hint="TREC files split on spaces",
                )
            lines.append(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n")
    try:
        Path(path).write_text("".join(lines), encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"{path}: cannot write ({exc.strerror})", hint="check that the folder exists"
        ) from None


def _has_space(text: str) -> bool:
    return not text or any(ch.isspace() for ch in text)
