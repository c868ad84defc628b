"""Finished runs into experiment trackers (MLflow), from their folders only: no Ray, no torch."""

from bench.export.mlflow import DEFAULT_FOLDER, Exported, export_runs, tracking_uri

__all__ = ["DEFAULT_FOLDER", "Exported", "export_runs", "tracking_uri"]
