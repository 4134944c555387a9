"""The ladder's HTML page: what it shows, that it escapes and links nothing, and that a browser draws it."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from honed.errors import InvalidInputError
from honed.optimize.charts import BETTER_COLOUR, SERIES_COLOURS
from honed.optimize.report import STEP_FAILURES, render_ladder_html, write_ladder_html
from honed.reports import ACCENT, HIGHLIGHT

CHROMIUM = Path("/usr/bin/chromium")
STEP_IDS = ["baseline", "instructions", "few-shot", "rag", "fine-tuned"]
HOSTILE_NOTE = 'clearer task <script>alert("x")</script> & "quotes"'


def quality(strict: float, correct: float, form: float) -> dict[str, Any]:
    def one(mean: float) -> dict[str, Any]:
        return {
            "mean": mean,
            "ci": [mean - 0.08, min(1.0, mean + 0.08)],
            "pass_rate": mean,
            "scored": 40,
            "errors": 0,
        }

    return {"strict": one(strict), "correct": one(correct), "format": one(form)}


def delta(against: str, diff: float, verdict: str, p: float) -> dict[str, Any]:
    return {
        "against": against,
        "diff": diff,
        "ci": [diff - 0.1, diff + 0.1],
        "p_value": p,
        "cases": 40,
        "verdict": verdict,
    }


def failures(
    ok: int, form: int, retrieval: int, generation: int, other: int, error: int = 0
) -> dict[str, int]:
    n = ok + form + retrieval + generation + other + error
    return {
        "n": n,
        "ok": ok,
        "format": form,
        "retrieval_miss": retrieval,
        "generation_miss": generation,
        "other": other,
        "error": error,
    }


def step(
    i: int, strict: float, correct: float, form: float, verdict: str | None, **extra: Any
) -> dict[str, Any]:
    sid = STEP_IDS[i]
    prev = None if i == 0 else delta(STEP_IDS[i - 1], extra.pop("diff"), verdict or "", extra.pop("p"))
    first = None if i == 0 else delta(STEP_IDS[0], strict - 0.12, "better", 0.001)
    base = {
        "id": sid,
        "prompt": f"qa@v{i + 1}",
        "model": "local/smollm2-135m",
        "params": {"temperature": 0},
        "note": None,
        "calls": 40,
        "errors": 0,
        "cached": 0,
        "quality": quality(strict, correct, form),
        "vs_previous": None if prev is None else {"strict": prev, "correct": prev, "format": prev},
        "vs_first": None if first is None else {"strict": first},
        "mean_input_tokens": 120.0 + 200 * i,
        "mean_output_tokens": 18.5,
        "latency_p50_s": 0.2 + 0.05 * i,
        "cost_usd": 0.004 * (i + 1),
        "cost_per_1k_usd": 0.1 * (i + 1),
        "failures": None,
        "changes": None,
        "finetune": None,
    }
    return base | extra


def make_ledger() -> dict[str, Any]:
    steps = [
        step(0, 0.12, 0.35, 0.30, None, failures=failures(5, 9, 0, 0, 26)),
        step(
            1,
            0.40,
            0.42,
            0.85,
            "better",
            diff=0.28,
            p=0.0004,
            note=HOSTILE_NOTE,
            changes=["instructions: answer in JSON"],
            failures=failures(16, 2, 0, 0, 22),
        ),
        step(
            2,
            0.43,
            0.45,
            0.92,
            "no detectable difference",
            diff=0.03,
            p=0.41,
            failures=failures(17, 1, 0, 0, 22),
        ),
        step(
            3,
            0.71,
            0.74,
            0.93,
            "better",
            diff=0.28,
            p=0.0001,
            changes=["retrieval: top 4 from kb catalogue@v2"],
            failures=failures(28, 1, 4, 6, 0, 1),
        ),
        step(
            4,
            0.74,
            0.75,
            0.99,
            "no detectable difference",
            diff=0.03,
            p=0.3,
            model="ft:smollm2-135m:catalogue",
            cost_usd=None,
            cost_per_1k_usd=None,
            finetune={
                "job": "ftjob-1",
                "model": "ft:smollm2-135m:catalogue",
                "reused": True,
                "train_examples": 120,
            },
            failures=failures(30, 0, 4, 6, 0),
        ),
    ]
    return {
        "name": "catalogue-qa",
        "run_id": "run-7f3a",
        "run_status": "completed",
        "dataset": "catalogue@v1",
        "dataset_hash": "sha256:" + "ab" * 32,
        "split": "test",
        "n_cases": 40,
        "primary": "strict",
        "evaluators": ["correct", "format", "strict"],
        "correct": "correct",
        "format": "format",
        "steps": steps,
        "diagnosis": None,
    }


def make_diagnosis() -> dict[str, Any]:
    def q(mean: float) -> dict[str, Any]:
        return {"mean": mean, "ci": [mean - 0.1, mean + 0.1], "pass_rate": mean, "scored": 40, "errors": 0}

    ablations = [
        ("as-is", "the prompt as it is", 0.12, 0.35),
        ("oracle-context", "with the gold documents in the prompt", 0.55, 0.80),
        ("few-shot", "with 3 demonstrations", 0.30, 0.40),
        ("oracle+few-shot", "both", 0.72, 0.82),
    ]
    return {
        "name": "catalogue-qa",
        "run_id": "run-diag-1",
        "run_status": "completed",
        "dataset": "catalogue@v1",
        "split": "test",
        "n_cases": 40,
        "prompt": "instructions@v1",
        "model": "local/smollm2-135m",
        "correct": "correct",
        "format": "format",
        "primary": "strict",
        "ablations": [
            {"id": a, "description": d, "quality": {"strict": q(s), "correct": q(c)}}
            for a, d, s, c in ablations
        ],
        "effects": [
            {
                "name": "context",
                "evaluator": "correct",
                "variant": "oracle-context",
                "against": "as-is",
                "diff": 0.45,
                "ci": [0.3, 0.6],
                "p_value": 0.0001,
                "cases": 40,
                "verdict": "better",
                "meaning": "gold context",
            },
            {
                "name": "few-shot",
                "evaluator": "strict",
                "variant": "few-shot",
                "against": "as-is",
                "diff": 0.18,
                "ci": [0.05, 0.3],
                "p_value": 0.01,
                "cases": 40,
                "verdict": "better",
                "meaning": "demonstrations",
            },
        ],
        "failures": {"n": 40, "failed": 35, "ok": 5, "format": 9, "context": 18, "persistent": 8, "error": 0},
        "axis": "both",
        "recommendation": [
            {
                "technique": "retrieval (RAG) or prompt stuffing",
                "why": "gold context changes correct by +0.45",
            },
            {
                "technique": "few-shot demonstrations and output constraints",
                "why": "9 of 40 in the wrong form",
            },
        ],
        "summary": "The gap is both context and behaviour <b>really</b>.",
    }


def positions(page: str, needles: list[str]) -> list[int]:
    found = [page.find(n) for n in needles]
    assert all(i >= 0 for i in found), dict(zip(needles, found, strict=True))
    return found


def section(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end)]


def test_page_shows_the_steps_in_order_and_marks_only_significant_ones() -> None:
    page = render_ladder_html(make_ledger(), make_diagnosis())
    chart = section(page, "<h2>The ladder</h2>", "<h2>The ledger</h2>")
    table = section(page, "<h2>The ledger</h2>", "<h2>Quality vs cost")
    for part in (chart, table):
        got = positions(part, [f">{i + 1}. {s}<" for i, s in enumerate(STEP_IDS)])
        assert got == sorted(got)
    # Two "better" steps, each a green dot with its gain; the two others hollow grey, without a label.
    assert chart.count('class="better"') == 2 and chart.count('class="same"') == 2
    assert chart.count('class="delta"') == 2 and "▲ +0.28" in chart and "+0.03" not in chart
    assert 'class="worse"' not in chart
    for series in ("strict (primary)", "correct (content)", "format (form)"):
        assert series in chart
    # One column per step: the verdicts line up under steps 2..5.
    assert re.findall(r"v-(better|worse|none)", table) == ["better", "none", "better", "none"]
    assert ">first step<" in table
    assert "unknown" in table  # the fine-tuned step's cost
    # The header says what was run on what.
    head = section(page, "<header>", "</header>")
    for fact in ("catalogue-qa", "catalogue@v1", "test", "40", "run-7f3a", "completed", "strict"):
        assert fact in head
    assert "sha256:" + "ab" * 32 not in head.replace('title="sha256:' + "ab" * 32, "")  # shown short
    # The cost scatter says the fine-tuned step is missing; every step has a latency.
    trade = section(page, "<h2>Quality vs cost", "<h2>Failure categories")
    assert "Not plotted (cost unknown, or no score): fine-tuned." in trade
    assert trade.count("<svg") == 2
    footer = page[page.index("<footer") :]
    assert "Generated by honed" in footer and "run-7f3a" in footer


def test_failures_and_diagnosis_are_shown() -> None:
    page = render_ladder_html(make_ledger(), make_diagnosis())
    fails = section(page, "<h2>Failure categories", "<h2>Diagnosis")
    for _, name, colour in STEP_FAILURES:
        assert name in fails and colour in fails
    assert fails.count('class="bar"') == 5
    diag = page[page.index("<h2>Diagnosis") :]
    assert '<p class="axis axis-both">both</p>' in diag
    for rec in make_diagnosis()["recommendation"]:
        assert rec["technique"] in diag and rec["why"] in diag
    for ablation in ("as-is", "oracle-context", "few-shot", "oracle+few-shot"):
        assert f"<b>{ablation}</b>" in diag
    assert "oracle-context vs as-is" in diag and "+0.450" in diag and "[+0.300, +0.600]" in diag
    assert "fixed by gold context" in diag and ">18<" in diag
    assert "&lt;b&gt;really&lt;/b&gt;" in diag  # the summary is text, not markup


def test_the_diagnosis_comes_from_the_ledger_or_is_said_to_be_missing() -> None:
    ledger = make_ledger()
    assert "No diagnosis was run." in render_ladder_html(ledger)
    ledger["diagnosis"] = make_diagnosis()
    assert 'class="axis axis-both"' in render_ladder_html(ledger)


def test_user_strings_are_escaped_and_nothing_is_linked() -> None:
    ledger = make_ledger()
    ledger["steps"][2]["id"] = 'few<shot>"&'
    ledger["name"] = "<img src=x onerror=alert(1)>"
    diagnosis = make_diagnosis()
    diagnosis["recommendation"].append({"technique": "<script>x()</script>", "why": "<iframe>"})
    page = render_ladder_html(ledger, diagnosis)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert not re.search(r"<script|<iframe|<img", page, re.IGNORECASE)
    assert "few&lt;shot&gt;&quot;&amp;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page


def test_old_ledgers_without_the_new_fields_render() -> None:
    ledger = make_ledger()
    for key in ("correct", "format", "diagnosis"):
        del ledger[key]
    for s in ledger["steps"]:
        for key in ("failures", "changes", "finetune"):
            del s[key]
    ledger["steps"][1]["quality"]["strict"] = {"mean": None, "ci": None, "scored": 0, "errors": 40}
    ledger["steps"][1]["errors"] = 40
    page = render_ladder_html(ledger)
    assert "This ledger has no failure categories." in page and "No diagnosis was run." in page
    assert '40 <span class="warn">(40 failed)</span>' in page


def test_latency_says_it_is_the_time_in_the_model_of_calls_made_one_at_a_time() -> None:
    ledger = make_ledger()
    for s in ledger["steps"]:
        s |= {"latency_p95_s": 1.25, "latency_calls": 5, "latency_mode": "one at a time", "queue_p50_s": 4.0}
    table = section(render_ladder_html(ledger), "<h2>The ledger</h2>", "<h2>Quality vs cost")
    assert "latency p50 / p95" in table and "Latency is the time in the model per call" in table
    assert "200 ms / 1.25 s" in table and "5 calls one at a time" in table
    assert "p50/p95 of 5 calls per step made one at a time after the run; queued time apart" in table


def test_a_free_model_is_priced_at_a_notional_price_and_says_so() -> None:
    ledger = make_ledger()
    for s in ledger["steps"]:
        s |= {"cost_usd": 0.0, "cost_per_1k_usd": 0.0}
    page = render_ladder_html(ledger)
    trade = section(page, "<h2>Quality vs cost", "<h2>Failure categories")
    # All $0: no flat chart, but a note saying how to compare costs.
    assert trade.count("<svg") == 1 and "Every step costs $0" in trade and "notional_prices:" in trade

    for i, s in enumerate(ledger["steps"]):
        s |= {
            "notional_price": {"input": 0.15, "output": 0.6, "source": "honed.toml"},
            "notional_cost_per_1k_usd": 0.02 * (i + 1),
        }
    page = render_ladder_html(ledger)
    trade = section(page, "<h2>Quality vs cost", "<h2>Failure categories")
    assert trade.count("<svg") == 2 and "cost per 1,000 calls (USD, notional price)" in trade
    table = section(page, "<h2>The ledger</h2>", "<h2>Quality vs cost")
    assert "$0.02" in table and "notional price" in table
    assert "local/smollm2-135m at $0.15 in / $0.6 out per million tokens (honed.toml)" in table


def test_write_is_atomic_and_refuses_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "ladder.html"
    target.write_text("old")
    assert write_ladder_html(make_ledger(), target, make_diagnosis()) == target
    assert target.read_text(encoding="utf-8") == render_ladder_html(make_ledger(), make_diagnosis())
    assert [p.name for p in tmp_path.iterdir()] == ["ladder.html"]  # no temporary file left behind
    with pytest.raises(InvalidInputError) as err:
        write_ladder_html(make_ledger(), tmp_path / "nope" / "ladder.html")
    message = err.value.one_line()
    assert "nope" in message and "does not exist" in message and "\n" not in str(err.value)
    assert not (tmp_path / "nope").exists()


def read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB(A) non-interlaced PNG (what chromium writes) into an (h, w, channels) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, width * bpp + 1)
    out = np.zeros((height, width * bpp), np.uint8)
    prev = np.zeros(width * bpp, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 1:  # sub: a running sum per channel
            line = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # up
            line = (line + prev) % 256
        elif kind in (3, 4):  # average, paeth: each byte depends on the one decoded to its left
            row, up = line.tolist(), prev.tolist()
            for i in range(len(row)):
                a = row[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    row[i] = (row[i] + (a + b) // 2) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            line = np.array(row, np.int32)
        out[y], prev = line, line
    return out.reshape(height, width, bpp)[:, :, :3]


def pixels_of(image: np.ndarray, colour: str, tolerance: int = 6) -> int:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(np.int32) - rgb).max(axis=2) <= tolerance).sum())


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test.sh installs it (apt-get install chromium)"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_a_browser_draws_the_charts(tmp_path: Path) -> None:
    page = write_ladder_html(make_ledger(), tmp_path / "ladder.html", make_diagnosis())
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 6  # ladder, 2 scatters, step failures, ablations, as-is failures
    assert dom.stdout.count('class="better"') == 2 and dom.stdout.count('class="same"') == 2
    ok_colour = STEP_FAILURES[0][2]
    assert dom.stdout.count(f'fill="{ok_colour}"') == 8  # 2 legends, 5 steps' bars, the as-is bar
    png = tmp_path / "ladder.png"
    shot = chromium(
        "--window-size=1200,2400", f"--screenshot={png}", page.as_uri(), profile=tmp_path / "profile"
    )
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    image = read_png(png.read_bytes())
    assert image.shape[:2] == (2400, 1200)
    # The ladder chart, under the header at the top of the page, is painted: the primary series' line and
    # whiskers, the two other series, and the green dots of the two steps that paid (the table's green
    # badges come further down). The scatter below it paints the first step in orange.
    ladder = image[:900]
    assert pixels_of(ladder, ACCENT) > 1000
    assert pixels_of(ladder, SERIES_COLOURS[0]) > 250 and pixels_of(ladder, SERIES_COLOURS[1]) > 250
    assert pixels_of(ladder, BETTER_COLOUR) > 250
    assert pixels_of(image[900:], HIGHLIGHT) > 50
