"""Prefect flows: wiring only; every stage is a task around a plain function."""

from stockflow.expected import install as _one_line_expected_errors

# Expected errors (the taxonomy, Prefect's refused parameters) log one line in flow runs, wherever the flows
# run (CLI, served). A served run's process loads its flow FILE by path (flows/monitor.py), which does not
# import this package: every flow module imports it (issue 11: a run created with parameter validation off
# logged Prefect's traceback).
_one_line_expected_errors()
