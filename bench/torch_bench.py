#!/usr/bin/python3
"""PyTorch yardstick for `npm run bench`: the same CIFAR-style ResNets as longtail's
(3x3 stem to 16, three stages of basic blocks 16/32/64, 1x1 projection shortcuts with batch norm,
global average pooling, linear head), the same step (forward, cross-entropy, backward, SGD with
momentum 0.9 and weight decay 5e-4), on random data. Prints one JSON line per case.

  /usr/bin/python3 bench/torch_bench.py --model resnet8 --shape 1,28,28 --threads 2 --repeats 5 [--part train|infer]

Every JSON line has `runtime`: the thread pools threadpoolctl finds after limiting them to
--threads (the BLAS's kernel `architecture` and threads), the OpenBLAS variables this process saw,
and whether convolutions go through oneDNN (`mkldnnConv`). `npm run bench` starts it with the
environment of bench/torch-env.ts (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, thread counts set).

With --stage2 FILE.npz (a feature file as docs/formats.md: train/val/test features and labels, the
joint classifier), stage 2 on those cached features with longtail's settings
(src/classifiers/crt.ts CRT_DEFAULTS, lws.ts, tau-norm.ts, ncm.ts): cRT is a fresh nn.Linear trained
with class-aware sampling (4 images per class in a row; floor(N / 128) steps an epoch), batch 128,
SGD lr 0.1 momentum 0.9 weight decay 5e-4, cosine LR per epoch, 10 epochs; LWS trains per-class
scales of the frozen joint layer (logits (x W^T + b) * s) the same way for 5 epochs; tau-norm
sweeps tau over 0, 0.1, ..., 2.0 on val and test (one product per split, rescale, argmax,
accuracy per split); NCM builds class means of centred, L2-normalised training features, scores
the test set by -||x - c|| and takes its top-1. Times: reading the file (np.load of every array),
and each method (the classifier built; NCM also the test set's scores and top-1, as the longtail
case: bench/run.ts ncmTestTop1).

  /usr/bin/python3 bench/torch_bench.py --stage2 F.npz --methods crt,lws,tau-norm,ncm --threads 2

The BLAS it runs on is part of `impl` (see blas_library).
"""
import argparse
import json
import math
import os
import resource
import statistics
import time

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


def cifar_resnet(depth, channels, classes):
    n = (depth - 2) // 6
    layers = [nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, cout in enumerate([16, 32, 64]):
        for i in range(n):
            layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def class_aware_epoch(by_class, steps, batch, per_class, rng):
    """Class-aware sampling as longtail's (src/sampling/samplers.ts classAware): a shuffled cycle of
    the classes; from each, `per_class` consecutive images of its own shuffled cycle."""
    total = steps * batch
    out = np.empty(total, np.int64)
    classes = np.arange(len(by_class))
    corder, ci = rng.permutation(classes), 0
    orders = [None] * len(by_class)
    pos = [0] * len(by_class)
    k = 0
    while k < total:
        if ci >= len(corder):
            corder, ci = rng.permutation(classes), 0
        c = corder[ci]
        ci += 1
        if orders[c] is None:
            orders[c] = rng.permutation(by_class[c])
        for _ in range(per_class):
            if k >= total:
                break
            if pos[c] >= len(orders[c]):
                orders[c], pos[c] = rng.permutation(orders[c]), 0
            out[k] = orders[c][pos[c]]
            pos[c] += 1
            k += 1
    return out


def train_head(kind, data, epochs, lr=0.1, batch=128, wd=5e-4, momentum=0.9, per_class=4, seed=0):
    """cRT (kind 'linear') or LWS (kind 'scaled'), longtail's schedule; returns the mean losses."""
    torch.manual_seed(seed)
    x_all, y_all = data['train_features'], data['train_labels']
    n, d = x_all.shape
    C = data['classifier_weight'].shape[0]
    if kind == 'linear':
        lin = nn.Linear(d, C)
        params = list(lin.parameters())
        forward = lin
    else:
        w, b = data['classifier_weight'], data['classifier_bias']
        scales = nn.Parameter(torch.ones(C))
        params = [scales]
        forward = lambda x: F.linear(x, w, b) * scales  # noqa: E731
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    labels = y_all.numpy()
    by_class = [np.flatnonzero(labels == c) for c in range(C)]
    steps = n // batch
    rng = np.random.default_rng(seed)
    losses = []
    for e in range(epochs):
        for g in opt.param_groups:
            g['lr'] = 0.5 * lr * (1 + math.cos(math.pi * e / epochs))
        order = torch.from_numpy(class_aware_epoch(by_class, steps, batch, per_class, rng))
        total = 0.0
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            loss = F.cross_entropy(forward(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / steps)
    return losses


def split_accuracy(pred, labels, C):
    hit = torch.bincount(labels[pred == labels], minlength=C)
    support = torch.bincount(labels, minlength=C)
    per_class = hit.double() / support.clamp(min=1).double()
    return (pred == labels).double().mean().item(), per_class


@torch.no_grad()
def tau_sweep(data):
    w = data['classifier_weight']
    C = w.shape[0]
    norms = w.norm(dim=1).clamp(min=1e-12)
    out = {}
    for split in ('val', 'test'):
        z = data[f'{split}_features'] @ w.T  # [n, C]
        out[split] = [split_accuracy((z * norms.pow(-tau)).argmax(1), data[f'{split}_labels'], C)[0]
                      for tau in [i / 10 for i in range(21)]]
    return out


@torch.no_grad()
def ncm(data):
    x = data['train_features']
    y = data['train_labels']
    C = data['classifier_weight'].shape[0]
    mean = x.mean(0)
    centroids = torch.zeros(C, x.shape[1])
    for s in range(0, x.shape[0], 8192):  # centred, normalised a block at a time, as longtail
        f = x[s:s + 8192] - mean
        centroids.index_add_(0, y[s:s + 8192], f / f.norm(dim=1, keepdim=True).clamp(min=1e-12))
    centroids /= torch.bincount(y, minlength=C).clamp(min=1)[:, None]
    t = data['test_features'] - mean
    t = t / t.norm(dim=1, keepdim=True).clamp(min=1e-12)
    # longtail's NCM score: -||x - c|| (src/classifiers/ncm.ts), the same work as longtail does.
    dist = (t.pow(2).sum(1, keepdim=True) - 2 * t @ centroids.T + centroids.pow(2).sum(1)).clamp(min=0).sqrt()
    return split_accuracy((-dist).argmax(1), data['test_labels'], C)[0]


def blas_library():
    """The BLAS this process loaded: Debian's python3-torch calls the system libblas.so.3, which is
    the slow reference BLAS unless OpenBLAS is installed (libopenblas0-pthread) or put first on
    LD_LIBRARY_PATH; stage 2 is mostly matrix products, so the yardstick names it."""
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1].rsplit('/', 1)[-1] for line in f if 'blas' in line.split()[-1]}
        return ', '.join(sorted(libs)) or 'unknown'
    except OSError:
        return 'unknown'


