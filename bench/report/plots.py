"""The report's figures: matplotlib (Agg) PNGs, returned as data URIs for a self-contained page."""

from __future__ import annotations

import base64
import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 72


def _data_uri(fig, left: float = 0.18) -> str:
    fig.subplots_adjust(left=left, right=0.96, bottom=0.22, top=0.95, wspace=0.35)
    buffer = io.BytesIO()
    # Fixed margins instead of bbox_inches="tight", which draws every figure twice.
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def metric_bars(board: pd.DataFrame, metric: str) -> str:
    """Test mean per model with its 95% interval, and the selection (CV) score as a ring."""
    ok = board[board.status == "ok"]
    mean = ok[f"test_{metric}"].to_numpy(dtype=float)
    below = np.nan_to_num(mean - ok[f"test_{metric}_low"].to_numpy(dtype=float))
    above = np.nan_to_num(ok[f"test_{metric}_high"].to_numpy(dtype=float) - mean)
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(ok) + 2), 3))
    x = np.arange(len(ok))
    ax.bar(
        x,
        mean,
        yerr=[below, above],
        capsize=4,
        color="#4c72b0",
        label="test mean [95% interval]",
    )
    ax.plot(x, ok[f"cv_{metric}_mean"], "o", mfc="none", color="#dd8452", label="selection (CV)")
    ax.set_xticks(x, ok.model, rotation=30, ha="right")
    ax.set_ylabel(metric)
    ax.legend(loc="lower right", fontsize=8)
    return _data_uri(fig)


def pareto_front(cost: np.ndarray, score: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Which points no other point beats on both axes (cost: lower is better; score: in its
    metric's direction); ties on both are all on the front."""
    signed = score if higher_is_better else -score
    front = np.ones(len(cost), dtype=bool)
    for i in range(len(cost)):
        no_worse = (cost <= cost[i]) & (signed >= signed[i])
        better = (cost < cost[i]) | (signed > signed[i])
        front[i] = not (no_worse & better).any()
    return front


def pareto_plot(board: pd.DataFrame, metric: str, higher_is_better: bool) -> str:
    """Test metric against the kept model's batch-1 latency, one point a model, the Pareto
    front (no model both faster and better) joined by a line."""
    rows = board[board.latency_ms.notna() & board[f"test_{metric}"].notna()]
    cost = rows.latency_ms.to_numpy(dtype=float)
    score = rows[f"test_{metric}"].to_numpy(dtype=float)
    front = pareto_front(cost, score, higher_is_better)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.scatter(cost[~front], score[~front], color="#999999", s=18, label="dominated")
    order = np.argsort(cost[front])
    ax.plot(cost[front][order], score[front][order], "o-", color="#c44e52", label="Pareto front")
    for x, y, name in zip(cost, score, rows.model, strict=True):
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("latency, batch 1 (ms, median)")
    ax.set_ylabel(f"test {metric}")
    ax.legend(fontsize=7)
    return _data_uri(fig)


def compute_curves(progress: pd.DataFrame, budgets: list[float], metric: str) -> str:
    """Best CV score so far against compute spent, one line per model; dashed lines mark
    the equal-compute budgets."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for model, rows in progress.groupby("model", sort=True):
        ax.step(rows.compute, rows.best, where="post", label=model)
    for budget in budgets:
        ax.axvline(budget, linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("compute spent (CPU + GPU seconds)")
    ax.set_ylabel(f"best CV {metric} so far")
    if progress.model.nunique() <= 12:
        ax.legend(fontsize=7)
    return _data_uri(fig)


def confusion_heatmap(confusion_json: str, classes: list[str]) -> str:
    matrix = np.asarray(json.loads(confusion_json), dtype=float)
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    side = max(3, 0.35 * len(classes) + 1.5)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=90, fontsize=7)
    ax.set_yticks(ticks, classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(classes) <= 6:  # numbers in cells stay legible (and cheap to draw) for few classes
        for i, j in np.ndindex(normalized.shape):
            ax.text(
                j,
                i,
                f"{normalized[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if normalized[i, j] > 0.5 else "black",
            )
    return _data_uri(fig)


def per_class_f1(per_class_json: str, classes: list[str]) -> str:
    f1 = json.loads(per_class_json)["f1"]
    fig, ax = plt.subplots(figsize=(max(4, 0.3 * len(classes) + 2), 2.5))
    ax.bar(np.arange(len(f1)), [v if v is not None else np.nan for v in f1], color="#55a868")
    ax.set_xticks(np.arange(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test F1")
    return _data_uri(fig)


def roc_curves(predictions: pd.DataFrame, classes: list[str]) -> str:
    """One-vs-rest ROC curve per class from the stored test probabilities."""
    from sklearn.metrics import auc, roc_curve

    y = predictions.y_true.to_numpy()
    proba = np.stack(predictions.proba.to_numpy())
    fig, ax = plt.subplots(figsize=(4, 4))
    for label, name in enumerate(classes):
        positives = y == label
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, proba[:, label])
        ax.plot(fpr, tpr, linewidth=1, label=f"{name} ({auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    if len(classes) <= 12:
        ax.legend(fontsize=6, loc="lower right")
    return _data_uri(fig)


def reliability_bins(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per ECE bin holding test samples: its left edge, accuracy, mean confidence and share
    of the samples (the ECE is the share-weighted mean |accuracy - confidence|)."""
    from bench.metrics import ECE_BINS, confidence_bins

    proba = np.stack(predictions.proba.to_numpy())
    confidence, bins = confidence_bins(proba)
    correct = (proba.argmax(axis=1) == predictions.y_true.to_numpy()).astype(float)
    counts = np.bincount(bins, minlength=ECE_BINS)
    filled = counts > 0
    return pd.DataFrame(
        {
            "left": np.arange(ECE_BINS)[filled] / ECE_BINS,
            "accuracy": np.bincount(bins, correct, ECE_BINS)[filled] / counts[filled],
            "confidence": np.bincount(bins, confidence, ECE_BINS)[filled] / counts[filled],
            "share": counts[filled] / counts.sum(),
        }
    )


def reliability_diagram(predictions: pd.DataFrame) -> str:
    """Accuracy against mean top-label confidence in each of the ECE bins that hold test
    samples (bar width: the bin; a perfectly calibrated model sits on the diagonal), with
    the share of samples per bin below."""
    from bench.metrics import ECE_BINS

    table = reliability_bins(predictions)
    left, accuracy, mean_confidence = table.left, table.accuracy, table.confidence
    gap = (np.abs(accuracy - mean_confidence) * table.share).sum()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4, 4.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.bar(left, accuracy, width=1 / ECE_BINS, align="edge", edgecolor="white", label="accuracy")
    top.plot(mean_confidence, accuracy, "o", color="#c44e52", markersize=3, label="confidence")
    top.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    top.set_ylabel("accuracy")
    top.set_title(f"ECE {gap:.3f} ({ECE_BINS} bins)", fontsize=8)
    top.legend(fontsize=6, loc="upper left")
    bottom.bar(left, table.share, width=1 / ECE_BINS, align="edge")
    bottom.set_xlabel("top-label confidence")
    bottom.set_ylabel("share")
    bottom.set_xlim(0, 1)
    return _data_uri(fig)


def learning_curves(epochs: pd.DataFrame, metric: str) -> str:
    """Mean over folds of train/validation loss and the validation metric, per epoch."""
    by_epoch = epochs.groupby("epoch")[["train_loss", "val_loss", "val_score"]].mean()
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.6))
    left.plot(by_epoch.index, by_epoch.train_loss, label="train loss")
    left.plot(by_epoch.index, by_epoch.val_loss, label="validation loss")
    left.set_xlabel("epoch")
    left.legend(fontsize=7)
    right.plot(by_epoch.index, by_epoch.val_score, color="#c44e52")
    right.set_xlabel("epoch")
    right.set_ylabel(f"validation {metric}")
    return _data_uri(fig)


