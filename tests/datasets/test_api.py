"""`honed.datasets` advertises exactly what it exports."""

from __future__ import annotations

import honed.datasets


def test_all_names_exist_and_nothing_else_is_public() -> None:
    assert len(set(honed.datasets.__all__)) == len(honed.datasets.__all__)
    for name in honed.datasets.__all__:
        assert hasattr(honed.datasets, name), name
    public = {name for name in vars(honed.datasets) if not name.startswith("_")}
    modules = {"case", "columns", "readers", "registry", "splits", "writers"}
    assert public - modules == set(honed.datasets.__all__)
