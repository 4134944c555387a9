"""Retrieval metrics checked against trec_eval's own test suite (../shared/data/trec_eval_test).

Each out.* file is what the real trec_eval binary printed (quicktest_commands.txt has the command line),
four decimals per value. Every measure honed exposes whose trec_eval name appears in a file is compared,
per query and as the mean, by formatting our value with "%.4f" and comparing the strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from honed.errors import InvalidInputError
from honed.rag.evaluate.metrics import (
    RetrievalEvaluation,
    evaluate,
    parse_measures,
    rank_lists_to_ranking,
    read_qrels,
    read_run,
    write_run,
)
from tests.support.realdata import require

TREC = "trec_eval_test"
# Written from trec_eval's documentation, independently of metrics.py's own table.
FIXED = {"map": "MAP", "recip_rank": "MRR", "Rprec": "R-prec", "ndcg": "nDCG"}
CUT = {"P": "P", "recall": "R", "ndcg_cut": "nDCG", "success": "hit_rate"}
FAMILIES = set(FIXED) | set(CUT)


def _ours(trec_name: str) -> str | None:
    """Our name for a trec_eval measure name, or None when honed does not offer it."""
    if trec_name in FIXED:
        return FIXED[trec_name]
    match = re.fullmatch(r"(P|recall|ndcg_cut|success)_(\d+)", trec_name)
    return f"{CUT[match.group(1)]}@{match.group(2)}" if match else None


def _family(trec_name: str) -> str:
    return trec_name if trec_name in FIXED else trec_name.rsplit("_", 1)[0]


def _expected(name: str) -> dict[str, dict[str, str]]:
    """trec_eval's printout as {measure: {query id or "all": value}} (lines `measure \\t qid \\t value`)."""
    out: dict[str, dict[str, str]] = {}
    for line in require(TREC, name).read_text(encoding="utf-8").splitlines():
        measure, qid, value = (part.strip() for part in line.split("\t"))
        out.setdefault(measure, {})[qid] = value
    return out


def _check(got: RetrievalEvaluation, expected: dict[str, dict[str, str]], *, per_query: bool) -> set[str]:
    """Compare every measure we offer that the file has; returns the trec_eval names compared."""
    compared: set[str] = set()
    mismatches = []
    num_q = int(expected["num_q"]["all"])
    assert got.num_queries == num_q
    for trec_name, values in expected.items():
        ours = _ours(trec_name)
        if ours is None:
            continue
        assert parse_measures(ours)[0].trec_name == trec_name
        compared.add(trec_name)
        queries = [q for q in values if q != "all"] if per_query else []
        assert len(queries) == (num_q if per_query else 0)
        if per_query:
            assert set(got.per_query) == set(queries)
        for qid in queries:
            if f"{got.per_query[qid][ours]:.4f}" != values[qid]:
                mismatches.append((trec_name, qid, got.per_query[qid][ours], values[qid]))
        if f"{got.aggregate[ours]:.4f}" != values["all"]:
            mismatches.append((trec_name, "all", got.aggregate[ours], values["all"]))
    assert mismatches == []
    return compared


def _measures_in(expected: dict[str, dict[str, str]]) -> list[str]:
    return [ours for trec_name in expected if (ours := _ours(trec_name))]


def test_all_trec_per_query_and_means_equal_trec_eval() -> None:
    # trec_eval -m all_trec -q qrels.test results.test
    expected = _expected("out.test.aq")
    qrels = read_qrels(require(TREC, "qrels.test"))
    run = read_run(require(TREC, "results.test"))
    got = evaluate(run, qrels, _measures_in(expected))
    compared = _check(got, expected, per_query=True)
    assert {_family(name) for name in compared} == FAMILIES
    assert (
        len(compared) == 4 + 9 * 3 + 3
    )  # map recip_rank Rprec ndcg; P/recall/ndcg_cut at 9 k; success 1,5,10
    assert got.unjudged_queries == () and got.missing_queries == ()


