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
# Whole documents, as the collection is judged; an HNSW search breadth above the 1,400 documents makes
# the dense search exact, so every run (and every `kb search`) finds the same neighbours.
"$HONED" kb show cran > /dev/null 2>&1 || "$HONED" kb create cran --chunking document --ef-search 2000
"$HONED" kb import cran .honed/cranfield-beir --format beir
"$HONED" kb eval methods.yaml --run-dir runs "$@"
