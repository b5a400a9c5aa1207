"""Streaming softmax: the normaliser of an axis too long for one array, accumulated chunk by chunk."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from ._rowwise import from_numpy, prepare
from ._softmax import _finish

__all__ = ["OnlineSoftmax"]


def _chunk_state(x: np.ndarray, axis: int, mask):
    """``(m, t)`` of one chunk: the max and ``Σ exp(x - m) - 1`` without cancellation.

    The entries equal to the max contribute exactly 1 each, so ``t`` is the sum over the others plus
    (count of maxima - 1) (the log1p form of Blanchard, Higham & Higham 2021). A ``+inf`` max gives
    ``t = count of +inf - 1``; no finite entry gives ``(-inf, -1)``; a NaN gives NaN.
    """
    x = x.astype(np.float64)
    if mask is not None:
        x = np.where(mask, x, -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        if x.shape[axis]:
            m = x.max(axis=axis, keepdims=True)
        else:
            m = np.full((*x.shape[:axis], 1, *x.shape[axis + 1 :]), -np.inf)
        at_max = x == m
        finite = np.isfinite(m)
        e = np.exp(x - np.where(finite, m, 0.0))
        rest = np.where(at_max | ~finite, 0.0, e).sum(axis=axis, keepdims=True)
        n_max = at_max.sum(axis=axis, keepdims=True)
        t = rest + (n_max - 1.0)
        t = np.where(m == -np.inf, -1.0, t)
        t = np.where(np.isnan(m), np.nan, t)
    return np.squeeze(m, axis=axis), np.squeeze(t, axis=axis)


def _combine(m1, t1, m2, t2):
    """The state of the union of two disjoint sets of entries (associative and commutative).

    ``s = s1·e^{m1-m} + s2·e^{m2-m}`` with ``s = 1 + t``: the side holding the maximum keeps its
    exact ``t`` and the other side's whole sum is rescaled, so no ``1 + t - 1`` cancellation occurs.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.maximum(m1, m2)  # NaN propagates
        finite = np.isfinite(m)
        safe = np.where(finite, m, 0.0)
        e1 = np.where(finite, np.exp(m1 - safe), 0.0)
        e2 = np.where(finite, np.exp(m2 - safe), 0.0)
        top1 = m1 == m
        top2 = m2 == m
        t = np.where(top1 & top2, t1 + t2 + 1.0, np.where(top1, t1 + (1.0 + t2) * e2, t2 + (1.0 + t1) * e1))
        t = np.where(m == -np.inf, -1.0, t)
        t = np.where(np.isnan(m), np.nan, t)
    return m, t