def test_default_output_from_qrels_with_comment_lines() -> None:
    # trec_eval qrels.test.with-comments results.test: the "official" measures, means only
    expected = _expected("out.test")
    qrels = read_qrels(require(TREC, "qrels.test.with-comments"))
    plain = read_qrels(require(TREC, "qrels.test"))
    # Comment lines are skipped, but a '#' inside a doc id is part of it.
    assert qrels["301"].pop("CR#93E-1860") == plain["301"].pop("CR93E-1860") == 0
    assert qrels == plain
    run = read_run(require(TREC, "results.test"))
    got = evaluate(run, read_qrels(require(TREC, "qrels.test.with-comments")), _measures_in(expected))
    compared = _check(got, expected, per_query=False)
    assert {"map", "Rprec", "recip_rank", "P_5", "P_1000"} <= compared


def test_complete_is_trec_eval_c_and_the_default_averages_over_the_run_queries() -> None:
    # trec_eval -m all_trec -q -c qrels.test results.trunc; results.trunc lacks query 302 and has
    # junk after the tag on some lines, which trec_eval ignores.
    expected = _expected("out.test.aqc")
    qrels = read_qrels(require(TREC, "qrels.test"))
    run = read_run(require(TREC, "results.trunc"))
    assert set(run) == {"301", "303"}
    names = _measures_in(expected)
    got = evaluate(run, qrels, names, complete=True)
    assert {_family(name) for name in _check(got, expected, per_query=True)} == FAMILIES
    assert got.missing_queries == ("302",) and got.per_query["302"] == {name: 0.0 for name in names}

    default = evaluate(run, qrels, names)
    assert default.num_queries == 2 and default.missing_queries == ("302",)
    assert default.per_query == {q: got.per_query[q] for q in ("301", "303")}
    mean = (float(expected["map"]["301"]) + float(expected["map"]["303"])) / 2
    assert default.aggregate["MAP"] == pytest.approx(mean, abs=1e-4)
    assert default.aggregate["MAP"] > got.aggregate["MAP"] + 0.04


def test_relevance_level_is_trec_eval_l_on_graded_qrels() -> None:
    # trec_eval -m all_trec -q -l2 qrels.rel_level results.test (grades -1..4)
    expected = _expected("out.test.aql")
    qrels = read_qrels(require(TREC, "qrels.rel_level"))
    assert {rel for docs in qrels.values() for rel in docs.values()} == {-1, 0, 1, 2, 3, 4}
    run = read_run(require(TREC, "results.test"))
    names = _measures_in(expected)
    got = evaluate(run, qrels, names, relevance_level=2)
    assert {_family(name) for name in _check(got, expected, per_query=True)} == FAMILIES
    # The level reaches the binary measures (query 301 has few grade-2 docs), not nDCG's gains.
    level1 = evaluate(run, qrels, ["MAP", "nDCG"])
    assert f"{level1.per_query['301']['MAP']:.4f}" != expected["map"]["301"]
    assert [v["nDCG"] for v in level1.per_query.values()] == [v["nDCG"] for v in got.per_query.values()]


def test_measure_parameters_equal_trec_eval() -> None:
    # trec_eval -q -m P.5,7,3 -m recall.20,2000 -mndcg_cut.10,20,23.4 -msuccess.2,5,20 ... (and others
    # honed does not offer, such as iprec_at_recall and utility)
    expected = _expected("out.test.meas_params")
    expected["num_q"] = {"all": "3"}  # this printout has no num_q line; three queries, as in the run
    names = _measures_in(expected)
    assert set(names) >= {
        "P@5",
        "P@7",
        "P@3",
        "nDCG@10",
        "nDCG@20",
        "hit_rate@2",
        "hit_rate@5",
        "hit_rate@20",
    }
    assert {"R@20", "R@2000"} <= set(names)
    qrels = read_qrels(require(TREC, "qrels.test"))
    got = evaluate(read_run(require(TREC, "results.test")), qrels, names)
    _check(got, expected, per_query=True)


