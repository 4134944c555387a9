#!/usr/bin/env bash
# Retrieval measured on a standard collection, offline: Cranfield converted to the BEIR layout, imported
# as a knowledge base plus its judged queries in one command, then BM25 / dense / hybrid evaluated with
# trec_eval's measures, TREC run files written beside. Run from anywhere; the workspace is
# examples/retrieval/ (the collection is read in place from the shared data folder, never copied).
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
PYTHON=${PYTHON:-../../.venv/bin/python}
DATA=${HONED_DATA_DIR:-../../../shared/data}
"$PYTHON" ../../scripts/beir_from_smart.py cranfield .honed/cranfield-beir --data-dir "$DATA"
"$HONED" kb import cran .honed/cranfield-beir --format beir
"$HONED" kb eval methods.yaml --run-dir runs "$@"