def runtime_info(threads):
    """What runs: each thread pool threadpoolctl finds (OpenMP, the BLAS: its kernel
    `architecture` and thread count) after limiting them to `threads`, the OpenBLAS variables
    this process saw, and whether a 3x3 convolution goes through oneDNN (mkldnn): read from the
    profiler's op names, since torch.backends.mkldnn.enabled alone does not say a conv uses it."""
    info = {'threads': threads, 'torchThreads': torch.get_num_threads(),
            'openblasEnv': {k: os.environ.get(k) for k in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')}}
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(threads)
        info['pools'] = [{'api': p['internal_api'], 'lib': os.path.basename(p['filepath']),
                          'architecture': p.get('architecture'), 'threads': p['num_threads']}
                         for p in threadpoolctl.threadpool_info()]
    except ImportError:
        info['pools'] = None  # Debian: apt-get install python3-threadpoolctl
    conv = nn.Conv2d(16, 16, 3, 1, 1, bias=False)
    with torch.autograd.profiler.profile() as prof:
        conv(torch.rand(8, 16, 16, 16)).sum().backward()
    names = {e.name for e in prof.function_events}
    info['mkldnnConv'] = any('mkldnn' in n for n in names)
    info['convOps'] = sorted(n for n in names if 'conv' in n)
    return info


def stage2(a):
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    z = np.load(a.stage2)
    data = {k: torch.from_numpy(np.ascontiguousarray(z[k])) for k in z.files}
    for k in list(data):
        if k.endswith('_labels'):
            data[k] = data[k].long()
    read = time.perf_counter() - t
    out = {'impl': f'pytorch {torch.__version__} ({blas_library()})', 'threads': a.threads, 'read': read, 'methods': {},
           'runtime': runtime_info(a.threads)}
    for m in a.methods.split(','):
        fn = {'crt': lambda: train_head('linear', data, a.crt_epochs),
              'lws': lambda: train_head('scaled', data, a.lws_epochs),
              'tau-norm': lambda: tau_sweep(data),
              'ncm': lambda: ncm(data)}[m]
        runs = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        out['methods'][m] = {'median': statistics.median(runs), 'min': min(runs), 'max': max(runs), 'runs': runs}
    out['peakRssMiB'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def long_tail_counts(n_train, C):
    """Images per class shaped like ImageNet-LT's (Liu et al. 2019, a Pareto-shaped subset of
    ImageNet): 1280 down to 5, with the published split sizes (385 classes over 100 images, 479
    with 20-100, 136 under 20, at 1000 classes): a power-law head down to 100 at rank 38.5 %,
    then geometric to 20 at rank 86.4 % and to 5 at the last, the head's bend chosen so the
    classes total n_train (counts[0] takes the rounding). Where this shape cannot total n_train
    (iNaturalist's 441,588 rows over 8,142 classes, a small test file) the profile is exponential
    from min(1280, n_train // 4) down to 2, as before."""
    r = np.arange(C)
    last = max(1, C - 1)
    r1, r2 = 0.385 * last, 0.864 * last

    def profile(s):
        head = 1280 * (1 + r / s) ** (-np.log(12.8) / np.log(1 + r1 / s))
        mid = 100 * 0.2 ** ((r - r1) / (r2 - r1))
        tail = 20 * 0.25 ** ((r - r2) / (last - r2))
        return np.floor(np.where(r <= r1, head, np.where(r <= r2, mid, tail)))

    lo, hi = 1e-3, 1e9
    if C >= 100 and profile(lo).sum() <= n_train <= profile(hi).sum():
        for _ in range(300):
            s = (lo * hi) ** 0.5
            lo, hi = (lo, s) if profile(s).sum() > n_train else (s, hi)
        counts = profile(lo).astype(np.int64)
    else:
        top = min(1280, n_train // 4)
        lo, hi = 1.0, 1e15
        for _ in range(300):
            q = (lo * hi) ** 0.5
            s = np.maximum(2, np.floor(top * q ** (-r / last))).sum()
            lo, hi = (q, hi) if s > n_train else (lo, q)
        counts = np.maximum(2, np.floor(top * hi ** (-r / last))).astype(np.int64)
    counts[0] += n_train - counts.sum()
    return counts


def write_features(a):
    """Synthetic long-tailed features written with np.savez, as a user's export would be: class
    means plus Gaussian noise, ImageNet-LT's class-size profile (long_tail_counts), --val / --test
    images per class, and a joint classifier biased towards the head."""
    n_train, C, d = a.rows, a.classes, a.dim
    rng = np.random.default_rng(0)
    counts = long_tail_counts(n_train, C)
    means = rng.standard_normal((C, d), dtype=np.float32)

    def draw(per):
        labels = np.repeat(np.arange(C, dtype=np.int64), per)
        rng.shuffle(labels)
        f = np.empty((labels.size, d), np.float32)
        for s in range(0, labels.size, 20000):
            lab = labels[s:s + 20000]
            f[s:s + 20000] = means[lab] + 2.0 * rng.standard_normal((lab.size, d), dtype=np.float32)
        return f, labels

    out = {}
    out['train_features'], out['train_labels'] = draw(counts)
    out['val_features'], out['val_labels'] = draw(np.full(C, a.val))
    out['test_features'], out['test_labels'] = draw(np.full(C, a.test))
    out['classifier_weight'] = (means * (np.log(counts + 1.0)[:, None] / 10) / np.sqrt(d)).astype(np.float32)
    out['classifier_bias'] = np.zeros(C, np.float32)
    np.savez(a.write_features, **out)
    print(json.dumps({'file': a.write_features, 'trainRows': int(counts.sum()), 'classes': C, 'dim': d}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--write-features', default=None, help='write synthetic features to this .npz and stop')
    p.add_argument('--rows', type=int, default=113158)
    p.add_argument('--classes', type=int, default=1000)
    p.add_argument('--dim', type=int, default=2048)
    p.add_argument('--val', type=int, default=20)
    p.add_argument('--test', type=int, default=50)
    p.add_argument('--stage2', default=None, help='a feature file (.npz): time stage 2 on it')
    p.add_argument('--methods', default='crt,lws,tau-norm,ncm')
    p.add_argument('--crt-epochs', type=int, default=10)
    p.add_argument('--lws-epochs', type=int, default=5)
    p.add_argument('--model', default='resnet8')
    p.add_argument('--shape', default='1,28,28')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3, help='untimed steps first (the train case: as many as longtail\'s)')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--part', default='both', choices=['both', 'train', 'infer'], help='time training steps, inference, or both')
    a = p.parse_args()
    if a.write_features:
        return write_features(a)
    if a.stage2:
        return stage2(a)
    torch.set_num_threads(a.threads)
    runtime = runtime_info(a.threads)
    torch.manual_seed(0)
    c, h, w = map(int, a.shape.split(','))
    net = cifar_resnet(int(a.model.replace('resnet', '')), c, 10)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(a.batch, c, h, w)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def rate(fn):
        for _ in range(a.warmup):
            fn()
        runs = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            for _ in range(a.steps):
                fn()
            runs.append(a.steps * a.batch / (time.perf_counter() - t))
        return runs

    summary = lambda r: {'median': statistics.median(r), 'min': min(r), 'max': max(r), 'runs': r}  # noqa: E731
    out = {'impl': f'pytorch {torch.__version__} ({blas_library()})', 'model': a.model, 'shape': [c, h, w],
           'threads': a.threads, 'runtime': runtime}
    if a.part in ('both', 'train'):
        net.train()
        out['train'] = summary(rate(step))
    if a.part in ('both', 'infer'):
        net.eval()
        with torch.no_grad():
            out['infer'] = summary(rate(lambda: net(x)))
    print(json.dumps(out))


if __name__ == '__main__':
    main()