def test_run_round_trip_keeps_every_score(tmp_path: Path) -> None:
    run = read_run(require(TREC, "results.test"))
    path = tmp_path / "copy.run"
    write_run(path, run, "copy")
    assert read_run(path) == run
    lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    assert {fields[5] for fields in lines} == {"copy"} and len(lines) == 1500
    for qid in run:
        rows = [f for f in lines if f[0] == qid]
        assert [int(f[3]) for f in rows] == list(range(1, len(rows) + 1))
        scores = [float(f[4]) for f in rows]
        assert scores == sorted(scores, reverse=True)
    qrels = read_qrels(require(TREC, "qrels.test"))
    assert evaluate(read_run(path), qrels, "MAP,P@10") == evaluate(run, qrels, "MAP,P@10")


def test_written_ties_are_ranked_as_trec_eval_ranks_them(tmp_path: Path) -> None:
    # trec_eval breaks score ties by doc id, descending; evaluate leaves that to it.
    path = tmp_path / "ties.run"
    write_run(path, {"q": {"a": 1.0, "b": 1.0, "c": 2.0}}, "t")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "q Q0 c 1 2.0 t",
        "q Q0 b 2 1.0 t",
        "q Q0 a 3 1.0 t",
    ]
    assert evaluate({"q": {"a": 1.0, "b": 1.0}}, {"q": {"a": 1}}, ["MRR"]).aggregate["MRR"] == 0.5
    assert evaluate({"q": {"a": 1.0, "b": 1.0}}, {"q": {"b": 1}}, ["MRR"]).aggregate["MRR"] == 1.0


@pytest.mark.parametrize(
    ("reader", "content", "line", "message"),
    [
        (read_qrels, "1 0 d1 1\n1 0 d2\n", 2, "expected 4 fields, got 3"),
        (read_qrels, "1 0 d1 1\n\n1 0 d2 1 extra\n", 3, "expected 4 fields, got 5"),
        (read_qrels, "# judged by hand\n1 0 d1 yes\n", 2, "relevance 'yes' is not an integer"),
        (read_qrels, "1 0 d1 1\n1 0 d1 0\n", 2, "doc 'd1' is judged twice"),
        (read_run, "1 Q0 d1 1 2.5 tag\n1 Q0 d2 2 1.5\n", 2, "expected 6 fields, got 5"),
        (read_run, "1 Q0 d1 1 high tag\n", 1, "score 'high' is not a number"),
        (read_run, "1 Q0 d1 1 nan tag\n", 1, "score 'nan' is not a number"),
        (read_run, "1 Q0 d1 2.5 1 tag\n", 1, "rank '2.5' is not an integer"),
        (read_run, "1 Q0 d1 1 2.5 tag\n1 Q0 d1 2 1.5 tag\n", 2, "doc 'd1' is retrieved twice"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, reader: Callable[[Path], object], content: str, line: int, message: str
) -> None:
    path = tmp_path / "input.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError) as info:
        reader(path)
    assert str(info.value).startswith(f"{path}:{line}: {message}")
    assert info.value.hint


def test_unreadable_files_and_bad_write_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        read_run(tmp_path / "missing.run")
    (tmp_path / "latin1.qrels").write_bytes("1 0 d\xe9 1\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_qrels(tmp_path / "latin1.qrels")
    with pytest.raises(InvalidInputError, match="one word"):
        write_run(tmp_path / "x.run", {"q": {"d": 1.0}}, "two words")
    with pytest.raises(InvalidInputError, match="whitespace"):
        write_run(tmp_path / "x.run", {"q": {"doc 1": 1.0}}, "t")
    with pytest.raises(InvalidInputError, match="cannot write"):
        write_run(tmp_path / "no" / "such" / "x.run", {"q": {"d": 1.0}}, "t")


def test_measure_names_and_aliases() -> None:
    same = [
        ("P@5", "precision@5", "p@5"),
        ("R@10", "recall@10", "Recall @ 10"),
        ("MAP", "AP", "map"),
        ("MRR", "RR", "mrr"),
        ("nDCG@10", "ndcg@10", "NDCG@10"),
        ("nDCG", "ndcg", "nDCG"),
        ("hit_rate@5", "Success@5", "success@5"),
        ("R-prec", "Rprec", "r-prec"),
    ]
    for names in same:
        parsed = parse_measures(list(names))
        assert [m.name for m in parsed] == [names[0]]  # aliases collapse onto one measure
    assert [m.name for m in parse_measures("MAP, P@5,nDCG@10,")] == ["MAP", "P@5", "nDCG@10"]
    assert parse_measures(["nDCG@10"])[0].cutoff == 10 and parse_measures(["nDCG"])[0].cutoff is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bpref", "unknown retrieval measure 'bpref'"),
        ("P", "needs a cutoff"),
        ("MAP@10", "takes no cutoff"),
        ("P@0", "at least 1"),
        ("P@ten", "at least 1"),
        ("", "unknown retrieval measure"),
    ],
)
def test_bad_measure_names_say_what_is_known(name: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)) as info:
        parse_measures([name])
    assert "hit_rate@k (Success@k)" in str(info.value) or "e.g." in (info.value.hint or "")


