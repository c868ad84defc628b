"""Leaderboards and reports rebuilt from the Parquet files alone (no Ray, no torch)."""
