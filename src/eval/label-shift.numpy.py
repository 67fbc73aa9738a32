# Independent NumPy reference for src/eval/calibration.ts and label-shift.ts (run by
# label-shift.test.ts and report/live/math.test.ts with /usr/bin/python3). Reads a JSON case on
# stdin, prints JSON. Optional keys: "bias" (BCTS biases added after z / T), "weights" (one per
# target row: a weighted target set), "fitTemperature": false (skip the temperature search).
import json
import sys

import numpy as np

case = json.load(sys.stdin)
n, C = case["n"], case["C"]
z = np.array(case["logits"], dtype=np.float32).astype(np.float64).reshape(n, C)
y = np.array(case["labels"], dtype=np.int64)
out = {}


def nll(T):
    s = z / T
    m = s.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(s - m).sum(axis=1))
    return float(np.mean(lse - s[np.arange(n), y]))


# Temperature: a dense grid on log T, then two finer grids around the best point.
if case.get("fitTemperature", True):
    lo, hi = np.log(1e-3), np.log(1e3)
    for _ in range(3):
        grid = np.linspace(lo, hi, 4001)
        vals = np.array([nll(np.exp(g)) for g in grid])
        k = int(vals.argmin())
        step = grid[1] - grid[0]
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    out["temperature"] = float(np.exp(grid[k]))
    out["nll1"] = nll(1.0)

T = case["T"]
src = np.array(case["source"], dtype=np.float64)
zt = np.array(case["target"], dtype=np.float32).astype(np.float64).reshape(-1, C)
bias = np.array(case.get("bias") or np.zeros(C), dtype=np.float64)
rw = np.array(case.get("weights") or np.ones(len(zt)), dtype=np.float64)
st = zt / T + bias
p = np.exp(st - st.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)

# EM (Saerens et al. 2002), vectorised.
q = src.copy()
for it in range(10000):
    w = p * (q / src)
    w /= w.sum(axis=1, keepdims=True)
    nq = (w * rw[:, None]).sum(axis=0) / rw.sum()
    nq /= nq.sum()
    done = np.abs(nq - q).max() < 1e-12
    q = nq
    if done:
        break
out["em"] = q.tolist()
out["emPred"] = (st + np.log(q) - np.log(src)).argmax(axis=1).tolist()

# BBSE with a ridge towards w = 1.
vp = np.array(case["valPred"]); vl = np.array(case["valLabels"]); tp = st.argmax(axis=1)
Cm = np.zeros((C, C))
np.add.at(Cm, (vp, vl), 1.0 / len(vl))
mu = np.bincount(tp, weights=rw, minlength=C) / rw.sum()
pv = np.bincount(vl, minlength=C) / len(vl)
A = Cm.T @ Cm
lam = np.trace(A) / len(vl)
d = np.linalg.solve(A + lam * np.eye(C), Cm.T @ (mu - Cm.sum(axis=1)))
qb = np.clip(1 + d, 0, None) * pv
qb /= qb.sum()
out["bbse"] = qb.tolist()
with np.errstate(divide="ignore"):
    out["bbsePred"] = (st + np.log(qb) - np.log(pv)).argmax(axis=1).tolist()
print(json.dumps(out))
