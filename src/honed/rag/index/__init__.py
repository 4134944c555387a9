"""The knowledge base and its indexes: embedders, vector stores, BM25, metadata filters."""
