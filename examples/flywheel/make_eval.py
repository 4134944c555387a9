"""Write the frozen eval set (held-out phrasings) as JSONL: python make_eval.py eval.jsonl [N]."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tickets import HELD_OUT, tickets

if __name__ == "__main__":
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    seen: set[str] = set()
    with out.open("w") as f:
        for t in tickets(n, seed=2, templates=HELD_OUT):
            if t["ticket"] in seen:  # an eval set asks each question once
                continue
            seen.add(t["ticket"])
            gold = json.dumps({"queue": t["queue"]})
            f.write(json.dumps({"ticket": t["ticket"], "reference": gold}) + "\n")
