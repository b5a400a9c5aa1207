"""Solvers for an :class:`~luce.models._objective.Objective`: they orchestrate, the objective does the math.

* :func:`lbfgs` (SciPy's L-BFGS-B) and :func:`newton_cg` (our truncated Newton,
  :func:`_truncated_newton`) run on a linearly preconditioned parameterisation (below) and stop when
  the max-abs gradient *of the original problem* is at most ``tol`` (scikit-learn's meaning of ``tol``
  for these solvers), or when ``f`` stalls at the rounding level of the data dtype while the gradient
  is at the rounding level too. A loss that is not finite at the start is a ``ValueError``.
* :func:`gradient_descent` is the tutorial's full-batch gradient descent; :func:`sgd` runs mini-batch
  epochs with heavy-ball momentum or Adam. Both stop at ``max_iter``, and either when the loss falls
  below ``threshold`` (the tutorial's rule, when a threshold is given) or when it has not improved by
  ``tol`` for ``n_iter_no_change`` iterations (scikit-learn's MLP rule, otherwise); with a validation
  objective they early-stop on the validation loss instead.

Preconditioning. With ``x̃ = [x, 1]`` the Hessian of the data term at uniform probabilities is
``(I - 11ᵀ/K)/K ⊗ Σ w x̃x̃ᵀ/Σw``, so L-BFGS on the raw coefficients inherits the conditioning of the
features (scales, correlations, the intercept's offset). We write the augmented weights
``[W | b] = V P`` with ``P = L⁻¹`` and ``L Lᵀ = M = Gram/K + λ I`` (``Gram = Σ w x̃x̃ᵀ / Σw``, no penalty
on the intercept): in ``V`` that model Hessian is the identity. This is the Kronecker-factored
preconditioner of K-FAC (Martens & Grosse, "Optimizing neural networks with Kronecker-factored
approximate curvature", ICML 2015) with the class factor frozen at its uniform value; it costs one
pass over the data and, on the 200k × 100, 20-class benchmark, cuts L-BFGS iterations about eightfold.
For many dense features ``P`` is the diagonal (Jacobi) version. For many sparse features there is none:
on text-like CSR data (non-negative tf-idf rows, Zipf column frequencies; 20k × 10k, 20 classes,
λ = 1/n) the Jacobi scaling *raised* the L-BFGS iterations from 294 to 485 and the Newton-CG time
from 11 s to 28 s (it amplifies the many rare features, whose curvature is almost only the penalty).
Newton-CG there was measured with the exact diagonal of the current Hessian, per feature and class, as
the CG preconditioner (the class-sum directions, whose curvature is the penalty alone, projected out
and solved exactly): on text-like CSR 20k × 10k, ~27 nonzeros per row, 50 classes, λ = 1/n, it took
358 Hessian products to tol = 1e-6 against 228 without, 291-355 with the diagonal floored at its 50th
to 99th percentile (the raw CG residual stalls: the frequent features are nearly collinear with each
other and the intercept, which a diagonal cannot fix); forcing terms tighter than min(1/2, √‖g‖₁)
took 253-343. So sparse data runs plain CG.

Divergence. gd and sgd detect a non-finite or exploding loss, halve the learning rate (backtracking),
warn once, and raise a ``ValueError`` naming ``learning_rate`` when 40 halvings do not help.
lbfgs and newton-cg return the last finite iterate if a trial point is not finite.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse

from .._kernels import _dispatch
from .._threads import one_blas_thread

__all__ = [
    "SolverResult",
    "auto_learning_rate",
    "gradient_descent",
    "lbfgs",
    "newton_cg",
    "sgd",
    "sgd_epoch",
]

# Full (Cholesky) preconditioner up to this many augmented features, and while d <= 8 K (building
# the Gram matrix then costs at most about two objective evaluations); the diagonal one beyond.
_FULL_PRECONDITIONER_MAX = 2048
_MAX_HALVINGS = 40
# Inner CG steps per Newton step at most (scikit-learn's newton-cg uses 200): with float32 products
# the residual can stall above the forcing tolerance, and more steps then only cost passes over X.
_MAX_CG = 100
# scikit-learn's L-BFGS-B ftol: stop when the relative decrease of f is below 64 machine epsilons.
_FTOL = 64 * np.finfo(np.float64).eps


@dataclass
class SolverResult:
    """What a solver returns: the parameters and how it got there."""

    theta: np.ndarray
    n_iter: int
    converged: bool
    message: str
    learning_rate: float | None = None
    validation_loss_curve: list[float] | None = None
    best_validation_loss: float | None = None
    state: dict = field(default_factory=dict)


class _NonFinite(Exception):
    pass


# -- preconditioning -------------------------------------------------------------------------------


class _Reparametrization:
    """``theta = T(v)``: the augmented weights ``[W | b] = V @ P`` (``P`` a matrix or a diagonal)."""

    def __init__(self, objective, P):
        self.obj = objective
        self.P = P  # None (identity), 1-D (diagonal) or 2-D

    def _augment(self, theta):
        o = self.obj
        theta = np.asarray(theta, dtype=np.float64)
        A = np.empty((o.n_classes, o.n_features + o.fit_intercept))
        A[:, : o.n_features] = theta[: o.n_coef].reshape(o.n_classes, o.n_features)
        if o.fit_intercept:
            A[:, o.n_features] = theta[o.n_coef :]
        return A

    def _flatten(self, A):
        o = self.obj
        out = np.empty(o.n_params)
        out[: o.n_coef] = A[:, : o.n_features].ravel()
        if o.fit_intercept:
            out[o.n_coef :] = A[:, o.n_features]
        return out

    def _right(self, A, transpose):
        if self.P is None:
            return A
        if self.P.ndim == 1:
            return A * self.P
        return A @ (self.P.T if transpose else self.P)

    def to_theta(self, v):
        if self.P is None:
            # The identity (sparse data): one copy, not the augment/flatten round trip (at 50k × 50
            # parameters those copies took a tenth of a Hessian product).
            return np.array(v, dtype=np.float64)
        return self._flatten(self._right(self._augment(v), transpose=False))

    def to_v_grad(self, g):
        """The gradient in ``v`` from the gradient in ``theta``: ``∇_V = ∇_A Pᵀ``."""
        if self.P is None:
            return np.asarray(g, dtype=np.float64)  # the objective's fresh array, no copy needed
        return self._flatten(self._right(self._augment(g), transpose=True))

    def from_theta(self, theta):
        if self.P is None:
            return np.array(theta, dtype=np.float64)
        A = self._augment(theta)
        if self.P.ndim == 1:
            return self._flatten(A / self.P)
        return self._flatten(np.linalg.solve(self.P.T, A.T).T)


def _cholesky_inverse(M):
    """``L⁻¹`` with ``L Lᵀ = M``; a jitter proportional to the mean diagonal makes singular ``M`` usable."""
    scale = max(float(np.mean(np.diag(M))), np.finfo(np.float64).tiny)
    jitter = 0.0
    for _ in range(12):
        try:
            L = np.linalg.cholesky(M + jitter * np.eye(M.shape[0]))
            break
        except np.linalg.LinAlgError:
            jitter = scale * (1e-12 if jitter == 0 else jitter / scale * 100)
    else:
        return None
    return scipy.linalg.solve_triangular(L, np.eye(M.shape[0]), lower=True)


def preconditioner(objective, mode="auto"):
    """The reparameterisation used by :func:`lbfgs` and :func:`newton_cg`.

    ``mode``: ``"auto"`` (full below a size, diagonal above), ``"full"``, ``"diagonal"`` or ``None``.
    """
    if mode is None or mode is False:
        return _Reparametrization(objective, None)
    d1 = objective.n_features + objective.fit_intercept
    if mode == "auto":
        full = d1 <= _FULL_PRECONDITIONER_MAX and d1 <= max(256, 8 * objective.n_classes)
        if not full and scipy.sparse.issparse(getattr(objective, "X", None)):
            return _Reparametrization(objective, None)  # see the module docstring: Jacobi hurts here
        mode = "full" if full else "diagonal"
    k = objective.n_classes
    reg = np.full(d1, objective.reg_strength)
    if objective.fit_intercept:
        reg[-1] = 0.0
    if mode == "full":
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing Gram falls back below
            M = objective.gram() / k
        M[np.diag_indices(d1)] += reg
        if np.all(np.isfinite(M)):
            P = _cholesky_inverse(M)
            if P is not None and np.all(np.isfinite(P)):
                return _Reparametrization(objective, P)
        mode = "diagonal"
    with np.errstate(over="ignore", invalid="ignore"):
        diag = objective.gram(diagonal=True) / k + reg
    if not np.all(np.isfinite(diag)):
        return _Reparametrization(objective, None)
    positive = diag > 0
    fill = float(np.mean(diag[positive])) if positive.any() else 1.0
    return _Reparametrization(objective, 1.0 / np.sqrt(np.where(positive, diag, fill)))


# -- scipy.optimize drivers ------------------------------------------------------------------------


class _Tracker:
    """Evaluates the objective for scipy in ``v`` coordinates; remembers the last point and the best."""

    def __init__(self, objective, reparam, callback):
        self.obj = objective
        self.rp = reparam
        self.callback = callback
        self.last_v = None
        self.last_f = math.inf
        self.last_gmax = math.inf
        self.n_iter = 0
        self.best_theta = None
        self.best_f = math.inf
        self.gmax_at_best = math.inf

    def evaluate(self, v):
        if self.last_v is not None and np.array_equal(v, self.last_v):
            return self.last_f, self.last_gv.copy()  # scipy re-evaluates the starting point
        theta = self.rp.to_theta(v)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are handled below
            f, g = self.obj.loss_gradient(theta)
        if not math.isfinite(f) or not np.all(np.isfinite(g)):
            raise _NonFinite
        self.last_v = np.array(v, copy=True)
        self.last_f = f
        self.last_gmax = float(np.max(np.abs(g))) if g.size else 0.0
        self.last_theta = theta
        self.last_gv = self.rp.to_v_grad(g)
        return f, self.last_gv.copy()

    def start(self, v0):
        f, gv = self.evaluate(v0)
        self.best_theta, self.best_f, self.gmax_at_best = self.last_theta, f, self.last_gmax
        self.iter_f = f
        if self.callback is not None:
            self.callback(0, f)
        return f, gv

    def iteration(self, x, fun):
        """Called after each solver iteration; returns the max-abs gradient there."""
        if self.last_v is None or not np.array_equal(x, self.last_v):
            self.evaluate(x)
        self.n_iter += 1
        self.iter_f = self.last_f
        if self.last_f <= self.best_f:
            self.best_theta, self.best_f, self.gmax_at_best = self.last_theta, self.last_f, self.last_gmax
        if self.callback is not None:
            self.callback(self.n_iter, float(self.last_f))
        return self.last_gmax


def _precision_floor(dtype, f):
    # Below sqrt(eps)·|f| the gradient is rounding noise: a failed line search there is convergence.
    return math.sqrt(np.finfo(dtype).eps) * max(1.0, abs(f))


def _scipy_minimize(objective, theta0, *, method, max_iter, tol, callback, precondition, options):
    rp = preconditioner(objective, precondition)
    tracker = _Tracker(objective, rp, callback)
    v0 = rp.from_theta(theta0)
    stopped = []

    def fun(v):
        return tracker.evaluate(v)

    def cb(intermediate_result):
        previous = tracker.iter_f
        gmax = tracker.iteration(intermediate_result.x, intermediate_result.fun)
        if gmax <= tol:
            stopped.append(f"max |gradient| <= tol={tol:g}")
            raise StopIteration
        # The loss of float32 data is a float64 mean of float32-rounded row terms, its noise about
        # eps32 / sqrt(n): f stalls near that level, not at eps32 (the old rule stopped float32 fits
        # ~3e-7 above the optimum, 6e-6 on a wide set). At most eps32 / 16, though: the float32
        # gradient has its own rounding, and below that L-BFGS-B's line search fights noise (200k x
        # 100, 20 classes: eps32 / sqrt(n) took 54 evaluations, eps32 / 16 took 19 and ended below
        # scikit-learn-intelex's objective, eps32 15 evaluations). An objective that does not know its
        # rows (the Dask one) keeps eps32.
        eps = float(np.finfo(objective.dtype).eps)
        n_rows = max(getattr(objective, "n_samples", 1), 1)
        ftol = max(_FTOL, eps / min(math.sqrt(n_rows), 16.0))
        stalled = previous - tracker.last_f <= ftol * max(abs(previous), abs(tracker.last_f), 1)
        if stalled and gmax <= _precision_floor(objective.dtype, tracker.last_f):
            # A stalled f alone is no reason to stop (inexact Newton steps can make tiny progress far
            # from the optimum): only when the gradient is at the rounding level too. Without this,
            # L-BFGS-B on float32 data spends its line searches on rounding noise before it gives up.
            stopped.append("f no longer decreases and the gradient is at the rounding level")
            raise StopIteration

    try:
        tracker.start(v0)
    except _NonFinite:
        raise _non_finite_start(objective) from None
    try:
        if tracker.last_gmax <= tol:
            return SolverResult(tracker.last_theta, 0, True, "the starting point satisfies tol")
        if method == "Newton-CG":
            res = _truncated_newton(
                fun,
                lambda v, u: _hessp_v(objective, rp, v, u),
                v0,
                tracker,
                max_iter,
                cb,
                # Without a preconditioner the CG residual is the gradient of theta itself, whose
                # max-abs is the stopping test: a factor 2 of margin for the model's error.
                enough=tol / 2 if rp.P is None else None,
            )
        else:
            res = scipy.optimize.minimize(
                fun, v0, jac=True, method=method, callback=cb, options={"maxiter": max_iter, **options}
            )
    except _NonFinite:
        return SolverResult(
            tracker.best_theta,
            tracker.n_iter,
            False,
            "a trial point gave a non-finite loss; returning the last finite iterate",
        )
    theta = tracker.best_theta
    if stopped:
        return SolverResult(theta, tracker.n_iter, True, stopped[0])
    if tracker.n_iter >= max_iter:
        return SolverResult(theta, tracker.n_iter, False, f"reached max_iter={max_iter}")
    floor = max(tol, _precision_floor(objective.dtype, tracker.best_f))
    if res.status == 0 or tracker.gmax_at_best <= floor:
        return SolverResult(theta, tracker.n_iter, True, str(res.message))
    return SolverResult(theta, tracker.n_iter, False, f"{method} stopped: {res.message}")


def _non_finite_start(objective):
    """The error for an objective that is not finite where the solver starts."""
    X = getattr(objective, "X", None)
    values = np.asarray(getattr(X, "data", X) if X is not None and not isinstance(X, np.ndarray) else X)
    with np.errstate(all="ignore"):
        biggest = f"{float(np.max(np.abs(values))):.3g}" if X is not None and values.size else "?"
    return ValueError(
        "the training loss or its gradient is not finite at the starting coefficients, before any "
        f"step: the features (largest |x| = {biggest}, dtype {objective.dtype}) or the sample weights "
        "overflow the arithmetic; scale the features (e.g. StandardScaler) or use float64"
    )


def _serial_dot(a, b):
    """``a·b`` with BLAS on one thread: the same bits for any BLAS thread count (a threaded dot splits
    the sum), and no thread wake-up per call (a dot of 2.5M float64 took 8-12 ms on two BLAS threads,
    2-3 ms on one; 2-core machine under load)."""
    with one_blas_thread():
        return float(a @ b)


def _conjugate_gradient(hessp, g, max_iter, enough=None):
    """An inexact Newton direction: CG on ``H p = -g`` to the relative residual ``min(1/2, √‖g‖₁)``
    (the forcing sequence of Nocedal & Wright, "Numerical Optimization", 2nd ed., Algorithm 7.1, which
    scikit-learn's newton-cg uses too). Stops at non-positive curvature; on the first step that means
    steepest descent. Unlike SciPy's Newton-CG there is no absolute curvature cut-off (``p·Hp <= 3 eps``),
    which ends the solve with a zero step when the gradient is small in a weakly penalised direction.

    ``enough``: also stop once the residual ``r = g + H p`` (the quadratic model's gradient after the
    step) has ``max |r| <= enough``: the caller's stopping test is then predicted to hold after this
    step, and a tighter solve only spends products (it is checked on the true gradient, as always).
    On the text-like CSR benchmark (100k × 50k, 50 classes) the last Newton step stopped at 78 instead
    of the 100-product cap (452 products in all, 474-490 before, the objective 5e-9 above, still below
    scikit-learn's); on 20k × 10k 17 instead of 91.
    """
    scratch = np.empty_like(g)  # one buffer for the products below: no vector-sized temporaries
    dot = _serial_dot
    # Fused, compiled updates (csrc/cg.h) for float64 vectors of at least 65,536 entries; NumPy otherwise.
    fused_update = _dispatch.lookup("cg_update", g)
    fused_direction = _dispatch.lookup("cg_direction", g)
    fused = fused_update is not None and fused_direction is not None and g.dtype == np.float64

    def l1(a):
        return float(np.sum(np.abs(a, out=scratch)))

    def add_scaled(a, alpha, b):  # a += alpha * b
        a += np.multiply(b, alpha, out=scratch)

    g_norm = l1(g)
    target = min(0.5, math.sqrt(g_norm)) * g_norm
    x = np.zeros_like(g)
    r = g.copy()
    d = -r
    rr = dot(r, r)
    r_norm = g_norm
    r_max = math.inf  # max |r| after a step (the first step is always taken)
    for i in range(max_iter):
        if r_norm <= target or (enough is not None and r_max <= enough):
            break
        Hd = hessp(d)
        curvature = dot(d, Hd)
        if curvature <= 0:
            return -g if i == 0 else x
        alpha = rr / curvature
        if fused:
            rr_new, r_norm, r_max = fused_update(x, r, d, np.ascontiguousarray(Hd, dtype=np.float64), alpha)
            fused_direction(d, r, rr_new / rr)
        else:
            add_scaled(x, alpha, d)
            add_scaled(r, alpha, Hd)
            rr_new = dot(r, r)
            r_norm = l1(r)
            r_max = float(np.max(np.abs(r, out=scratch))) if enough is not None else math.inf
            d *= rr_new / rr
            d -= r
        rr = rr_new
    return x


def _truncated_newton(fun, hessp, v0, tracker, max_iter, callback, enough=None):
    """Newton-CG with a backtracking (Armijo) line search from the unit step; ``callback`` as SciPy's;
    ``enough`` as :func:`_conjugate_gradient`'s.

    Each iteration costs the CG's Hessian products plus usually one evaluation (the unit Newton step
    is accepted near the optimum). Returns an ``OptimizeResult`` with ``x``, ``status`` and ``message``.
    """
    v = np.array(v0, dtype=np.float64)
    f, g = fun(v)
    for _ in range(max_iter):
        step = _conjugate_gradient(lambda u, v=v: hessp(v, u), g, min(20 * v.size, _MAX_CG), enough)
        slope = _serial_dot(g, step)
        if not slope < 0:
            return scipy.optimize.OptimizeResult(x=v, status=2, message="no descent direction (rounding)")
        alpha = 1.0
        for _ in range(60):
            f_new, g_new = fun(v + alpha * step)
            if f_new <= f + 1e-4 * alpha * slope:
                break
            alpha *= 0.5
        else:
            return scipy.optimize.OptimizeResult(
                x=v, status=2, message="the line search cannot lower f (rounding)"
            )
        v, f, g = v + alpha * step, f_new, g_new
        try:
            callback(scipy.optimize.OptimizeResult(x=v, fun=f))
        except StopIteration:
            return scipy.optimize.OptimizeResult(x=v, status=0, message="stopped by the callback")
    return scipy.optimize.OptimizeResult(x=v, status=1, message=f"reached max_iter={max_iter}")


def _hessp_v(objective, rp, v, u):
    if rp.P is None:  # the objective only reads its arguments: no copies of v and u per product
        return np.asarray(objective.hessp(v, u), dtype=np.float64)
    theta = rp.to_theta(v)
    hu = objective.hessp(theta, rp.to_theta(u))
    return rp.to_v_grad(hu)


def lbfgs(objective, theta0, *, max_iter=100, tol=1e-4, callback=None, precondition="auto", memory=10):
    """Minimise ``objective`` with SciPy's L-BFGS-B on the preconditioned parameters.

    Stops when the max-abs gradient is ``<= tol``, when the relative decrease of ``f`` is below
    ``64 ε`` (scikit-learn's ``ftol``), or after ``max_iter`` iterations. ``callback(i, f)`` sees the
    objective after ``i`` iterations (``i = 0`` is the starting point).
    """
    options = {"gtol": 0.0, "ftol": _FTOL, "maxls": 50, "maxcor": memory}
    options["maxfun"] = max(15000, 4 * max_iter)
    return _scipy_minimize(
        objective,
        theta0,
        method="L-BFGS-B",
        max_iter=max_iter,
        tol=tol,
        callback=callback,
        precondition=precondition,
        options=options,
    )


def newton_cg(objective, theta0, *, max_iter=100, tol=1e-4, callback=None, precondition="auto"):
    """Minimise ``objective`` by truncated Newton (CG on Hessian-vector products, :func:`_truncated_newton`)
    on the preconditioned parameters; stops when the max-abs gradient is ``<= tol``, when ``f`` no longer
    decreases and the gradient is at the rounding level, or after ``max_iter`` Newton steps."""
    options = {}
    return _scipy_minimize(
        objective,
        theta0,
        method="Newton-CG",
        max_iter=max_iter,
        tol=tol,
        callback=callback,
        precondition=precondition,
        options=options,
    )


# -- gradient descent and SGD ----------------------------------------------------------------------


def gram_norm(objective, n_iter=30, seed=0, rtol=1e-3):
    """The largest eigenvalue of ``Σ w x̃x̃ᵀ / Σw`` (exact for few features, else power iteration, up to
    ``n_iter`` products, stopped once an iteration changes the estimate by at most ``rtol``: its error
    is then of that order, far inside the 5% margin added; text data stopped after 6-8 of 30)."""
    d1 = objective.n_features + objective.fit_intercept
    if d1 <= 512:
        G = objective.gram()
        if not np.all(np.isfinite(G)):
            return math.inf
        return float(scipy.linalg.eigvalsh(G, subset_by_index=[d1 - 1, d1 - 1])[0])
    X, sw = objective.X, objective.sample_weight
    v = np.random.default_rng(seed).standard_normal(d1)
    lam = 0.0
    for _ in range(n_iter):
        v /= np.linalg.norm(v)
        xv = X @ v[: objective.n_features]
        if objective.fit_intercept:
            xv = xv + v[-1]
        if sw is not None:
            xv = xv * sw
        w = np.empty(d1)
        w[: objective.n_features] = X.T @ xv
        if objective.fit_intercept:
            w[-1] = np.sum(xv)
        w /= objective.sw_sum
        lam, previous = float(v @ w), lam
        v = w
        if not math.isfinite(lam):
            return math.inf
        if abs(lam - previous) <= rtol * lam:
            break
    return lam * 1.05  # power iteration approaches from below


def auto_learning_rate(objective, momentum):
    """``learning_rate="auto"``: ``1/L`` with ``L = λ_max(Gram)/2 + reg_strength`` (a bound on the
    curvature: the softmax Hessian factor ``diag(p) - ppᵀ`` has norm at most 1/2); ``1e-3`` for Adam."""
    if momentum == "adam":
        return 1e-3
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected and reported below
        lipschitz = 0.5 * gram_norm(objective) + objective.reg_strength
    if not math.isfinite(lipschitz):
        raise ValueError(
            "learning_rate='auto' cannot be computed: the features are so large that X^T X overflows; "
            "scale the features or pass a numeric learning_rate"
        )
    return 1.0 / lipschitz if lipschitz > 0 else 1.0


def _diverged_error(learning_rate, lr):
    return ValueError(
        f"the loss is not finite (or explodes) with learning_rate={learning_rate!r}, even after halving it "
        f"{_MAX_HALVINGS} times to {lr:.3g}; scale the features or lower learning_rate"
    )


def _warn_halving(learning_rate, lr, warned, what):
    """Warn once per fit; ``stacklevel`` points at the user's ``fit``/``partial_fit`` call."""
    if not warned:
        warnings.warn(
            f"learning_rate={learning_rate!r} made {what}; halving the step (now {lr:.3g}) and retrying. "
            "Later halvings are silent; learning_rate_ holds the final step",
            RuntimeWarning,
            stacklevel=5,
        )
    return True


def _explode_limit(reference, n_classes):
    return 10.0 * (max(reference, math.log(max(n_classes, 2))) + 1.0)


class _Plateau:
    """scikit-learn's MLP rule: stop after ``patience`` values not better than ``best - tol``."""

    def __init__(self, tol, patience):
        self.tol, self.patience = tol, patience
        self.best = math.inf
        self.count = 0

    def update(self, value):
        """Record ``value``; return (improved, stop)."""
        improved = value < self.best
        self.count = self.count + 1 if value > self.best - self.tol else 0
        self.best = min(self.best, value)
        return improved, self.count >= self.patience


class _StopRules:
    """The stopping rules gd and sgd share, checked after every iteration (epoch): the loss below
    ``threshold``; else, with validation data, the validation loss no longer improving (the best
    validated coefficients are returned); else the training loss no longer improving."""

    def __init__(self, tol, n_iter_no_change, threshold, validation, theta, unit):
        self.tol, self.n_iter_no_change, self.unit = tol, n_iter_no_change, unit
        self.threshold, self.validation = threshold, validation
        self.plateau = _Plateau(tol, n_iter_no_change)
        self.val_plateau = _Plateau(tol, n_iter_no_change)
        self.val_curve, self.best_val, self.best_theta = [], math.inf, theta
        self.by_threshold = False

    def check(self, loss, theta):
        """None to go on, or the message saying why the run stops."""
        if self.threshold is not None and loss < self.threshold:
            self.by_threshold = True
            return f"loss {loss:.6g} < threshold={self.threshold:g}"
        if self.validation is not None:
            v = self.validation.loss(theta)
            self.val_curve.append(v)
            improved, stop = self.val_plateau.update(v)
            if improved:
                self.best_val, self.best_theta = v, theta
            return "validation loss stopped improving" if stop else None
        if self.threshold is None and self.plateau.update(loss)[1]:
            return f"loss improved by less than tol={self.tol:g} for {self.n_iter_no_change} {self.unit}"
        return None

    def final_theta(self, theta):
        """With validation data the best validated coefficients, unless the threshold ended the run."""
        if self.validation is None or self.by_threshold or self.best_val == math.inf:
            return theta
        return self.best_theta

    def curves(self):
        """The SolverResult fields of the validation data (None without it)."""
        if self.validation is None:
            return {"validation_loss_curve": None, "best_validation_loss": None}
        return {"validation_loss_curve": self.val_curve, "best_validation_loss": self.best_val}


def gradient_descent(
    objective,
    theta0,
    *,
    learning_rate,
    max_iter,
    tol,
    n_iter_no_change,
    threshold=None,
    callback=None,
    rng=None,
    validation=None,
):
    """Full-batch gradient descent, ``theta <- theta - learning_rate · ∇f(theta)`` (the tutorial).

    Iteration ``i`` evaluates the loss after ``i`` steps, reports it to ``callback(i, loss)``, stops if
    it is below ``threshold`` (or, without a threshold, on the ``tol`` plateau rule), otherwise steps.
    A step whose loss is not finite or rises by more than 0.1 % (deterministic case) — or exceeds ten
    times the current loss with logit dropout — is rejected and the learning rate halved.
    """
    stochastic = rng is not None and objective.logit_dropout > 0
    theta = np.array(theta0, dtype=objective.dtype, copy=True)
    lr = float(learning_rate)
    f, g = objective.loss_gradient(theta, rng=rng if stochastic else None)
    if not math.isfinite(f) or not np.all(np.isfinite(g)):
        raise ValueError(
            "the loss or its gradient is not finite at the starting coefficients (before any step of "
            f"learning_rate={learning_rate!r}); scale the features"
        )
    rules = _StopRules(tol, n_iter_no_change, threshold, validation, theta, "iterations")
    halvings, warned = 0, False
    converged, message, it = False, f"reached max_iter={max_iter}", 0
    for it in range(max_iter + 1):
        if callback is not None:
            callback(it, f)
        stop = rules.check(f, theta)
        if stop is not None:
            converged, message = True, stop
            break
        if it == max_iter:
            break
        while True:
            step = np.asarray(lr, dtype=objective.dtype)
            with np.errstate(over="ignore", invalid="ignore"):  # detected below; we warn once ourselves
                candidate = theta - step * g
                f_new, g_new = objective.loss_gradient(candidate, rng=rng if stochastic else None)
            finite = math.isfinite(f_new) and np.all(np.isfinite(g_new))
            if stochastic:
                ok = finite and f_new <= _explode_limit(f, objective.n_classes)
            else:
                ok = finite and f_new <= f + 1e-3 * abs(f)
            if ok:
                break
            halvings += 1
            lr *= 0.5
            if halvings > _MAX_HALVINGS:
                raise _diverged_error(learning_rate, lr)
            what = (
                f"the loss rise from {f:.6g} to {f_new:.6g}"
                if finite
                else "the loss or its gradient non-finite (overflow)"
            )
            warned = _warn_halving(learning_rate, lr, warned, what)
        theta, f, g = candidate, f_new, g_new
    return SolverResult(rules.final_theta(theta), it, converged, message, learning_rate=lr, **rules.curves())


def _resolve_batch_size(batch_size, n):
    return min(200, n) if batch_size == "auto" else max(1, min(int(batch_size), n))


def first_batch(rng, n, batch, sample_weight):
    """The rows whose mini-batch loss is the reference before the first epoch, drawn with one
    permutation as an epoch draws its batches, from the rows that carry weight: a batch of zero-weight
    rows has only the penalty, a loss of 0 at the start, after which every epoch looks divergent."""
    order = rng.permutation(n)
    if sample_weight is not None:
        weighted = order[np.asarray(sample_weight)[order] > 0]
        order = weighted if weighted.size else order
    return np.sort(order[:batch])


def sgd_epoch(objective, theta, state, *, learning_rate, momentum, batch_size, rng, explode=math.inf):
    """One pass of mini-batch steps over the objective's rows in a random order.

    ``state`` holds the optimiser's memory (momentum velocity or Adam moments) and is updated in place.
    Returns ``(mean mini-batch objective, new theta)``; raises ``_NonFinite`` when a batch loss is not
    finite or exceeds ``explode``. Plain and heavy-ball steps (no dropout) on CSR data cost
    O(batch nonzeros × K) each (the objective's ``lazy_sgd``: untouched columns are brought up to date
    lazily); Adam's per-coordinate steps take the dense-gradient path, O(n_features × K) per batch.
    """
    n = objective.n_samples
    b = _resolve_batch_size(batch_size, n)
    order = rng.permutation(n)
    dropout_rng = rng if objective.logit_dropout > 0 else None
    dt = objective.dtype
    lr = np.asarray(learning_rate, dtype=dt)
    lazy = _lazy_steps(objective, theta, momentum, state, float(lr), -(-n // b))
    if lazy is not None:  # works on its own copy of the weights
        return _lazy_epoch(lazy, order, b, float(lr), explode, state)
    theta = np.array(theta, dtype=dt, copy=True)
    total, weight = 0.0, 0.0
    for start in range(0, n, b):
        rows = np.sort(order[start : start + b])
        f, g = objective.batch_loss_gradient(theta, rows, rng=dropout_rng)
        if not math.isfinite(f) or f > explode or not np.all(np.isfinite(g)):
            raise _NonFinite
        if momentum == "adam":
            # Adam (Kingma & Ba 2015) with bias correction.
            b1, b2, eps = 0.9, 0.999, 1e-8
            t = state["t"] = state.get("t", 0) + 1
            m = state.setdefault("m", np.zeros_like(theta))
            v = state.setdefault("v", np.zeros_like(theta))
            m *= dt.type(b1)
            m += dt.type(1 - b1) * g
            v *= dt.type(b2)
            v += dt.type(1 - b2) * g * g
            m_hat = m / dt.type(1 - b1**t)
            v_hat = v / dt.type(1 - b2**t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + dt.type(eps))
        elif momentum:
            # Heavy-ball momentum (Polyak 1964): velocity <- β velocity - lr g.
            vel = state.setdefault("velocity", np.zeros_like(theta))
            vel *= dt.type(momentum)
            vel -= lr * g
            theta += vel
        else:
            theta -= lr * g
        if not np.all(np.isfinite(theta)):
            raise _NonFinite
        w = float(len(rows))
        total += f * w
        weight += w
    return total / weight, theta


def _lazy_steps(objective, theta, momentum, state=None, learning_rate=None, n_steps=0):
    """The sparse steps of SGD (plain or heavy-ball, no Adam, no dropout) when the objective has them:
    O(batch nonzeros × K) per batch instead of O(n_features × K) (``LazySparseSGD``,
    ``LazyMomentumSGD``)."""
    if momentum == "adam" or objective.logit_dropout > 0 or not hasattr(objective, "lazy_sgd"):
        return None
    velocity = None if state is None else state.get("velocity")
    lazy = objective.lazy_sgd(
        theta, momentum=momentum, velocity=velocity, learning_rate=learning_rate, n_steps=n_steps
    )
    if lazy is not None and state is not None:
        state.pop("velocity", None)  # copied in; the epoch's end hands back a new one
    return lazy


def _lazy_epoch(lazy, order, batch, lr, explode, state):
    """:func:`sgd_epoch` on lazy sparse steps: the same batches, the same checks."""
    total, weight = 0.0, 0.0
    for start in range(0, len(order), batch):
        rows = np.sort(order[start : start + batch])
        f, finite = lazy.step(rows, lr)
        if not finite or f > explode:
            raise _NonFinite
        total += f * len(rows)
        weight += len(rows)
    if hasattr(lazy, "finish"):
        theta, state["velocity"] = lazy.finish()
    else:
        theta = lazy.theta()
    return total / weight, theta


def _copy_state(state):
    """The optimiser memory a rollback restores: Adam's moments. Not the heavy-ball velocity, which a
    rollback drops (below), so a copy of it would only hold one more weight-sized array."""
    return {
        k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
        for k, v in state.items()
        if k != "velocity"
    }


def sgd(
    objective,
    theta0,
    *,
    learning_rate,
    momentum,
    batch_size,
    max_iter,
    tol,
    n_iter_no_change,
    threshold=None,
    callback=None,
    rng,
    validation=None,
    state=None,
):
    """Mini-batch SGD epochs (a true multinomial step on each batch) with momentum or Adam.

    ``callback(epoch, loss)`` receives the mean mini-batch objective of each epoch (epochs count from
    1). Divergence: a mini-batch loss that is not finite or over ten times the best epoch loss so far
    (the loss at the start before any epoch), or an epoch loss over twice the best plus 0.1, undoes the
    work back to the start of the best epoch (coefficients and optimiser memory), halves the learning
    rate and carries on.
    """
    theta = np.array(theta0, dtype=objective.dtype, copy=True)
    state = {} if state is None else state
    lr = float(learning_rate)
    first = first_batch(rng, objective.n_samples, _resolve_batch_size(batch_size, objective.n_samples),
                        objective.sample_weight)  # fmt: skip
    with np.errstate(over="ignore", invalid="ignore"):
        f0 = objective.batch_loss_gradient(theta, first)[0]  # not the gradient: a weight-sized array
    best_loss = f0 if math.isfinite(f0) else math.inf
    best_snapshot = (theta, _copy_state(state))
    rules = _StopRules(tol, n_iter_no_change, threshold, validation, theta, "epochs")
    halvings, warned = 0, False
    converged, message, epoch = False, f"reached max_iter={max_iter}", 0
    while epoch < max_iter:
        explode = _explode_limit(best_loss if math.isfinite(best_loss) else 0.0, objective.n_classes)
        start = (theta, _copy_state(state))
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # detected in the epoch; we warn once
                loss, new_theta = sgd_epoch(
                    objective,
                    theta,
                    state,
                    learning_rate=lr,
                    momentum=momentum,
                    batch_size=batch_size,
                    rng=rng,
                    explode=explode,
                )
            if loss > 2.0 * best_loss + 0.1:  # the epoch as a whole got much worse: diverging
                raise _NonFinite
        except _NonFinite:
            halvings += 1
            lr *= 0.5
            if halvings > _MAX_HALVINGS:
                raise _diverged_error(learning_rate, lr) from None
            warned = _warn_halving(
                learning_rate,
                lr,
                warned,
                "the loss non-finite or explode (a batch over 10x, or an epoch over 2x, the best epoch's)",
            )
            theta = best_snapshot[0]
            state.clear()
            state.update(_copy_state(best_snapshot[1]))
            # The heavy-ball velocity is a sum of old-step-size moves: kept, it carries the divergence
            # past any halving. Restart it; Adam's moments are step-size free and stay.
            state.pop("velocity", None)
            rules.plateau.count = 0  # a new step size starts a fresh patience window
            continue
        theta = new_theta
        if loss < best_loss:
            # The epoch loss is measured along the epoch, from its starting model: keep that model.
            best_loss, best_snapshot = loss, start
        epoch += 1
        if callback is not None:
            callback(epoch, loss)
        stop = rules.check(loss, theta)
        if stop is not None:
            converged, message = True, stop
            break
    theta = rules.final_theta(theta)
    if converged and threshold is None and validation is None and loss > 1.5 * best_loss + tol:
        # The plateau rule fired on a loss that oscillates far above its best: the step is too large.
        converged = False
        message = (
            f"the epoch loss oscillates (last {loss:.4g}, best {best_loss:.4g}) instead of settling; "
            f"lower learning_rate (now {lr:.3g})"
        )
    return SolverResult(
        theta,
        epoch,
        converged,
        message,
        learning_rate=lr,
        state=state,
        **rules.curves(),
    )
