"""Figures that say how good a model's outputs are: each task's metrics, and fidelity to the float model.

Pure NumPy: outputs and labels in, plain numbers out. Importing this module
does not import TensorFlow.
"""

import math

import numpy as np

SNR_CAP_DB = 160.0  # outputs equal at float32 precision (24-bit mantissa, ~144 dB) read as this


def _as_2d(values):
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1)


def classification(scores, labels):
    """Top-1 (and top-5 with more than five classes) of class scores; labels as indices or one-hot."""
    scores = _as_2d(scores)
    labels = np.asarray(labels)
    if labels.ndim > 1:
        labels = np.argmax(labels.reshape(len(labels), -1), axis=1)
    labels = labels.astype(np.int64)
    result = {"top1": float(np.mean(np.argmax(scores, axis=1) == labels))}
    if scores.shape[1] > 5:
        top5 = np.argsort(scores, axis=1)[:, -5:]
        result["top5"] = float(np.mean(np.any(top5 == labels[:, None], axis=1)))
    return result


def auc(scores, labels):
    """Area under the ROC curve of one score per sample against 0/1 labels (None with one class only)."""
    scores, labels = np.asarray(scores, np.float64).ravel(), np.asarray(labels).ravel().astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks for ties (the Mann-Whitney U statistic).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary(scores, labels, threshold=0.5):
    """Accuracy at ``threshold`` and AUC of one score per sample."""
    scores, labels = np.asarray(scores, np.float64).ravel(), np.asarray(labels).ravel()
    return {"accuracy": float(np.mean((scores >= threshold) == (labels >= 0.5))), "auc": auc(scores, labels)}


def regression(predictions, targets):
    """Mean absolute error and root mean squared error."""
    error = _as_2d(predictions) - _as_2d(targets)
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(math.sqrt(np.mean(error ** 2)))}


def score(task, outputs, labels):
    """Return ``(metrics dict, headline value)`` of one output for its task."""
    if task == "classification":
        found = classification(outputs, labels)
        return found, found["top1"]
    if task == "binary":
        found = binary(outputs, labels)
        return found, found["accuracy"]
    found = regression(outputs, labels)
    return found, found["mae"]


def fidelity(task, outputs, reference):
    """How closely outputs follow the float model's on the same inputs.

    Returns:
        dict: ``snr_db`` (signal to noise of the whole output, capped at
        :data:`SNR_CAP_DB` when equal), ``cosine`` (mean cosine similarity per
        sample), ``max_abs_error``, and for classifiers ``top1_agreement``
        (share of samples whose top class is the float model's; for binary
        outputs, the same side of 0.5).
    """
    got, ref = _as_2d(outputs), _as_2d(reference)
    noise, signal = float(np.sum((got - ref) ** 2)), float(np.sum(ref ** 2))
    if noise == 0.0:
        snr = SNR_CAP_DB
    elif signal == 0.0:
        snr = -SNR_CAP_DB
    else:
        snr = min(SNR_CAP_DB, 10.0 * math.log10(signal / noise))
    if got.shape[1] == 1:  # one number per sample: the cosine of the whole column says more than signs
        got, ref = got.T, ref.T
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1)
    same = np.all(got == ref, axis=1)
    cosine = np.where(norms > 0, np.sum(got * ref, axis=1) / np.where(norms > 0, norms, 1.0), same.astype(float))
    result = {"snr_db": round(snr, 3), "cosine": float(np.mean(cosine)),
              "max_abs_error": float(np.max(np.abs(got - ref))) if got.size else 0.0}
    got, ref = _as_2d(outputs), _as_2d(reference)
    if task == "classification":
        result["top1_agreement"] = float(np.mean(np.argmax(got, axis=1) == np.argmax(ref, axis=1)))
    elif task == "binary":
        result["top1_agreement"] = float(np.mean((got[:, 0] >= 0.5) == (ref[:, 0] >= 0.5)))
    return result
