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
    return tr_w / ((mt**2).sum() / c)


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


# ----------------------------------------------------------------------------------------------
# Every catalog metric, written again from the formulas in plain numpy (loops where they read clearer).
def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def vci(x, y, c, rtol=None):
    x = x.astype(np.float64)
    n, d = x.shape
    counts = np.bincount(y, minlength=c).astype(float)
    means = class_means(x, y, c)
    mu = x.mean(0)
    sb = sum(counts[k] / n * np.outer(means[k] - mu, means[k] - mu) for k in range(c))
    st = np.cov(x.T, bias=True)  # total covariance, ddof 0
    rtol = max(c, d) * np.finfo(np.float64).eps if rtol is None else rtol
    rank = np.linalg.matrix_rank(sb, tol=rtol * np.abs(np.linalg.eigvalsh(sb)).max())
    return 1 - np.trace(np.linalg.pinv(st, rcond=rtol, hermitian=True) @ sb) / rank


def gnc2(x, y, c):
    u = _unit(centred_means(x, y, c))
    d = x.shape[1]
    dist = np.array([np.linalg.norm(u[a] - u[b]) for a in range(c) for b in range(a + 1, c)])
    s = max(d - 2, 1)
    log_inv = np.log(1 / dist)
    return {
        "gnc2_log_energy": log_inv.mean(),
        "gnc2_log_variance": log_inv.var(),
        "gnc2_riesz_energy": np.mean(dist ** (-float(s))) ** (1 / s),
    }


def unc3(w, x, y, c):
    mt = centred_means(x, y, c)
    cos = np.array([_unit(np.asarray(w[k], float)) @ _unit(mt[k]) for k in range(c)])
    return cos.std() / abs(cos.mean())


def nc5(ood, x, y, c, center=True):
    means = class_means(x.astype(np.float64), y, c)
    mu_ood = np.asarray(ood, float).mean(0)
    if center:
        mu_g = means.mean(0)
        means, mu_ood = means - mu_g, mu_ood - mu_g
    return np.mean([abs(_unit(means[k]) @ _unit(mu_ood)) for k in range(c)])


def etf_error_floor(c, d):
    r = min(d, c - 1)
    return np.sqrt(max(0.0, 2 - 2 * np.sqrt(r / (c - 1))))


def text_metrics(text, x, y, c, center=True):
    """The t2i_ metrics with the reference conventions (text rows normalised; both centred when ``center``)."""
    x = x.astype(np.float64)
    t = _unit(np.asarray(text, float))
    means = class_means(x, y, c)
    tc, mc = (t - t.mean(0), means - means.mean(0)) if center else (t, means)
    counts = np.bincount(y, minlength=c)
    xn = _unit(x)
    return {
        "t2i_text_etf_error": structure_error(tc @ tc.T),
        "t2i_self_duality": np.sum((tc / np.linalg.norm(tc) - mc / np.linalg.norm(mc)) ** 2),
        "t2i_cross_etf_error": structure_error(_unit(mc) @ _unit(tc).T),
        "t2i_modality_gap": np.linalg.norm(xn.mean(0) - (counts[:, None] * t).sum(0) / counts.sum()),
        "class_t2i_alignment": np.array([_unit(tc[k]) @ _unit(mc[k]) for k in range(c)]),
        "text_cosines": _unit(tc) @ _unit(tc).T,
        "cross_cosines": _unit(mc) @ _unit(tc).T,
    }


def text_decisions(text, x, y, c):
    x = x.astype(np.float64)
    t = _unit(np.asarray(text, float))
    zs = (x @ t.T).argmax(1)
    ncc = np.stack([((x - m) ** 2).sum(1) for m in class_means(x, y, c)], 1).argmin(1)
    per_class = np.array([np.mean(zs[y == k] == k) for k in range(c)])
    return {
        "t2i_zero_shot_accuracy": np.mean(zs == y),
        "t2i_ncc_agreement": np.mean(zs == ncc),
        "class_t2i_zero_shot_accuracy": per_class,
    }


def per_class_decisions(w, x, y, c):
    x = x.astype(np.float64)
    means = class_means(x, y, c)
    ncc = np.stack([((x - m) ** 2).sum(1) for m in means], 1).argmin(1)
    out = {"class_ncc_accuracy": np.array([np.mean(ncc[y == k] == k) for k in range(c)])}
    if w is not None:
        clf = (x @ np.asarray(w, float).T).argmax(1)
        out["class_nc4_agreement"] = np.array([np.mean(clf[y == k] == ncc[y == k]) for k in range(c)])
        out["class_classifier_accuracy"] = np.array([np.mean(clf[y == k] == k) for k in range(c)])
    return out


def cdnv_pairs(x, y, c):
    means = class_means(x.astype(np.float64), y, c)
    var = variances(x, y, c)
    out = np.full((c, c), np.nan)
    for a in range(c):
        for b in range(c):
            if a != b:
                out[a, b] = (var[a] + var[b]) / (2 * np.sum((means[a] - means[b]) ** 2))
    return out


def group_cosines(groups, names, x, y, c, w=None):
    mt = centred_means(x, y, c)
    out = {"group_mean_cosine": []}
    if w is not None:
        wc = np.asarray(w, float) - np.asarray(w, float).mean(0)
        out["group_classifier_cosine"] = []
    for g in names:
        idx = [k for k in range(c) if groups[k] == g]
        pairs = [(a, b) for i, a in enumerate(idx) for b in idx[i + 1 :]]
        out["group_mean_cosine"].append(np.mean([_unit(mt[a]) @ _unit(mt[b]) for a, b in pairs]) if pairs else np.nan)
        if w is not None:
            out["group_classifier_cosine"].append(
                np.mean([_unit(wc[a]) @ _unit(wc[b]) for a, b in pairs]) if pairs else np.nan
            )
    return out


def all_metrics(x, y, c, *, w=None, text=None, ood=None, groups=None, group_names=None, center=True):
    """Every catalog metric this data allows, by name (scalars, per-class arrays, per-pair matrices, per-group
    lists), from the plain references above."""
    out = {"nc1": nc1(x, y, c), "nc1_quotient": nc1_quotient(x, y, c), "cdnv": cdnv(x, y, c), "vci": vci(x, y, c)}
    out.update(nc2(x, y, c))
    out["nc2_etf_error_floor"] = etf_error_floor(c, x.shape[1])
    out.update(gnc2(x, y, c))
    out.update({k: v for k, v in decisions(w, x, y, c).items()})
    out.update(per_class_decisions(w, x, y, c))
    out["class_count"] = np.bincount(y, minlength=c).astype(float)
    out["class_variance"] = variances(x, y, c)
    out["class_mean_norm"] = np.linalg.norm(centred_means(x, y, c), axis=1)
    out["cdnv_pairs"] = cdnv_pairs(x, y, c)
    u = _unit(centred_means(x, y, c))
    out["mean_cosines"] = u @ u.T
    if w is not None:
        out.update(nc3(w, x, y, c))
        out["unc3_uniform_duality"] = unc3(w, x, y, c)
    if text is not None:
        out.update(text_metrics(text, x, y, c, center=center))
        out.update(text_decisions(text, x, y, c))
    if ood is not None:
        out["nc5_ood_orthogonality"] = nc5(ood, x, y, c)
    if groups is not None:
        out.update(group_cosines(groups, group_names, x, y, c, w=w))
    return out
