"""The CSCV loop of the probability of backtest overfitting (regimes/significance.py `cscv_pbo`) as a
numba kernel: for every split, the in-sample winner and the relative rank of its out-of-sample
Sharpe, in one pass over the trials per split (no (splits x trials) matrices).

Meet in the middle: a split is a 16-bit mask of in-sample blocks; each trial's sums over any subset
of the first and of the last 8 blocks are tabulated once (256 entries each), so the in-sample sum
over a split is two look-ups. Same semantics as the matrix version: a set without a defined Sharpe
(fewer than 2 bars, or no variance: no trade) scores 0; ties in the in-sample Sharpe go to the first
trial; out-of-sample ties are averaged. Trials are compared by sign(SR) * SR^2 (`_sharpe_order`), which
orders them exactly as SR does.
"""

from __future__ import annotations

import numba
import numpy as np

HALF = 8


@numba.njit(cache=True, error_model="numpy")
def _sharpe_order(total: float, total_sq: float, n: float) -> float:
    """sign(SR) * SR^2 of pooled sums (SR = per-bar Sharpe; 0 where undefined): a strictly increasing
    function of SR, so the in-sample winner and the out-of-sample ranks are those of SR itself, without
    a square root per trial and split. Written as a select, so loops over trials vectorise (the
    discarded quotient of an undefined set is never used; no divisor of a kept value is ever 0)."""
    safe_n = max(n, 1.0)
    mean = total / safe_n
    var = (total_sq - total * mean) / max(n - 1.0, 1.0)
    order = mean * abs(mean) / var
    return order if (n >= 2.0) & (var > 1e-12 * total_sq / safe_n) & (var > 0.0) else 0.0


@numba.njit(cache=True, error_model="numpy")
def _orders(r: np.ndarray, q: np.ndarray, c: np.ndarray, tot_r: np.ndarray, tot_q: np.ndarray, tot_n: np.ndarray,
            is_out: np.ndarray, oos_out: np.ndarray) -> None:
    """In-sample and out-of-sample `_sharpe_order` of every trial of one split (a branch-free loop)."""
    for i in range(r.shape[0]):
        is_out[i] = _sharpe_order(r[i], q[i], c[i])
        oos_out[i] = _sharpe_order(tot_r[i] - r[i], tot_q[i] - q[i], tot_n[i] - c[i])


@numba.njit(cache=True)
def _first_max(values: np.ndarray) -> int:
    """Index of the first strictly largest value (ties go to the first trial; NaN never wins)."""
    best = -np.inf
    winner = 0
    for i in range(values.shape[0]):
        if values[i] > best:
            best = values[i]
            winner = i
    return winner


@numba.njit(cache=True)
def _subset_sums(values: np.ndarray, first: int, count: int) -> np.ndarray:
    """(2^count, trials): sums of values[:, first + b] over the blocks b set in each mask (a mask's
    row is contiguous over trials, the order the split loop reads it in)."""
    n_trials = values.shape[0]
    out = np.zeros((1 << count, n_trials))
    for mask in range(1, 1 << count):
        low = mask & (-mask)
        bit = 0
        while (1 << bit) != low:
            bit += 1
        rest = mask ^ low
        for i in range(n_trials):
            out[mask, i] = out[rest, i] + values[i, first + bit]
    return out


@numba.njit(cache=True)
def _logits_direct(
    ret: np.ndarray, sq: np.ndarray, n: np.ndarray, masks: np.ndarray, counts: np.ndarray, total: int
) -> np.ndarray:
    """Few splits: each split's in-sample sums are added block by block over block-major copies of
    the sums (contiguous over trials, so the adds vectorise); no subset tables are built."""
    n_trials, n_blocks = ret.shape
    ret_t = np.ascontiguousarray(ret.T)
    sq_t = np.ascontiguousarray(sq.T)
    n_t = np.ascontiguousarray(n.T)
    tot_r = ret.sum(axis=1)
    tot_q = sq.sum(axis=1)
    tot_n = n.sum(axis=1)
    r_is = np.empty(n_trials)
    q_is = np.empty(n_trials)
    c_is = np.empty(n_trials)
    ins = np.empty(n_trials)
    oos = np.empty(n_trials)
    out = np.empty(masks.shape[0])
    for c in range(masks.shape[0]):
        r_is[:] = 0.0
        q_is[:] = 0.0
        c_is[:] = 0.0
        for b in range(n_blocks):
            if (masks[c] >> b) & 1:
                for i in range(n_trials):
                    r_is[i] += ret_t[b, i]
                    q_is[i] += sq_t[b, i]
                    c_is[i] += n_t[b, i]
        _orders(r_is, q_is, c_is, tot_r, tot_q, tot_n, ins, oos)
        out[c] = _logit_of_rank(oos, _first_max(ins), counts, total)
    return out


