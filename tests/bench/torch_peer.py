"""PyTorch twin of `shrinkwrap bench`: the same architectures, batch, optimizer and thread count.

Run by tests/bench/bench_vs_torch.sh with Debian's python3-torch on OpenBLAS-openmp and
torch.set_num_threads(THREADS). Prints one JSON object per model, in the same fields as
`shrinkwrap bench --json`.
"""
import json
import resource
import sys
import time

import torch
from torch import nn


def fmnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, 10))


def fmnist_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return self.relu(y + s)


class FmnistResNet(nn.Module):
    def __init__(self, widths=(32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


MODELS = {"fmnist_cnn": fmnist_cnn, "fmnist_mlp": fmnist_mlp, "fmnist_resnet": FmnistResNet}


def bench(name, threads, batch, steps, warmup, latency_batches, repeats, model=None):
    torch.manual_seed(0)
    model = model if model is not None else MODELS[name]()
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    result = {"model": name, "threads": threads, "batch": batch,
              "params": sum(p.numel() for p in model.parameters())}
    if steps > 0:
        for s in range(warmup + steps):
            if s == warmup:
                t0 = time.perf_counter()
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        result["train_images_per_sec"] = steps * batch / (time.perf_counter() - t0)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    model.eval()
    lat = {}
    with torch.no_grad():
        for b in latency_batches:
            xb = torch.randn(b, 1, 28, 28)
            for _ in range(3):
                model(xb)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(xb)
                times.append(time.perf_counter() - t0)
            times.sort()
            lat[str(b)] = times[len(times) // 2] * 1e3
    result["latency_ms"] = lat
    return result


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fmnist_cnn", choices=sorted(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--latency-batches", default="1,256")
    ap.add_argument("--repeats", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lat = [int(b) for b in a.latency_batches.split(",") if b]
    print(json.dumps(bench(a.model, a.threads, a.batch_size, a.steps, a.warmup, lat, a.repeats)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
