"""The two resampling engines, vectorised and shared by every column that is paired on the same cases.

**Bootstrap.** One resample draws n cases with replacement (a multinomial count per case), and every
column's statistic is computed from the same draw, so variants compared on the same cases stay paired and
one draw serves ten variants. The counts of a chunk of resamples form a matrix W (resamples x cases); the
resampled sums of all columns are then one BLAS product W @ X. A column with errored cases divides by the
resampled number of its valid cases (W @ mask): the cases are resampled, and the errored ones among them are
left out, as they were from the estimate itself. Draws are made in chunks of ~1M cells and multiplied in
batches of ~8M (64 MB), so memory stays bounded whatever the size.

**Sign flips.** Under the null hypothesis of a paired test, each case's difference b - a is as likely to
have either sign (the two labels are exchangeable within a case). The two-sided p-value is the share of
sign assignments whose |sum| reaches the observed |sum|. Up to 20 differences every one of the 2^n
assignments is enumerated (exact); beyond that n_perm random ones are drawn and p = (1 + hits) / (1 + n_perm),
which counts the observed assignment and keeps p a valid p-value (never 0).

Every chunk has its own generator, `Generator(PCG64(SeedSequence(seed, spawn_key=(stream, chunk))))`, and
the chunking depends only on the number of cases: the same seed gives the same numbers, whichever function
asked and however many columns rode along.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._matrix import BoolArray, FloatArray

CHUNK_CELLS = 1_000_000
BATCH_CELLS = 8_000_000
EXACT_MAX = 20
_BOOTSTRAP, _SIGN_FLIP = 0, 1


def generator(seed: int, stream: int, chunk: int) -> np.random.Generator:
    """The generator of one chunk of one stream (bootstrap or sign flips) for `seed`."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, chunk))))


