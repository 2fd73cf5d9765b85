"""Benchmarks: commands that print a table (``python -m benchmarks.NAME``), never tests."""
