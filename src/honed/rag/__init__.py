"""Retrieval-augmented generation, by stage:

- `ingest/`: loading files (`loaders`, confined to the folders named: `paths`), chunking, importing test
  collections into a knowledge base;
- `index/`: the knowledge base (`kb`) and its indexes: embedders, vector stores, BM25 (`lexical`),
  metadata filters;
- `retrieve/`: ranking (`rank`, the one function behind search, prompts and evaluation), fusion,
  reranking, routing, and augmentation of prompts (`augment`);
- `sql/`: a database as a source (read-only SQL, checked and limited);
- `evaluate/`: IR metrics equal to trec_eval's, test-collection formats (BEIR, TREC, SMART), and which
  stage failed a case (`attribution`). The retrieval experiment (`honed kb eval`) is an experiment:
  `honed.experiments.retrieval`.
"""
