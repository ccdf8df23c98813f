"""Benchmarks: `make bench` runs bench/bench.py."""
