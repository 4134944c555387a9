"""`honed kb eval` and `honed kb results`: running a retrieval evaluation and reading stored ones back;
formatting only, the work is in `honed.experiments.retrieval`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from honed.cli.common import JsonOption, err_console, open_honed, print_json, print_table, progress_bars
from honed.hashing import short

if TYPE_CHECKING:
    from honed.experiments.retrieval import RetrievalReport


def eval_(
    spec: Path = typer.Argument(..., help="A retrieval evaluation spec (YAML); see the example above."),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Also write each variant's rankings as a TREC run file DIR/VARIANT.run."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Evaluate retrieval: per variant, trec_eval's measures over the judged queries, latency per query,
    and paired comparisons with the baseline. The rankings scored are what `kb search` serves with the
    same settings (`candidates`: each retriever's pool, default 100). Stored; `honed kb results NAME`
    shows it again. A spec (examples/retrieval/methods.yaml):

    \b
      name: cran-methods
      kb: cran                # honed kb import cran DIR --format beir
      dataset: cran-queries   # inputs.query; metadata.qrels {doc: grade} or context_ids
      k: 100                  # ranking depth scored
      measures: [MAP, nDCG@10, R@100]
      variants:
        - {id: bm25, method: bm25}
        - {id: dense, method: dense}
        - {id: hybrid, method: hybrid, alpha: 0.5, candidates: 100}
    """
    from honed.experiments.retrieval import load_retrieval_spec, run_retrieval_experiment

    h = open_honed(require_workspace=True)
    parsed = load_retrieval_spec(spec)
    with progress_bars(disable=json_out) as progress:
        report = run_retrieval_experiment(h, parsed, progress=progress)
    h.close()
    written = report.write_runs(run_dir) if run_dir is not None else []
    if json_out:
        print_json({**report.to_dict(), "run_files": [str(p) for p in written]})
        return
    print_report(report)
    for path in written:
        err_console.print(f"run file written: {path}", markup=False, highlight=False)


def results(
    name: str | None = typer.Argument(None, help="A stored evaluation's name (NAME or NAME@VERSION)."),
    per_query: bool = typer.Option(False, "--per-query", help="Also list each query's measures."),
    json_out: bool = JsonOption,
) -> None:
    """List stored retrieval evaluations, or show one (with --json: every query's measures).

    honed kb results
    honed kb results cran-methods --per-query
    """
    from honed.experiments.retrieval import stored_report, stored_reports

    h = open_honed(require_workspace=True)
    try:
        if name is None:
            found = stored_reports(h)
            if json_out:
                print_json([{"name": n, "versions": c, "last": t.isoformat()} for n, c, t in found])
                return
            rows = [[n, c, t.strftime("%Y-%m-%d %H:%M")] for n, c, t in found]
            print_table("retrieval evaluations", ["name", "versions", "last run"], rows)
            return
        base, _, ref = name.partition("@")
        version, report = stored_report(h, base, ref or None)
    finally:
        h.close()
    if json_out:
        print_json({**report.to_dict(), "version": version.hash})
        return
    print_report(report, per_query=per_query)


def print_report(report: RetrievalReport, *, per_query: bool = False) -> None:
    typer.echo(
        f"{report.name}: knowledge base {report.kb} ({short(report.kb_version)}), {report.queries} queries "
        f"({report.judged} judged) from {report.dataset}"
        + (f" split {report.split}" if report.split else "")
        + f", depth {report.k}, judged by {report.level}"
    )
    cols = ["variant", *report.measures, "pool", "p50 ms", "p99 ms", "warm-up ms"]
    rows = []
    for v in report.variants:
        warmup = v.latency_ms.get("warmup")
        rows.append(
            [
                v.id,
                *(f"{v.aggregate[m]:.4f}" for m in report.measures),
                v.config.get("candidates", ""),
                f"{v.latency_ms['p50']:.1f}",
                f"{v.latency_ms['p99']:.1f}",
                "" if warmup is None else f"{warmup:.0f}",
            ]
        )
    print_table("retrieval (trec_eval's measures; pool: candidates per retriever)", cols, rows)
    comp_rows = []
    for vid, by_measure in report.comparisons.items():
        for m, c in by_measure.items():
            ci = c["ci"]
            p = c["p_value"]
            comp_rows.append(
                [
                    f"{vid} vs {report.baseline}",
                    m,
                    f"{c['diff']:+.4f}" if c["diff"] is not None else "-",
                    f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "-",
                    f"{p:.4g}" if p is not None else "-",
                    c["verdict"],
                ]
            )
    if comp_rows:
        print_table(
            "paired over queries (bootstrap CI, sign-flip permutation p)",
            ["comparison", "measure", "diff", "95% CI", "p", "verdict"],
            comp_rows,
        )
    if per_query:
        queries = sorted({q for v in report.variants for q in v.per_query}, key=_natural)
        measure = report.measures[0]
        rows = [[q, *(_value(v.per_query.get(q, {}).get(measure)) for v in report.variants)] for q in queries]
        print_table(f"{measure} per query", ["query", *(v.id for v in report.variants)], rows)


def _value(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _natural(qid: str) -> tuple[int, int, str]:
    return (0, int(qid), qid) if qid.isdigit() else (1, 0, qid)
