"""Prefect flows: wiring only; every stage is a task around a plain function."""

from stockflow.expected import install as _one_line_expected_errors

# Expected errors (the taxonomy) log one line in flow runs, wherever the flows run (CLI, served).
_one_line_expected_errors()
