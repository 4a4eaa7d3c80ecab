"""Plain float64 numpy reference implementations of every metric, written from the formulas
(per-class loops, numpy.linalg.pinv), independent of ncprobe's code paths."""

import numpy as np


def class_means(x, y, c):
    return np.stack([x[y == k].mean(0) for k in range(c)])


def nc1(x, y, c, rtol=None):
    x = x.astype(np.float64)
    n, d = x.shape
    means = class_means(x, y, c)
    sw = np.zeros((d, d))
    for k in range(c):
        r = x[y == k] - means[k]
        sw += r.T @ r
    sw /= n
    mt = means - means.mean(0)
    sb = mt.T @ mt / c
    rtol = max(c, d) * np.finfo(np.float64).eps if rtol is None else rtol
    return np.trace(sw @ np.linalg.pinv(sb, rcond=rtol, hermitian=True)) / c


def nc1_quotient(x, y, c):
    x = x.astype(np.float64)
    means = class_means(x, y, c)
    tr_w = sum(((x[y == k] - means[k]) ** 2).sum() for k in range(c)) / len(x)
    mt = means - means.mean(0)
    return tr_w / ((mt ** 2).sum() / c)


def variances(x, y, c):
    x = x.astype(np.float64)
    return np.array([((x[y == k] - x[y == k].mean(0)) ** 2).sum(1).mean() for k in range(c)])


def cdnv(x, y, c):
    means = class_means(x.astype(np.float64), y, c)
    var = variances(x, y, c)
    vals = [(var[a] + var[b]) / (2 * np.sum((means[a] - means[b]) ** 2)) for a in range(c) for b in range(a + 1, c)]
    return float(np.mean(vals))


def centred_means(x, y, c):
    means = class_means(x.astype(np.float64), y, c)
    return means - means.mean(0)


def offdiag_cos(mt):
    u = mt / np.linalg.norm(mt, axis=1, keepdims=True)
    cos = u @ u.T
    return cos[~np.eye(len(mt), dtype=bool)]


def structure_error(p):
    c = p.shape[0]
    ideal = (np.eye(c) - np.ones((c, c)) / c) / np.sqrt(c - 1)
    return np.linalg.norm(p / np.linalg.norm(p) - ideal)


def nc2(x, y, c):
    mt = centred_means(x, y, c)
    norms = np.linalg.norm(mt, axis=1)
    cos = offdiag_cos(mt)
    return {
        "nc2_equinorm": norms.std() / norms.mean(),
        "nc2_equiangularity": cos.std(),
        "nc2_max_angle": np.abs(cos + 1 / (c - 1)).mean(),
        "nc2_max_cosine": cos.max(),
        "nc2_etf_error": structure_error(mt @ mt.T),
    }


def nc3(w, x, y, c):
    mt = centred_means(x, y, c)
    w = np.asarray(w, dtype=np.float64)
    return {
        "nc3_self_duality": np.sum((w / np.linalg.norm(w) - mt / np.linalg.norm(mt)) ** 2),
        "nc3_duality_gram": structure_error(w @ mt.T),
    }


def decisions(w, x, y, c):
    x = x.astype(np.float64)
    means = class_means(x, y, c)
    dist = np.stack([((x - means[k]) ** 2).sum(1) for k in range(c)], 1)
    ncc = dist.argmin(1)
    out = {"ncc_accuracy": np.mean(ncc == y)}
    if w is not None:
        clf = (x @ np.asarray(w, dtype=np.float64).T).argmax(1)
        out["nc4_ncc_agreement"] = np.mean(clf == ncc)
        out["classifier_accuracy"] = np.mean(clf == y)
    return out
