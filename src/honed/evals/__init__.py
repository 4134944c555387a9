"""Evals: evaluators (plain callables returning a score, a pass/fail and a reason) and statistics."""
