#!/usr/bin/python3
"""PyTorch yardstick for `npm run bench`: the same CIFAR-style ResNets as longtail's
(3x3 stem to 16, three stages of basic blocks 16/32/64, 1x1 projection shortcuts with batch norm,
global average pooling, linear head), the same step (forward, cross-entropy, backward, SGD with
momentum 0.9 and weight decay 5e-4), on random data. Prints one JSON line per case.

  /usr/bin/python3 bench/torch_bench.py --model resnet8 --shape 1,28,28 --threads 2 --repeats 5
"""
import argparse
import json
import statistics
import time

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


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', default='resnet8')
    p.add_argument('--shape', default='1,28,28')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--repeats', type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
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
        for _ in range(3):
            fn()
        runs = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            for _ in range(a.steps):
                fn()
            runs.append(a.steps * a.batch / (time.perf_counter() - t))
        return runs

    net.train()
    train = rate(step)
    net.eval()
    with torch.no_grad():
        infer = rate(lambda: net(x))
    print(json.dumps({'impl': 'pytorch ' + torch.__version__, 'model': a.model, 'shape': [c, h, w], 'threads': a.threads,
                      'train': {'median': statistics.median(train), 'min': min(train), 'max': max(train)},
                      'infer': {'median': statistics.median(infer), 'min': min(infer), 'max': max(infer)}}))


if __name__ == '__main__':
    main()
