"""Benchmarks: `python -m bench NAME --json`, one JSON object per figure per line."""