class OnlineSoftmax:
    r"""A running ``(max, sum)`` over chunks of a long axis: streaming log-sum-exp and softmax.

    The state of a set of entries is ``m = max x`` and ``s = Σ exp(x - m)``; two states combine as

    .. math:: m = \max(m_1, m_2), \qquad s = s_1 e^{m_1 - m} + s_2 e^{m_2 - m}

    which is associative and commutative, so chunks may be folded in any order, and states built on
    separate workers merged, with the same result as the one-shot :func:`logsumexp` (to rounding,
    ``1e-12`` relative in float64). ``s`` is stored as ``t = s - 1`` computed without cancellation
    (the entries at the max contribute exactly 1), so ``logsumexp = m + log1p(t)`` keeps tails such
    as ``exp(-40)``.

    Parameters
    ----------
    axis : int, default -1
        The streamed axis of every chunk; the other axes are a batch whose shape is fixed by the
        first chunk.

    Attributes
    ----------
    max : ndarray, shape batch_shape
        The running maximum (``-inf`` before any entry).
    sum : ndarray, shape batch_shape
        ``Σ exp(x - max)`` over the entries seen (float64).

    Notes
    -----
    The state is float64 whatever the chunks' dtype; :meth:`normalize` returns the chunk's dtype.
    Edge semantics as :func:`softmax`: masked entries are left out, ``+inf`` entries share the mass
    equally, a NaN anywhere makes the slice NaN, and with no entry the log-sum-exp is ``-inf`` and
    the probabilities are 0.

    Examples
    --------
    >>> import numpy as np, luce
    >>> x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    >>> a = luce.OnlineSoftmax().update(x[:, :2])
    >>> b = luce.OnlineSoftmax().update(x[:, 2:])
    >>> both = a.merge(b)
    >>> bool(np.allclose(both.logsumexp(), luce.logsumexp(x)))
    True
    >>> both.normalize(x[:, 2:])
    array([[0.08612854, 0.23412166, 0.63640865]])

    References
    ----------
    M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax", arXiv:1805.02867 (2018).
    """

    def __init__(self, axis=-1):
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise TypeError(f"axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self._m = None
        self._t = None

    # -- state -----------------------------------------------------------------------------------
    @property
    def max(self):
        self._require_state("max")
        return self._m.copy()

    @property
    def sum(self):
        self._require_state("sum")
        return 1.0 + self._t

    def _require_state(self, what):
        if self._m is None:
            raise ValueError(f"OnlineSoftmax has no state yet: call update() before {what}")

    def _chunk(self, chunk, where=None, name="chunk"):
        xp, arr, out_dtype, axes, mask, scalar = prepare(chunk, self.axis, where, name=name)
        if scalar:
            raise ValueError(f"{name} must have the streamed axis {self.axis}, got a scalar")
        axis = axes[0]
        batch = arr.shape[:axis] + arr.shape[axis + 1 :]
        if self._m is not None and batch != self._m.shape:
            raise ValueError(
                f"{name} of shape {arr.shape} has batch shape {batch} (axis {self.axis}), but the state "
                f"has batch shape {self._m.shape}"
            )
        return xp, arr, out_dtype, axis, mask

    @v.own_errstate
    def update(self, chunk, *, where=None):
        """Fold a chunk into the state (in place); returns ``self`` for chaining.

        Parameters
        ----------
        chunk : array_like, shape (..., c, ...)
            The next ``c`` entries of the streamed axis (any ``c``, including 0).
        where : array_like of bool, optional
            Mask broadcastable to ``chunk``: False entries are left out.
        """
        _, arr, _, axis, mask = self._chunk(chunk, where)
        m, t = _chunk_state(arr, axis, mask)
        if self._m is None:
            self._m, self._t = m, t
        else:
            self._m, self._t = _combine(self._m, self._t, m, t)
        return self

    @v.own_errstate
    def merge(self, other):
        """A new state for the union of the entries of ``self`` and ``other`` (neither is modified)."""
        if not isinstance(other, OnlineSoftmax):
            raise TypeError(f"merge needs another OnlineSoftmax, got {type(other).__name__}")
        out = OnlineSoftmax(self.axis)
        if self._m is None or other._m is None:
            src = self if other._m is None else other
            out._m = None if src._m is None else src._m.copy()
            out._t = None if src._t is None else src._t.copy()
            return out
        if self._m.shape != other._m.shape:
            raise ValueError(f"cannot merge states of batch shapes {self._m.shape} and {other._m.shape}")
        out._m, out._t = _combine(self._m, self._t, other._m, other._t)
        return out

    # -- results ---------------------------------------------------------------------------------
    @v.own_errstate
    def logsumexp(self):
        """``log Σ exp(x)`` over every entry seen, shape ``batch_shape`` (float64)."""
        self._require_state("logsumexp")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isfinite(self._m), self._m + np.log1p(self._t), self._m)

    @v.own_errstate
    def _normalized(self, chunk, where, log):
        self._require_state("normalize")
        xp, arr, out_dtype, axis, mask = self._chunk(chunk, where)
        x = arr.astype(np.float64)
        m = np.expand_dims(self._m, axis)
        t = np.expand_dims(self._t, axis)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            # (x - m) - log1p(t), never x - (m + log1p(t)): that cancels at large |x| (shift invariance).
            log_p = (x - np.where(np.isfinite(m), m, 0.0)) - np.log1p(t)
            out = log_p if log else np.exp(log_p)
            # +inf state: the +inf entries share the mass (1 + t of them); others get 0.
            share = np.where(x == np.inf, 1.0 / (1.0 + t), 0.0)
            inf_out = np.log(share) if log else share
            out = np.where(m == np.inf, inf_out, out)
            out = np.where(m == -np.inf, -np.inf if log else 0.0, out)
            out = np.where(np.isnan(m), np.nan, out)
        if mask is not None:
            out = np.where(mask, out, -np.inf if log else 0.0)
        return from_numpy(xp, _finish(np, out.astype(arr.dtype), out_dtype))

    def normalize(self, chunk, *, where=None):
        """``softmax`` of a chunk under the accumulated normaliser: ``exp(chunk - logsumexp())``.

        Parameters
        ----------
        chunk : array_like, shape (..., c, ...)
            Entries of the streamed axis (normally ones already folded in with :meth:`update`).
        where : array_like of bool, optional
            Masked entries get probability 0.

        Returns
        -------
        ndarray, shape of chunk, dtype of chunk (float16/32/64; ints become float64)
        """
        return self._normalized(chunk, where, log=False)

    def log_normalize(self, chunk, *, where=None):
        """``log_softmax`` of a chunk under the accumulated normaliser: ``chunk - logsumexp()``.

        Parameters
        ----------
        chunk : array_like, shape (..., c, ...)
            Entries of the streamed axis.
        where : array_like of bool, optional
            Masked entries get ``-inf``.

        Returns
        -------
        ndarray, shape of chunk, dtype of chunk
        """
        return self._normalized(chunk, where, log=True)

    def __repr__(self):
        shape = None if self._m is None else self._m.shape
        return f"OnlineSoftmax(axis={self.axis}, batch_shape={shape})"
