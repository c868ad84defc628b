"""Helpers the tests, benchmarks/ and `bench perf` share, never used by a run: problems with
known answers (classification), rows and run folders in the real schema (rows, synthetic),
and datasets in their published on-disk formats (writers)."""
