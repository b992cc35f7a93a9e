"""Benchmark scenarios: each module has DESCRIPTION and run(quick=False) -> list of figures."""
