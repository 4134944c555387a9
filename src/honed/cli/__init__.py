"""The `honed` command line: one module per noun; none of them holds domain logic."""
