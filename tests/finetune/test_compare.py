"""`compare_finetune` and `honed finetune compare` on the real SQLite store.

The scripted provider plays both models where the local model cannot be made to differ on cue: the
"fine-tuned" candidate answers right more often, with a short prompt, and reports exact token counts so
the per-call figures and costs can be checked to the cent. One slow test runs the real local model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from honed.api import Honed
from honed.cli.finetune_compare import fmt_cost_per_1k
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.errors import InvalidInputError, NotFoundError
from honed.finetune.compare import compare_finetune, job_models, parse_evaluator, parse_price
from honed.models.types import ChatRequest, ProviderResult, Usage
from honed.prompts import Prompt, push
from honed.store.schema import finetune_jobs
from honed.testing import scripted
from tests.support.cli import assert_one_line_error, honed

N_TEST = 30
LONG = "You are a geography assistant. Answer with the capital city only, no punctuation. " * 8


def setup(workspace: Path) -> Honed:
    # A second scripted endpoint whose calls take a little while: latency must tell the sides apart.
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        f.write('\n[endpoints.slow]\nprovider = "scripted"\ndelay_s = 0.03\n')
    h = Honed(load_settings(start=workspace))
    for name, system in [("long", LONG), ("short", "Capital.")]:
        prompt = Prompt.model_validate(
            {
                "name": name,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": "{{ country }}"},
                ],
            }
        )
        push(h.store, [prompt], note=name)
    cases = [
        Case(id=f"c{i:02d}", inputs={"country": f"country{i}"}, reference=f"capital{i}", split="test")
        for i in range(N_TEST)
    ] + [
        Case(id=f"t{i}", inputs={"country": f"train{i}"}, reference=f"capital{i}", split="train")
        for i in range(5)
    ]
    record_cases(h.store, "caps", cases)
    return h


def number(req: ChatRequest) -> int:
    return int(req.messages[-1]["content"].removeprefix("country"))


def base_model(req: ChatRequest) -> ProviderResult:
    """Right on every third case, with the long prompt's 200 input tokens."""
    i = number(req)
    return ProviderResult(f"capital{i}" if i % 3 == 0 else "Paris", Usage(200, 5))


def tuned_model(req: ChatRequest) -> ProviderResult:
    """Right on 9 cases of 10, with the short prompt's 20 input tokens."""
    i = number(req)
    return ProviderResult(f"capital{i}" if i % 10 else "Paris", Usage(20, 4))


def test_the_tuned_model_is_better_cheaper_and_on_the_test_split_only(workspace: Path) -> None:
    with scripted("base", base_model) as base, scripted("ft", tuned_model):
        h = setup(workspace)
        result = compare_finetune(
            h,
            dataset="caps",
            candidate_model="slow/ft",
            baseline_model=base,
            baseline_prompt="long@v1",
            candidate_prompt="short@v1",
            evaluators=[{"type": "exact"}],
            prices={"scripted/base": (1.0, 2.0), "slow/ft": (0.5, 1.0)},
            n_boot=2000,
        )
    q = result.quality["exact"]
    assert result.n_cases == N_TEST and result.dataset == "caps@v1" and result.split == "test"
    assert q["baseline"]["mean"] == pytest.approx(10 / 30)
    assert q["candidate"]["mean"] == pytest.approx(27 / 30)
    assert q["diff"] == pytest.approx(17 / 30)
    low, high = q["diff_ci"]
    assert 0 < low < 17 / 30 < high <= 1
    assert q["p_value"] < 0.01 and q["verdict"] == "better" and q["cases"] == N_TEST
    for side in ("baseline", "candidate"):
        s_low, s_high = q[side]["ci"]
        assert s_low <= q[side]["mean"] <= s_high

    b, c = result.baseline, result.candidate
    assert (b.model, b.prompt, c.model, c.prompt) == (base, "long@v1", "slow/ft", "short@v1")
    assert (b.calls, c.calls, b.errors, c.errors) == (N_TEST, N_TEST, 0, 0)
    assert (b.mean_input_tokens, b.mean_output_tokens) == (200, 5)
    assert (c.mean_input_tokens, c.mean_output_tokens) == (20, 4)
    # 1,000 calls: (200 x $1 + 5 x $2) / 1M x 1000 and (20 x $0.5 + 4 x $1) / 1M x 1000.
    assert b.cost_per_1k_usd == pytest.approx(0.21) and c.cost_per_1k_usd == pytest.approx(0.014)
    assert b.price_source == c.price_source == "override"
    assert c.latency_p50_s is not None and b.latency_p50_s is not None
    assert c.latency_p50_s >= 0.03 > b.latency_p50_s
    assert c.latency_p95_s is not None and c.latency_p95_s >= c.latency_p50_s

    # It is an ordinary run: two variants, the baseline first, one sample per case.
    run = h.store.runs.get(result.run_id)
    assert [v["id"] for v in run.spec["variants"]] == ["baseline", "candidate"]
    assert run.spec["dataset"]["ref"] == "caps@v1" and run.spec["repeats"] == 1
    assert {r["case_id"] for r in h.store.runs.results(run.id)} == {f"c{i:02d}" for i in range(N_TEST)}
    h.close()


