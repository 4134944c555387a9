"""Logged generations, feedback, online evaluation, and curation of logs into datasets."""
