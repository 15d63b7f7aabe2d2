"""Benchmarks for airflow-iterate; each subpackage runs with ``python -m benchmarks.<name>``."""