def test_prices_come_from_the_table_and_free_models_say_so(workspace: Path) -> None:
    with scripted("base", base_model) as base, scripted("ft", tuned_model):
        h = setup(workspace)
        result = compare_finetune(
            h,
            dataset="caps",
            candidate_model="slow/ft",
            baseline_model=base,
            baseline_prompt="long@v1",
            n_boot=200,
        )
        h.close()
    assert result.baseline.price == (0.0, 0.0) and result.baseline.price_source == "free"
    assert fmt_cost_per_1k(result.baseline) == "$0.00 (free)"
    assert result.candidate.price is None and result.candidate.cost_per_1k_usd is None
    assert fmt_cost_per_1k(result.candidate) == "unknown (give --price MODEL=IN,OUT)"


def test_a_notional_price_in_honed_toml_prices_a_free_model_and_says_so(workspace: Path) -> None:
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        f.write('\n[prices."scripted/base"]\ninput = 1.0\noutput = 2.0\nnotional = true\n')
    with scripted("base", base_model) as base, scripted("ft", tuned_model):
        h = setup(workspace)
        result = compare_finetune(
            h,
            dataset="caps",
            candidate_model="slow/ft",
            baseline_model=base,
            baseline_prompt="long@v1",
            latency_calls=0,
            n_boot=200,
        )
        spent = sum(r["cost_usd"] or 0 for r in h.store.runs.results(result.run_id))
        h.close()
    b = result.baseline
    assert b.price == (1.0, 2.0) and b.price_source == "notional"
    assert b.cost_per_1k_usd == pytest.approx(0.21)
    assert fmt_cost_per_1k(b) == "$0.2100 (notional price)"
    assert spent == 0  # notional: shown in the comparison, never charged to the calls


def test_job_models_reads_a_finished_job(workspace: Path) -> None:
    h = Honed(load_settings(start=workspace))
    now = datetime.now(UTC)
    row = {
        "backend": "openai",
        "spec": {"base_model": "openai/gpt-4o-mini-2024-07-18", "backend": "openai", "training": "x"},
        "pid": None,
        "cancel_requested": False,
        "created_at": now,
        "updated_at": now,
    }
    with h.store.write() as conn:
        conn.execute(
            finetune_jobs.insert(),
            [
                {
                    **row,
                    "id": "done1",
                    "status": "succeeded",
                    "model": "openai/ft:gpt-4o-mini-2024-07-18:org::abc",
                },
                {**row, "id": "busy1", "status": "running", "model": None},
            ],
        )
    assert job_models(h, "done1") == (
        "openai/ft:gpt-4o-mini-2024-07-18:org::abc",
        "openai/gpt-4o-mini-2024-07-18",
    )
    with pytest.raises(InvalidInputError, match=r"job busy1 has no model yet \(status running\)"):
        job_models(h, "busy1")
    with pytest.raises(NotFoundError, match="no fine-tuning job 'nope'"):
        job_models(h, "nope")
    h.close()


