"""How far back a window should reach: the target's dominant season from its autocorrelation.

Numpy only. An LSTM sees only its look-back; when the target repeats every S rows (a day
of hourly data, a week of daily data), a window that does not reach the same time one
season before the target leaves out the single most useful input. The autocorrelation is
computed per series on the training rows, averaged weighted by series length.
"""

from __future__ import annotations

import numpy as np

from contract.seasons import reaching_look_back

MIN_ACF = 0.3  # a season must correlate at least this much to be worth a longer window
NEAR_BEST = 0.9  # a shorter season within this fraction of the strongest one is preferred


def autocorrelation(series: list[np.ndarray], max_lag: int) -> np.ndarray:
    """ACF at lags 0..max_lag, pooled over series (each demeaned on its own), via FFT."""
    num = np.zeros(max_lag + 1)
    den = 0.0
    for s in series:
        s = np.asarray(s, np.float64)
        s = s[np.isfinite(s)]
        if len(s) <= max_lag + 1:
            continue
        s = s - s.mean()
        n = 1 << int(np.ceil(np.log2(2 * len(s))))
        f = np.fft.rfft(s, n)
        acov = np.fft.irfft(f * np.conj(f), n)[: max_lag + 1]
        num += acov
        den += acov[0]
    return num / den if den > 0 else np.zeros(max_lag + 1)


def dominant_season(acf: np.ndarray, min_lag: int = 2) -> tuple[int, float] | None:
    """(lag, acf) of the season a window should reach first, or None.

    Among the local maxima above MIN_ACF, the shortest lag whose autocorrelation is within
    NEAR_BEST of the highest: hourly household power peaks at 12 h (0.26, morning and
    evening), 24 h (0.43) and 168 h (0.45); the day is the answer, not the half-day
    sub-harmonic nor the week a little above it.
    """
    inner = np.arange(max(min_lag, 1), len(acf) - 1)
    peaks = inner[(acf[inner] > acf[inner - 1]) & (acf[inner] >= acf[inner + 1]) & (acf[inner] > MIN_ACF)]
    if not len(peaks):
        return None
    near = peaks[acf[peaks] >= NEAR_BEST * acf[peaks].max()]
    return int(near[0]), float(acf[near[0]])


def look_back_for(season: int) -> int:
    """The shortest look-back whose window holds the last input's row one season back, so the
    change the target made a season ago is among the inputs (contract.seasons)."""
    return reaching_look_back(season)
