"""Benchmarks (`segel bench ...`) and their load generators; figures are printed, never asserted."""
