"""From a query to context: ranking, fusion, reranking, routing, and augmenting prompts with what was
found."""
