# Independent NumPy reference for fitBcts (src/eval/calibration.ts), run by bcts.test.ts with
# /usr/bin/python3: damped Newton on (a = 1/T, b) with the full Hessian, from a = 1, b = 0 (not
# from temperature scaling, and not L-BFGS). The Hessian is singular along "b + constant"; the
# pseudo-inverse step has no component there, so sum(b) stays 0. Reads a JSON case on stdin.
import json
import sys

import numpy as np

case = json.load(sys.stdin)
n, C = case["n"], case["C"]
z = np.array(case["logits"], dtype=np.float32).astype(np.float64).reshape(n, C)
y = np.array(case["labels"], dtype=np.int64)
Y = np.eye(C)[y]


def parts(x):
    a, b = x[0], x[1:]
    u = a * z + b
    m = u.max(axis=1, keepdims=True)
    e = np.exp(u - m)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    f = float(np.mean(m[:, 0] + np.log(s[:, 0]) - u[np.arange(n), y]))
    ez = (p * z).sum(axis=1)
    g = np.concatenate([[np.mean(ez - z[np.arange(n), y])], (p - Y).mean(axis=0)])
    return f, g, p, ez


def hessian(p, ez):
    # Covariance under p_i of the feature vector v_c = (z_ic, e_c), averaged over rows.
    H = np.zeros((C + 1, C + 1))
    H[0, 0] = np.mean((p * z * z).sum(axis=1) - ez**2)
    cross = (p * z - p * ez[:, None]).mean(axis=0)
    H[0, 1:] = cross
    H[1:, 0] = cross
    H[1:, 1:] = np.diag(p.mean(axis=0)) - (p.T @ p) / n
    return H


x = np.zeros(C + 1)
x[0] = 1.0
f, g, p, ez = parts(x)
f1 = f
for it in range(200):
    if np.abs(g).max() < 1e-13:
        break
    step = -np.linalg.pinv(hessian(p, ez), rcond=1e-12) @ g
    t = 1.0
    while x[0] + t * step[0] <= 0:
        t /= 2
    while True:
        fn, gn, pn, ezn = parts(x + t * step)
        if fn <= f + 1e-4 * t * (g @ step) or t < 1e-12:
            break
        t /= 2
    x, f, g, p, ez = x + t * step, fn, gn, pn, ezn

print(json.dumps({"temperature": 1 / x[0], "bias": (x[1:] - x[1:].mean()).tolist(), "nll": f, "nll1": f1,
                  "grad": float(np.abs(g).max())}))