def search_history(trials: pd.DataFrame, higher_is_better: bool) -> str:
    """Score of each trial in order, and the best so far."""
    trials = trials.sort_values("trial")
    scores = trials.score.to_numpy(dtype=float)
    ok = (trials.status == "ok").to_numpy()
    best = pd.Series(np.where(ok, scores, np.nan))
    best = best.cummax() if higher_is_better else best.cummin()
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.scatter(trials.trial[ok], scores[ok], s=12, label="trial")
    if (~ok).any():
        ax.scatter(
            trials.trial[~ok], scores[~ok], s=12, marker="x", color="grey", label="pruned / failed"
        )
    ax.step(trials.trial, best, where="post", color="#dd8452", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("CV score")
    ax.legend(fontsize=7)
    return _data_uri(fig)


def importances_chart(importances: dict[str, float]) -> str:
    names = list(importances)
    fig, ax = plt.subplots(figsize=(4, 0.35 * len(names) + 1))
    ax.barh(names, [importances[n] for n in names], color="#8172b3")
    ax.invert_yaxis()
    ax.set_xlabel("importance")
    return _data_uri(fig, left=0.35)


def param_importances(trials: pd.DataFrame) -> dict[str, float]:
    """How much each hyperparameter explains the CV score (random-forest impurity importance,
    as fANOVA-style importances do); empty with fewer than 4 finished trials."""
    from sklearn.ensemble import RandomForestRegressor

    ok = trials[(trials.status == "ok") & trials.score.notna()]
    if len(ok) < 4:
        return {}
    params = pd.DataFrame([json.loads(p) for p in ok.params]).reset_index(drop=True)
    varying = [c for c in params.columns if params[c].astype(str).nunique() > 1]
    if not varying:
        return {}
    features = pd.DataFrame(
        {
            c: params[c]
            if pd.api.types.is_numeric_dtype(params[c])
            else params[c].astype(str).astype("category").cat.codes
            for c in varying
        }
    )
    forest = RandomForestRegressor(n_estimators=32, random_state=0)
    forest.fit(features.to_numpy(dtype=float), ok.score.to_numpy(dtype=float))
    ranked = sorted(zip(varying, forest.feature_importances_, strict=True), key=lambda kv: -kv[1])
    return {name: float(value) for name, value in ranked}


def cd_diagram(models: list[str], average_ranks: list[float], cd: float | None) -> str:
    """Critical-difference diagram: models on the average-rank axis, the CD as a bar."""
    order = np.argsort(average_ranks)
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(models) + 1.2))
    for row, index in enumerate(order):
        ax.plot(average_ranks[index], row, "o", color="#4c72b0")
        ax.text(average_ranks[index] + 0.05, row, models[index], va="center", fontsize=8)
    if cd:
        ax.plot([1, 1 + cd], [-1, -1], color="#c44e52", linewidth=3)
        ax.text(1, -1.6, f"CD = {cd:.2f} (Nemenyi, α = 0.05)", fontsize=7)
    ax.set_xlim(0.8, len(models) + 0.5)
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_xlabel("average rank (1 = best)")
    return _data_uri(fig)