def test_which_queries_count() -> None:
    qrels = {"q1": {"a": 1, "b": 0}, "q2": {"c": 0}, "q3": {}, "q4": {"d": 1}}
    run = rank_lists_to_ranking({"q1": ["b", "a"], "q2": ["c"], "q3": ["x"], "q5": ["y"]})
    assert run["q1"] == {"b": 2.0, "a": 1.0}
    got = evaluate(run, qrels, ["MAP", "MRR"])
    # q2 is judged with no relevant doc: it counts, as 0, as in trec_eval. q3 has no judgments and q5
    # is not in the qrels: ignored. q4 is not in the run: ignored unless complete.
    assert got.per_query == {"q1": {"MAP": 0.5, "MRR": 0.5}, "q2": {"MAP": 0.0, "MRR": 0.0}}
    assert got.aggregate == {"MAP": 0.25, "MRR": 0.25}
    assert got.unjudged_queries == ("q3", "q5") and got.missing_queries == ("q4",)
    complete = evaluate(run, qrels, ["MAP"], complete=True)
    assert complete.per_query == {"q1": {"MAP": 0.5}, "q2": {"MAP": 0.0}, "q4": {"MAP": 0.0}}
    assert complete.to_dict()["num_queries"] == 3
    # With -c a judged query the run has nothing for scores 0 even when no query overlaps.
    assert (
        evaluate({"q": {"d": 1.0}}, {"q": {"a": 1}, "r": {"b": 1}}, ["MAP"], complete=True).num_queries == 2
    )


def test_per_query_in_natural_order_and_graded_ndcg() -> None:
    qrels = {str(i): {"good": 2, "ok": 1} for i in (1, 2, 10)}
    run = {str(i): {"ok": 2.0, "good": 1.0} for i in (10, 2, 1)}
    got = evaluate(run, qrels, ["nDCG", "P@1"], relevance_level=2)
    assert list(got.per_query) == ["1", "2", "10"]
    assert got.aggregate["P@1"] == 0.0  # "ok" is not relevant at level 2
    assert 0.5 < got.aggregate["nDCG"] < 1.0  # but it still earns gain in nDCG


@pytest.mark.parametrize(
    ("run", "qrels", "kwargs", "message"),
    [
        ({"a": {"d": 1.0}}, {"b": {"d": 1}}, {}, "no query is in both the run and the qrels"),
        ({"a": {"d": 1.0}}, {"a": {}}, {}, "the qrels judge no query"),
        ({"a": {"d": 1.0}}, {"a": {"d": 1.5}}, {}, "must be an integer"),
        ({"a": {"d": "high"}}, {"a": {"d": 1}}, {}, "must be a number"),
        ({"a": {"d": 1.0}}, {"a": {"d": 1}}, {"relevance_level": 0}, "at least 1"),
    ],
)
def test_evaluate_rejects_what_cannot_be_scored(
    run: dict[str, dict[str, object]],
    qrels: dict[str, dict[str, object]],
    kwargs: dict[str, int],
    message: str,
) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        evaluate(run, qrels, ["MAP"], **kwargs)  # type: ignore[arg-type]
    assert info.value.hint


def test_rank_lists_reject_repeated_docs() -> None:
    with pytest.raises(InvalidInputError, match="ranked twice"):
        rank_lists_to_ranking({"q": ["a", "b", "a"]})
