"""Confident learning on out-of-sample probabilities (bench.audit.labels)."""

import numpy as np

from bench.audit.labels import find_label_issues


def noisy_probabilities(truth, rng, confidence=0.85):
    classes = truth.max() + 1
    proba = rng.dirichlet(np.ones(classes), len(truth)) * (1 - confidence)
    proba[np.arange(len(truth)), truth] += confidence
    return proba


def test_flipped_labels_are_flagged_ranked_and_given_their_true_class():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 100)
    flipped = rng.choice(len(truth), 12, replace=False)
    given = truth.copy()
    given[flipped] = (truth[flipped] + 1 + rng.integers(0, 3, 12)) % 4
    models = [noisy_probabilities(truth, rng) for _ in range(3)]

    found = find_label_issues(given, models)

    assert set(found.flagged.tolist()) == set(flipped.tolist())
    assert (found.suggested[flipped] == truth[flipped]).all()
    assert found.models == 3 and (found.models_flagging[flipped] >= 1).all()
    clean = np.setdiff1d(np.arange(len(truth)), flipped)
    assert found.models_flagging[clean].max() < 2  # no clean label doubted by two models
    ranked = found.given_probability[found.flagged]
    assert (np.diff(ranked) >= 0).all()  # the likeliest error first


def test_a_label_only_one_model_doubts_counts_one_model():
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(3), 60)
    given = truth.copy()
    confident, doubtful = noisy_probabilities(truth, rng), noisy_probabilities(truth, rng)
    doubtful[0] = [0.02, 0.96, 0.02]  # image 0 (labelled 0) looks like a 1 to this model only

    found = find_label_issues(given, [confident, confident.copy(), doubtful])

    assert found.models_flagging[0] == 1
    assert 0 not in found.flagged  # the models' mean still backs its label
