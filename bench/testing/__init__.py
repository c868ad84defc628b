"""Helpers the tests (and benchmarks/) share: data with known answers, never used by a run."""
