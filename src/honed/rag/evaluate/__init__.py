"""Retrieval judged on its own: IR metrics equal to trec_eval's, test-collection formats, and failure
attribution."""
