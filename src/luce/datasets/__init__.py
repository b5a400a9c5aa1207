"""The embedded default data: data sets that ship with a dependency, so nothing is downloaded.

The default is scikit-learn's copy of the UCI optical handwritten digits (1797 images of 8 × 8 pixels
with values 0–16, ten classes). scikit-learn is imported on first use, never at ``import luce``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits", "load_digits_split"]


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def load_digits(*, scale=True, dtype=np.float64, return_X_y=False):
    """The digits data shipped with scikit-learn: ``X (1797, 64)`` pixel intensities, ``y`` in 0–9.

    Parameters
    ----------
    scale : bool, default True
        Divide the pixel values (0–16) by 16, so every feature lies in ``[0, 1]``.
    dtype : {float64, float32}, default float64
        dtype of ``X``.
    return_X_y : bool, default False
        Return ``(X, y)`` instead of the Bunch.

    Returns
    -------
    Bunch with ``data`` (1797, 64), ``target`` (1797,) int, ``target_names`` (10,), ``images``
    (1797, 8, 8), ``feature_names`` (64 names ``pixel_r_c``) and ``DESCR``; or ``(X, y)``.

    Examples
    --------
    >>> from luce.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> X.shape, y.shape, float(X.max())
    ((1797, 64), (1797,), 1.0)

    References
    ----------
    E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning
    Repository, 1998.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    dt = _check_dtype(dtype)
    bunch = _sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float64)
    if scale:
        X = X / 16.0
    X = X.astype(dt)
    y = np.asarray(bunch.target)
    if return_X_y:
        return X, y
    bunch.data = X
    bunch.target = y
    bunch.images = X.reshape(-1, 8, 8)
    return bunch


def load_digits_split(test_size=0.25, random_state=0, *, scale=True, dtype=np.float64):
    """The digits data split into stratified training and test parts.

    Parameters
    ----------
    test_size : float in (0, 1) or int, default 0.25
        Fraction (or number) of rows held out for testing.
    random_state : int or None, default 0
        Seed of the shuffle; the default gives the same split every time.
    scale : bool, default True
        Pixel values divided by 16 (features in ``[0, 1]``), as :func:`load_digits`.
    dtype : {float64, float32}, default float64

    Returns
    -------
    X_train, X_test : ndarray, shape (n_train, 64), (n_test, 64)
    y_train, y_test : ndarray of int, shape (n_train,), (n_test,)

    Examples
    --------
    >>> from luce.datasets import load_digits_split
    >>> X_train, X_test, y_train, y_test = load_digits_split()
    >>> X_train.shape, X_test.shape
    ((1347, 64), (450, 64))
    """
    from sklearn.model_selection import train_test_split

    X, y = load_digits(scale=scale, dtype=dtype, return_X_y=True)
    return train_test_split(X, y, test_size=test_size, random_state=random_state, stratify=y)
