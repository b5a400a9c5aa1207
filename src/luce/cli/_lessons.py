"""The teaching sections of ``luce softmax``: the classic arguments, each with the numbers of the example.

Every number printed here comes from luce's public functions (softmax, logsumexp, sigmoid, hardmax,
cross_entropy); this module only arranges them into tables and sentences. The guide that walks through
them is docs/learn.md.
"""

from __future__ import annotations

import math

import numpy as np

from ..functional import hardmax, logsumexp, sigmoid, softmax
from ..losses import cross_entropy


def fmt(v: float) -> str:
    """Eight significant digits: enough to compare with a calculator, short enough to read."""
    return f"{v:.8g}"


def _signed(v: float) -> str:
    return f"{v:+.8g}"


def _table(title: str):
    from rich.table import Table

    return Table(title=title, title_justify="left")


def _columns(table, *names: str) -> None:
    for name in names:
        table.add_column(name, justify="right")


def _vector(values) -> str:
    return "(" + ", ".join(fmt(v) for v in np.asarray(values).tolist()) + ")"


# --------------------------------------------------------------------------------------------------
# --explain: plain share versus softmax, and a change of 1 in the largest score
# --------------------------------------------------------------------------------------------------


def proportion(out, x: np.ndarray, t: float) -> None:
    """Plain share x_i / Σx beside softmax (non-negative scores only), then the largest score + 1."""
    with np.errstate(over="ignore"):
        total = float(np.sum(x))
    shares = bool((x >= 0).all()) and 0 < total < math.inf
    if shares:
        _shares(out, x, t)
    elif x.size:
        out.print("(The plain share x / Σx needs non-negative scores with a finite, positive sum.)")
    if x.size >= 2 and np.isfinite(x).all():
        _largest_plus_one(out, x, t, shares)


def _softmax_name(t: float) -> str:
    return "softmax" if t == 1 else f"softmax (T = {t:g})"


def _shares(out, x: np.ndarray, t: float) -> None:
    p = softmax(x, temperature=t)
    share = x / x.sum()
    top = int(np.argmax(x))
    table = _table("Plain share versus softmax")
    _columns(table, "score", "plain share x / Σx", _softmax_name(t))
    for i in range(x.size):
        table.add_row(f"x_{i} = {fmt(x[i])}", fmt(share[i]), fmt(p[i]))
    out.print(table)
    if x.size <= 6:  # the formulas with the numbers, as on a blackboard
        terms = [fmt(v) for v in x.tolist()]
        scaled = terms if t == 1 else [f"{v}/{t:g}" for v in terms]
        exps = " + ".join(f"exp({v})" for v in scaled)
        out.print(f"share:   {terms[top]} / ({' + '.join(terms)}) = {fmt(share[top])}")
        out.print(f"softmax: exp({scaled[top]}) / ({exps}) = {fmt(p[top])}")
    verdict = "more than" if p[top] > share[top] else "less than" if p[top] < share[top] else "the same as"
    out.print(
        f"Here softmax gives the largest score x_{top} = {fmt(x[top])} {verdict} its plain share "
        f"({fmt(p[top])} against {fmt(share[top])})."
    )
    out.print("The plain share depends on the ratios of the scores (x and 2x give the same shares),")
    out.print("softmax on their differences (x and x + 100 give the same probabilities).")


def _largest_plus_one(out, x: np.ndarray, t: float, shares: bool) -> None:
    top = int(np.argmax(x))
    bumped = x.copy()
    bumped[top] += 1.0
    if bumped[top] == x[top]:
        out.print(f"(Adding 1 to x_{top} = {fmt(x[top])} is lost to rounding: the float has no room for it.)")
        return
    p = softmax(x, temperature=t)
    q = softmax(bumped, temperature=t)
    table = _table(f"Changing the largest score by 1: x_{top} = {fmt(x[top])} → {fmt(bumped[top])}")
    _columns(table, f"output {top}", "before", "after", "change")
    if shares:
        before, after = x[top] / x.sum(), bumped[top] / bumped.sum()
        table.add_row("plain share", fmt(before), fmt(after), _signed(after - before))
    table.add_row(_softmax_name(t), fmt(p[top]), fmt(q[top]), _signed(q[top] - p[top]))
    out.print(table)
    odds = math.exp(1.0 / t)
    out.print(
        f"Softmax multiplies the odds of output {top} against every other output by exp(1/T) = {fmt(odds)}."
    )
    if shares:
        out.print("The plain share only adds 1 to its numerator and to the sum.")


def soft_versus_hard(out, x: np.ndarray, t: float) -> None:
    """argmax, its one-hot hardmax, and softmax at a tenth of the temperature: the T → 0 limit."""
    if x.size < 2 or not np.isfinite(x).all():
        return
    cold = t / 10
    tops = ", ".join(f"x_{i}" for i in np.flatnonzero(x == x.max()))
    largest = f"the largest score is {tops}" if "," not in tops else f"the largest scores are {tops}"
    out.print(f"Soft max versus max: {largest}, and hardmax(x) = {_vector(hardmax(x))} (ties share);")
    out.print(f"softmax at T = {cold:g} is {_vector(softmax(x, temperature=cold))}. As T → 0 softmax tends")
    out.print("to hardmax, but it keeps how sure it is and has a gradient everywhere (luce plot hardmax).")


# --------------------------------------------------------------------------------------------------
# --boltzmann: energies, kT and the partition function
# --------------------------------------------------------------------------------------------------


