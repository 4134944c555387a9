"""The example application: a support desk that routes tickets with the long prompt, logged by honed.

Every routing call goes through honed, so each generation is logged (prompt version, inputs, messages,
output, tokens, latency). The "agents" then review the routing: a right queue gets a thumbs up (and the
ticket is `accepted`), a wrong one is corrected to the right queue (a `correction`, the output it should
have been, and an implicit `edited` signal). A few customers ask again word for word what the eval set
asks: the leakage check must keep those out of training.

Run inside the example workspace: python app.py [N]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import honed
from honed.prompts.files import load_prompt
from honed.run import PromptRun, run_prompt_many

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tickets import HELD_OUT, tickets  # noqa: E402


def queue_of(text: str) -> str | None:
    try:
        value = json.loads(text.strip().splitlines()[0]) if text.strip() else None
    except json.JSONDecodeError:
        return None
    return value.get("queue") if isinstance(value, dict) else None


def main(n: int) -> None:
    traffic = tickets(n, seed=1)
    traffic += tickets(10, seed=2, templates=HELD_OUT)  # repeats of eval-set tickets (same seed as eval)
    prompt = load_prompt(HERE / "prompts" / "triage-long.yaml")
    with honed.connect() as h:
        results = run_prompt_many(h, prompt, [{"ticket": t["ticket"]} for t in traffic])
        right = 0
        for t, result in zip(traffic, results, strict=True):
            if not isinstance(result, PromptRun) or result.log_id is None:
                print(f"call failed: {result}", file=sys.stderr)
                continue
            gold = json.dumps({"queue": t["queue"]})
            if queue_of(result.text) == t["queue"]:
                right += 1
                h.feedback(result.log_id, "thumbs", value=1, source="agent")
                h.feedback(result.log_id, "accepted", source="agent")
            else:
                h.feedback(result.log_id, "thumbs", value=0, source="agent")
                h.feedback(result.log_id, "correction", text=gold, source="agent")
                h.feedback(result.log_id, "edited", source="agent")
        wrong = len(traffic) - right
        print(f"routed {len(traffic)} tickets with the long prompt: {right} right, {wrong} corrected")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
