"""Retrieval-augmented generation: knowledge bases, embedders, vector stores, BM25, hybrid retrieval,
rerankers, and retrieval evaluated on its own."""
