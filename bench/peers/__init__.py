"""Helpers for bench/compare.py: process bookkeeping, the tools compared, timing and tables."""