def boltzmann(out, energies: np.ndarray, kt: float) -> None:
    """P(s) = exp(−E(s)/kT) / Z with Z the partition function: softmax(−E / kT)."""
    x = -energies
    p = softmax(x, temperature=kt)
    log_z = float(logsumexp(x / kt))
    with np.errstate(all="ignore"):
        weights = np.exp(x / kt)
    table = _table(f"Boltzmann distribution, kT = {kt:g}: P(s) = exp(−E(s)/kT) / Z")
    _columns(table, "state s", "energy E", "−E/kT", "exp(−E/kT)", "P = exp(−E/kT) / Z")
    for i in range(x.size):
        table.add_row(str(i), fmt(energies[i]), fmt(x[i] / kt + 0.0), fmt(weights[i]), fmt(p[i]))
    out.print(table)
    z = fmt(math.exp(log_z)) if log_z < 709 else f"exp({fmt(log_z)}), too large for a float,"
    out.print(f"Z = Σ exp(−E/kT) = {z} is the partition function (log Z = {fmt(log_z)}).")
    ground = int(np.argmin(energies))
    out.print(f"Lower energy is more probable: the ground state s = {ground} has P = {fmt(p[ground])}.")
    out.print(f"As kT → 0 it takes all the probability: hardmax(−E) = {_vector(hardmax(x))}.")
    out.print("Softmax is the case E = −score, kT = 1: softmax(x) = exp(x) / Σ exp(x).")


# --------------------------------------------------------------------------------------------------
# --target K: cross-entropy and its gradient
# --------------------------------------------------------------------------------------------------


def cross_entropy_lesson(out, x: np.ndarray, t: float, target: int) -> None:
    """The loss −log p_K and its gradient p − onehot(K) (divided by T), from luce.cross_entropy."""
    p = softmax(x, temperature=t)
    loss, grad = cross_entropy(x[None, :], [target], temperature=t, return_grad=True)
    grad = grad[0]
    onehot = np.zeros_like(p)
    onehot[target] = 1.0
    gradient = f"p − onehot({target})" if t == 1 else f"(p − onehot({target})) / T"
    table = _table(f"Cross-entropy for the target class K = {target}")
    _columns(table, "i", "x", "p", "onehot(K)", f"∂loss/∂x_i = {gradient}")
    for i in range(x.size):
        table.add_row(str(i), fmt(x[i]), fmt(p[i]), fmt(onehot[i]), fmt(grad[i]))
    out.print(table)
    out.print(f"loss = −log p_{target} = −log({fmt(p[target])}) = {fmt(float(loss))}")
    out.print(f"The gradient is {gradient}. Gradient descent moves against it: the target's score goes up")
    out.print(
        f"(its gradient {fmt(grad[target])} < 0), every other score down by its probability; the sum is 0."
    )
    out.print("The exponential of softmax and the log of the loss cancel, which leaves this simple gradient:")
    out.print("the reason softmax and cross-entropy are used together (Bridle 1990).")


# --------------------------------------------------------------------------------------------------
# --two-class: softmax(z, 0) = sigmoid(z); multi-label uses independent sigmoids
# --------------------------------------------------------------------------------------------------


def two_class(out, x: np.ndarray, t: float) -> None:
    """For each score z: softmax([z, 0]) beside sigmoid(z) (both at temperature T)."""
    pairs = np.stack([x, np.zeros_like(x)], axis=-1)
    first = softmax(pairs, temperature=t)[:, 0]
    sig = sigmoid(x / t)
    z = "z" if t == 1 else "z / T"
    table = _table("Two classes: softmax of (z, 0) is the sigmoid of z")
    _columns(table, "z", f"softmax(({z}, 0))₀", f"sigmoid({z}) = 1 / (1 + exp(−{z}))", "difference")
    for i in range(x.size):
        table.add_row(fmt(x[i]), fmt(first[i]), fmt(sig[i]), fmt(first[i] - sig[i]))
    out.print(table)
    out.print("exp(z) / (exp(z) + exp(0)) = 1 / (1 + exp(−z)): a binary classifier needs one score, not two.")
    if x.size >= 2:
        p = softmax(x, temperature=t)
        out.print("Multi-label (several classes can be true at once) uses one sigmoid per class instead:")
        out.print(f"sigmoid({z}) = {_vector(sig)} sums to {fmt(math.fsum(sig.tolist()))};")
        out.print(f"softmax = {_vector(p)} sums to 1 (exactly one class is true).")


# --------------------------------------------------------------------------------------------------
# --iia: Luce's choice axiom
# --------------------------------------------------------------------------------------------------


def iia(out, x: np.ndarray, t: float, remove: int) -> None:
    """Remove one option: the probability ratio of any two others does not change."""
    keep = [i for i in range(x.size) if i != remove]
    full = softmax(x, temperature=t)
    fewer = softmax(x[keep], temperature=t)
    table = _table(f"Luce's choice axiom: option {remove} removed")
    _columns(table, "option", "x", f"p, all {x.size} options", f"p, without option {remove}")
    for j, i in enumerate(keep):
        table.add_row(str(i), fmt(x[i]), fmt(full[i]), fmt(fewer[j]))
    table.add_row(str(remove), fmt(x[remove]), fmt(full[remove]), "—")
    out.print(table)
    a = keep[0]
    ratios = _table(f"The ratio of each option to option {a}")
    _columns(ratios, "ratio", "all options", f"without option {remove}", "relative difference")
    for j, b in enumerate(keep[1:], start=1):
        before, after = full[b] / full[a], fewer[j] / fewer[0]
        ratios.add_row(f"p_{b} / p_{a}", f"{before:.17g}", f"{after:.17g}", f"{abs(after / before - 1):.2g}")
    out.print(ratios)
    out.print("The probabilities change, their ratios do not (up to rounding: a few times 1e-16):")
    out.print("p_b / p_a = exp((x_b − x_a) / T), whatever the other options are. This independence of")
    out.print("irrelevant alternatives is Luce's choice axiom (1959); softmax is the choice rule it gives.")
