"""Likely label errors by confident learning (Northcutt et al., cleanlab's implementation), on
predictions that no model made for an image it trained on: each chosen trial's out-of-fold
probabilities over the CV pool and the kept models' over the test split."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class LabelIssues:
    """Per image of the audited set (arrays indexed like its labels), and which are flagged."""

    flagged: np.ndarray  # image indices, the likeliest error first
    suggested: np.ndarray  # the likeliest other label
    given_probability: np.ndarray  # the models' mean probability of the given label
    suggested_probability: np.ndarray
    models_flagging: np.ndarray  # how many models' own predictions flag the image
    models: int


def find_label_issues(labels: np.ndarray, probas: list[np.ndarray]) -> LabelIssues:
    """Flag the images whose given label the models' mean probabilities contradict (confident
    learning's prune-by-noise-rate), ranked by that label's mean probability, lowest first.
    `probas`: one (images, classes) array per model, each row out-of-sample."""
    labels = np.asarray(labels, dtype=np.int64)
    mean = np.mean(np.stack(probas), axis=0)
    rows = np.arange(len(labels))
    given = mean[rows, labels]
    others = mean.copy()
    others[rows, labels] = -1.0
    suggested = others.argmax(axis=1)
    flagged = np.flatnonzero(_contradicted(labels, mean))
    return LabelIssues(
        flagged=flagged[np.argsort(given[flagged], kind="stable")],
        suggested=suggested,
        given_probability=given,
        suggested_probability=mean[rows, suggested],
        models_flagging=np.sum([_contradicted(labels, p) for p in probas], axis=0),
        models=len(probas),
    )


def _contradicted(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """cleanlab's boolean mask of label issues. Probabilities are floored and renormalised
    (float32 rows from Parquet need not sum to 1 exactly); a class no image is labelled with
    cannot have a per-class threshold, so images predicted into it are left to the others."""
    from cleanlab.filter import find_label_issues as confident_learning

    proba = np.clip(proba.astype(np.float64), 1e-9, None)
    proba /= proba.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about tiny classes; the table says it
        mask = confident_learning(labels, proba, filter_by="prune_by_noise_rate", n_jobs=1)
    return np.asarray(mask, dtype=bool)
