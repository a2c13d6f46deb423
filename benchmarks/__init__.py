"""Benchmarks (SPEC §10): each module prints its figures as JSON; run one with ``python -m benchmarks.NAME``."""