@numba.njit(cache=True)
def _logit_of_rank(oos: np.ndarray, winner: int, counts: np.ndarray, total: int) -> float:
    """logit(w), w = the winner's averaged OOS rank / (total + 1), trial i standing for counts[i] identical trials."""
    value = oos[winner]
    less = 0
    equal = 0
    for i in range(oos.shape[0]):
        if oos[i] < value:
            less += counts[i]
        elif oos[i] == value:
            equal += counts[i]
    rank = less + 0.5 * (equal - 1) + 1.0
    w = rank / (total + 1.0)
    return np.log(w / (1.0 - w))


@numba.njit(cache=True)
def cscv_logits(ret: np.ndarray, sq: np.ndarray, n: np.ndarray, masks: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """lambda_c = logit(relative OOS rank of the IS winner) for each split mask (blocks = 16 at most).
    Row i stands for counts[i] trials with exactly its block sums (distinct rows in the order of their
    first trial: the same winner and ranks as every trial listed; all ones for a plain list).
    Fewer splits than table entries: the sums are taken directly instead of from the tables."""
    n_trials, n_blocks = ret.shape
    total = 0
    for i in range(n_trials):
        total += counts[i]
    if masks.shape[0] < 512:
        return _logits_direct(ret, sq, n, masks, counts, total)
    lo_count = min(HALF, n_blocks)
    hi_count = n_blocks - lo_count
    lo_mask = (1 << lo_count) - 1
    tables = []
    for values in (ret, sq, n):
        tables.append(_subset_sums(values, 0, lo_count))
        tables.append(_subset_sums(values, lo_count, hi_count))
    r_lo, r_hi, q_lo, q_hi, n_lo, n_hi = tables[0], tables[1], tables[2], tables[3], tables[4], tables[5]
    tot_r = ret.sum(axis=1)
    tot_q = sq.sum(axis=1)
    tot_n = n.sum(axis=1)
    out = np.empty(masks.shape[0])
    oos = np.empty(n_trials)
    for c in range(masks.shape[0]):
        a = masks[c] & lo_mask
        b = masks[c] >> lo_count
        best = -np.inf
        winner = 0
        ra, rb, qa, qb, na, nb = r_lo[a], r_hi[b], q_lo[a], q_hi[b], n_lo[a], n_hi[b]
        for i in range(n_trials):
            rs = ra[i] + rb[i]
            qs = qa[i] + qb[i]
            ns = na[i] + nb[i]
            s = _sharpe_order(rs, qs, ns)
            if s > best:
                best = s
                winner = i
            oos[i] = _sharpe_order(tot_r[i] - rs, tot_q[i] - qs, tot_n[i] - ns)
        out[c] = _logit_of_rank(oos, winner, counts, total)
    return out


@numba.njit(cache=True)
def distinct_rows(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first row of each distinct row of `bits`, in row order; rows equal to it): rows
    hashed, sorted by hash (stable), and every row checked equal to its group's first row; if two
    different rows ever share a hash, every row is its own group (nothing is merged on a hash alone)."""
    n_rows, width = bits.shape
    keys = np.empty(n_rows, dtype=np.int64)
    for i in range(n_rows):
        h = np.int64(1469598103934665603)
        for j in range(width):
            h = (h ^ bits[i, j]) * np.int64(1099511628211)
        keys[i] = h
    order = np.argsort(keys, kind="mergesort")
    group_first = np.empty(n_rows, dtype=np.int64)
    group_count = np.zeros(n_rows, dtype=np.int64)
    groups = 0
    for k in range(n_rows):
        i = order[k]
        if k == 0 or keys[i] != keys[order[k - 1]]:
            group_first[groups] = i
            groups += 1
        first = group_first[groups - 1]
        for j in range(width):
            if bits[i, j] != bits[first, j]:
                return np.arange(n_rows), np.ones(n_rows, dtype=np.int64)
        group_count[groups - 1] += 1
    by_row = np.argsort(group_first[:groups])
    return group_first[:groups][by_row], group_count[:groups][by_row]