def test_command_line_arguments_are_checked() -> None:
    assert parse_price("openai/ft:gpt-4o-mini:org::abc=0.3,1.2") == (
        "openai/ft:gpt-4o-mini:org::abc",
        (0.3, 1.2),
    )
    for bad in ("gpt=1", "=1,2", "m=a,b", "m=-1,2"):
        with pytest.raises(InvalidInputError, match="--price"):
            parse_price(bad)
    assert parse_evaluator("contains") == {"type": "contains"}
    assert parse_evaluator('{"type": "json", "name": "valid"}') == {"type": "json", "name": "valid"}
    with pytest.raises(InvalidInputError, match="needs a `type`"):
        parse_evaluator('{"name": "x"}')


def _wired() -> bool:
    from typer.main import get_command

    from honed.cli.main import app

    group = get_command(app)
    # The root group imports a command's module when it is resolved, so ask it rather than `commands`.
    finetune = group.get_command(group.make_context("honed", ["--version"]), "finetune")  # type: ignore[attr-defined]
    return finetune is not None and "compare" in getattr(finetune, "commands", {})


def test_the_command_prints_json_and_the_run_shows_in_experiments(workspace: Path) -> None:
    if not _wired():
        pytest.skip("`honed finetune compare` is not registered on the finetune group yet")
    (workspace / "honed.toml").write_text(
        (workspace / "honed.toml").read_text()
        + '\n[endpoints.base]\nprovider = "scripted"\nreplies = ["capital0"]\n'
        '\n[endpoints.ft]\nprovider = "scripted"\nreplies = ["capital0"]\n',
        encoding="utf-8",
    )
    h = setup(workspace)
    h.close()
    args = ["--dataset", "caps", "--baseline-prompt", "long@v1", "--candidate-prompt", "short@v1"]
    out = honed(
        "finetune", "compare", *args, "--candidate", "ft/m", "--baseline", "base/m",
        "--price", "ft/m=1,1", "--json", cwd=workspace,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quality"]["exact"]["verdict"] == "no detectable difference"
    assert data["candidate"]["price_source"] == "override" and data["baseline"]["price_source"] == "unknown"
    shown = honed("experiments", "show", data["run_id"], "--json", cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["baseline"] == "baseline"
    bad = honed("finetune", "compare", *args, cwd=workspace)
    assert_one_line_error(bad, "--candidate MODEL or --job ID")


@pytest.mark.slow
def test_the_real_local_model_on_six_cases(workspace: Path) -> None:
    h = Honed(load_settings(start=workspace))
    for name, system in [("long", LONG), ("short", "Capital.")]:
        push(
            h.store,
            [
                Prompt.model_validate(
                    {
                        "name": name,
                        "params": {"temperature": 0, "max_tokens": 8},
                        "messages": [
                            {"role": "system", "content": system},
                            {"role": "user", "content": "What is the capital of {{ country }}?"},
                        ],
                    }
                )
            ],
            note=name,
        )
    countries = {"France": "Paris", "Italy": "Rome", "Japan": "Tokyo", "Spain": "Madrid", "Peru": "Lima"}
    cases = [
        Case(id=c, inputs={"country": c}, reference=capital, split="test") for c, capital in countries.items()
    ] + [Case(id="Egypt", inputs={"country": "Egypt"}, reference="Cairo", split="test")]
    record_cases(h.store, "capitals", cases)
    model = "local/smollm2-135m-instruct"
    result = compare_finetune(
        h,
        dataset="capitals",
        candidate_model=model,
        baseline_model=model,
        baseline_prompt="long@v1",
        candidate_prompt="short@v1",
        evaluators=[{"type": "contains"}],
        n_boot=500,
    )
    h.close()
    assert result.n_cases == 6 and result.baseline.calls == result.candidate.calls == 6
    assert fmt_cost_per_1k(result.baseline) == fmt_cost_per_1k(result.candidate) == "$0.00 (local)"
    b_in, c_in = result.baseline.mean_input_tokens, result.candidate.mean_input_tokens
    assert b_in is not None and c_in is not None and b_in > c_in + 100  # the long prompt costs tokens
    assert result.candidate.latency_p50_s is not None and result.candidate.latency_p50_s > 0
    q = result.quality["contains"]
    assert q["cases"] == 6 and q["diff_ci"] is not None and q["p_value"] is not None