def _products(design: FloatArray, n_draws: int, fill: Callable[[int, FloatArray], None]) -> FloatArray:
    """`draws @ design` for n_draws rows of draws over the cases, never holding more than a batch of them.

    `fill(chunk, rows)` writes chunk number `chunk`'s draws into `rows` (chunk, cases). Chunks have
    ~CHUNK_CELLS cells (they fit in cache while drawn), and the products run on batches of whole chunks
    (~BATCH_CELLS cells, 64 MB): a few large BLAS calls instead of many small ones, which matters on a busy
    machine, where every multi-threaded call waits for its slowest thread.
    """
    n = design.shape[0]
    rows = max(1, CHUNK_CELLS // n)
    batch = rows * max(1, BATCH_CELLS // (rows * n))
    out = np.empty((n_draws, design.shape[1]))
    buffer = np.empty((min(batch, n_draws), n))
    chunk = 0
    for start in range(0, n_draws, batch):
        size = min(batch, n_draws - start)
        for offset in range(0, size, rows):
            fill(chunk, buffer[offset : offset + min(rows, size - offset)])
            chunk += 1
        np.matmul(buffer[:size], design, out=out[start : start + size])
    return out


def bootstrap_means(values: FloatArray, valid: BoolArray, *, n_boot: int, seed: int) -> FloatArray:
    """Means of each column over its valid rows in `n_boot` case resamples shared by all columns.

    `values` and `valid` are (cases, columns); returns (n_boot, columns), NaN where a resample drew no
    valid case of that column.
    """
    n, k = values.shape
    if n == 0 or k == 0:
        return np.full((n_boot, k), np.nan)
    full = valid.all(axis=0)
    masks: dict[bytes, int] = {}
    mask_of = np.full(k, -1)
    for j in np.flatnonzero(~full):
        mask_of[j] = masks.setdefault(valid[:, j].tobytes(), len(masks))
    mask_cols = [np.frombuffer(key, dtype=np.bool_) for key in masks]
    design = np.column_stack([np.where(valid, values, 0.0), *mask_cols]).astype(np.float64)
    offsets = np.arange(max(1, CHUNK_CELLS // n))[:, None] * n

    def counts(chunk: int, rows: FloatArray) -> None:
        # A multinomial draw per resample: n case indices with replacement, counted per case.
        index = generator(seed, _BOOTSTRAP, chunk).integers(0, n, size=rows.shape)
        index += offsets[: rows.shape[0]]
        rows[...] = np.bincount(index.ravel(), minlength=rows.size).reshape(rows.shape)

    sums = _products(design, n_boot, counts)
    denominators = np.full((n_boot, k), float(n))
    partial = np.flatnonzero(~full)
    denominators[:, partial] = sums[:, k + mask_of[partial]]
    with np.errstate(invalid="ignore", divide="ignore"):
        means: FloatArray = np.where(denominators > 0, sums[:, :k] / denominators, np.nan)
    return means


def percentile_interval(boot: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
    """Percentile bootstrap interval of each column of `boot` (n_boot, columns), ignoring NaN draws."""
    tail = (1.0 - confidence) / 2.0
    low = np.full(boot.shape[1], np.nan)
    high = np.full(boot.shape[1], np.nan)
    clean = ~np.isnan(boot).any(axis=0)
    if clean.any():
        low[clean], high[clean] = np.quantile(boot[:, clean], [tail, 1.0 - tail], axis=0)
    for j in np.flatnonzero(~clean):
        column = boot[:, j][~np.isnan(boot[:, j])]
        if column.size:
            low[j], high[j] = np.quantile(column, [tail, 1.0 - tail])
    return low, high


def _tolerance(diffs: FloatArray) -> float:
    # Sums that are equal in exact arithmetic may differ in their last bits; count them as ties.
    return 1e-9 * float(np.abs(diffs).sum())


def _all_sign_sums(diffs: FloatArray) -> FloatArray:
    bits = (np.arange(2**diffs.size)[:, None] >> np.arange(diffs.size)) & 1
    sums: FloatArray = (2.0 * bits - 1.0) @ diffs
    return sums


def exact_sign_flip(diffs: FloatArray) -> float:
    """Two-sided exact p-value of the sign-flip test: all 2^n sign assignments (meet in the middle)."""
    if diffs.size == 0:
        return 1.0
    half = diffs.size // 2
    totals = _all_sign_sums(diffs[:half])[:, None] + _all_sign_sums(diffs[half:])[None, :]
    hits = np.count_nonzero(np.abs(totals) >= abs(float(diffs.sum())) - _tolerance(diffs))
    return float(hits) / 2.0**diffs.size


def sign_flip_pvalues(
    diffs: FloatArray, valid: BoolArray, *, n_perm: int, seed: int
) -> tuple[FloatArray, list[str]]:
    """Two-sided sign-flip p-value of each column of paired differences (cases, columns).

    Columns with at most EXACT_MAX valid differences are enumerated exactly; the others share one set of
    `n_perm` random sign assignments. Returns the p-values and, per column, the method used.
    """
    k = diffs.shape[1]
    clean = np.where(valid, diffs, 0.0)
    counts = valid.sum(axis=0)
    pvalues = np.ones(k)
    methods = [""] * k
    monte_carlo = []
    for j in range(k):
        if counts[j] <= EXACT_MAX:
            pvalues[j] = exact_sign_flip(clean[valid[:, j], j])
            methods[j] = f"sign-flip permutation, exact (all 2^{counts[j]} sign assignments)"
        else:
            monte_carlo.append(j)
            methods[j] = f"sign-flip permutation, Monte Carlo ({n_perm} random sign assignments)"
    if monte_carlo:
        columns = clean[:, monte_carlo]
        observed = np.abs(columns.sum(axis=0))
        cutoff = observed - np.array([_tolerance(columns[:, i]) for i in range(len(monte_carlo))])

        def signs(chunk: int, rows: FloatArray) -> None:
            # One random bit per case and assignment: 1 keeps the difference's sign, 0 flips it.
            raw = generator(seed, _SIGN_FLIP, chunk).bytes((rows.size + 7) // 8)
            rows[...] = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=rows.size).reshape(rows.shape)

        flipped = 2.0 * _products(columns, n_perm, signs) - columns.sum(axis=0)
        hits = np.count_nonzero(np.abs(flipped) >= cutoff, axis=0)
        pvalues[monte_carlo] = (1.0 + hits) / (1.0 + n_perm)
    return pvalues, methods
