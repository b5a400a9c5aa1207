"""Cross-entropy forward + gradient: luce beside torch (CPU) and a NumPy/SciPy reference, in one run.

The issue's case: logits of shape 8192 × 32000, float32, class-index targets, label smoothing 0.1.
``luce.cross_entropy(..., return_grad=True)`` (one fused pass: the logits read once, the gradient
written once) against ``F.cross_entropy(x, y, label_smoothing=0.1).backward()`` (torch's threads as
configured) and ``scipy.special.log_softmax`` plus the gradient formula in NumPy. Each row gives the
median time, its ratio to ``np.copyto`` of the logits (the memory-traffic floor is about 1 copy), luce's
speed-up over it, and the largest gradient difference from torch.

The machine is shared, so timings are noisy. Run: python benchmarks/losses.py [--n 8192 --c 32000 --repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import log_softmax

from _common import copyto_time, timed


def numpy_reference(z, y, eps):
    n, c = z.shape
    lp = log_softmax(z, axis=1)
    loss = -((1 - eps) * lp[np.arange(n), y] + eps / c * lp.sum(axis=1)).mean()
    grad = np.exp(lp)
    grad -= eps / c
    grad[np.arange(n), y] -= 1 - eps
    grad /= n
    return np.float32(loss), grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--c", type=int, default=32000)
    parser.add_argument("--smoothing", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import luce

    rng = np.random.default_rng(0)
    z = rng.standard_normal((args.n, args.c), dtype=np.float32) * 3
    y = rng.integers(0, args.c, args.n)
    eps = args.smoothing
    luce.cross_entropy(z[:4], y[:4], label_smoothing=eps, return_grad=True)  # compile outside the timing

    copy_time = copyto_time(z, max(args.repeat, 5))

    def luce_run():
        return luce.cross_entropy(z, y, label_smoothing=eps, return_grad=True)

    try:
        import torch
    except ImportError:
        torch = None
    runs = {"luce": luce_run}
    if torch is not None:
        x = torch.from_numpy(z).requires_grad_(True)  # shares the logits' memory
        yt = torch.from_numpy(y)

        def torch_run():
            x.grad = None  # a fresh gradient buffer each time, as luce allocates one
            loss = torch.nn.functional.cross_entropy(x, yt, label_smoothing=eps)
            loss.backward()
            return loss.item(), x.grad

        torch_run()
        runs["torch"] = torch_run
    # Interleaved repeats, so that a change in the machine's load hits every implementation alike.
    times = {name: [] for name in runs}
    results = {}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            results[name] = None
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    t_luce = float(np.median(times["luce"]))
    loss_luce, grad_luce = results["luce"]
    rows = [("luce cross_entropy(return_grad=True)", t_luce, None)]
    if torch is not None:
        loss_torch, torch_grad = results.pop("torch")
        diff = float(np.abs(grad_luce - torch_grad.numpy()).max())
        name = f"torch F.cross_entropy + backward ({torch.get_num_threads()} threads)"
        rows.append((name, float(np.median(times["torch"])), diff))
        rows[0] = (rows[0][0], rows[0][1], abs(float(loss_luce) - loss_torch))
        del torch_grad, x
    t_np, (_, grad_np) = timed(lambda: numpy_reference(z, y, eps), 1)
    rows.append(("numpy/scipy log_softmax + gradient", t_np, float(np.abs(grad_luce - grad_np).max())))

    print(f"cross_entropy forward + gradient, {args.n} x {args.c} float32, label_smoothing={eps}")
    print(f"np.copyto of the logits: {copy_time * 1e3:.1f} ms (medians of {args.repeat} interleaved runs)")
    print(f"{'implementation':<58} {'time (ms)':>10} {'x copy':>8} {'luce speed-up':>14} {'max |diff|':>11}")
    for name, t, diff in rows:
        speed = t / t_luce
        diff_s = "" if diff is None else f"{diff:.1e}"
        print(f"{name:<58} {t * 1e3:>10.1f} {t / copy_time:>8.2f} {speed:>13.2f}x {diff_s:>11}")
    print("(max |diff| on torch's row: gradient luce vs torch; on luce's row: |loss luce - loss torch|)")


if __name__ == "__main__":
    main()
