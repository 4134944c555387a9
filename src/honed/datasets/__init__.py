"""Datasets: cases, versions, import/export and splits."""
