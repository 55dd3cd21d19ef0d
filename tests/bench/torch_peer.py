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


def read_model_file(path):
    """A shrinkwrap model file (safetensors, architecture JSON in __metadata__) read with the
    standard library: returns (architecture dict, {tensor name: torch tensor})."""
    import array
    import struct
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    arch = json.loads(header["__metadata__"]["architecture"])
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError("%s: %s is %s, expected F32" % (path, name, e["dtype"]))
        begin, end = e["data_offsets"]
        values = array.array("f")
        values.frombytes(raw[8 + n + begin:8 + n + end])
        if sys.byteorder != "little":
            values.byteswap()
        tensors[name] = torch.tensor(values, dtype=torch.float32).reshape(e["shape"])
    return arch, tensors


class GraphModel(nn.Module):
    """The torch twin of any shrinkwrap graph: one module per node, run in the file's order.
    Add and Concat are the functional ops; Flatten keeps the batch dim, as ours does."""

    def __init__(self, arch, tensors):
        super().__init__()
        self.input_shape = tuple(arch["input_shape"])
        self.order = []
        self.layers = nn.ModuleDict()
        for node in arch["nodes"]:
            key = node["name"].replace(".", "__")
            self.order.append((key, node["type"], node["inputs"], node["name"]))
            m = self._layer(node)
            if m is not None:
                self.layers[key] = m
        state = {}
        for key, _, _, name in self.order:
            if key not in self.layers:
                continue
            for pname, _ in list(self.layers[key].state_dict().items()):
                full = name + "." + pname
                if full in tensors:
                    state["layers." + key + "." + pname] = tensors[full]
        missing = self.load_state_dict(state, strict=False).missing_keys
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing:
            raise ValueError("model file lacks " + ", ".join(missing))

    @staticmethod
    def _layer(node):
        t = node["type"]
        if t == "Conv2d":
            return nn.Conv2d(node["in_channels"], node["out_channels"], node["kernel_size"],
                             node["stride"], node["padding"], node["dilation"], node["groups"],
                             node["bias"])
        if t == "Linear":
            return nn.Linear(node["in_features"], node["out_features"], node["bias"])
        if t in ("BatchNorm2d", "BatchNorm1d"):
            cls = nn.BatchNorm2d if t == "BatchNorm2d" else nn.BatchNorm1d
            return cls(node["num_features"], node["eps"], node["momentum"])
        if t == "ReLU":
            return nn.ReLU()
        if t == "ReLU6":
            return nn.ReLU6()
        if t == "MaxPool2d":
            return nn.MaxPool2d(node["kernel_size"], node["stride"], node["padding"],
                                node["dilation"])
        if t == "AvgPool2d":
            return nn.AvgPool2d(node["kernel_size"], node["stride"], node["padding"])
        if t == "AdaptiveAvgPool2d":
            return nn.AdaptiveAvgPool2d(1)
        if t == "Flatten":
            return nn.Flatten()
        if t == "Dropout":
            return nn.Dropout(node["p"])
        if t == "Identity":
            return nn.Identity()
        if t in ("Add", "Concat"):
            return None
        raise ValueError("no torch twin for layer type " + t)

    def forward(self, x):
        values = {"input": x}
        y = x
        for key, t, inputs, name in self.order:
            args = [values[i] for i in inputs]
            if t == "Add":
                y = args[0]
                for a in args[1:]:
                    y = y + a
            elif t == "Concat":
                y = torch.cat(args, 1)
            else:
                y = self.layers[key](args[0])
            values[name] = y
        return y


def from_model_file(path):
    arch, tensors = read_model_file(path)
    return GraphModel(arch, tensors)


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
    ap.add_argument("--model-file", help="a shrinkwrap model file (e.g. a sped-up model) "
                    "instead of a zoo twin; built from its architecture JSON and weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--latency-batches", default="1,256")
    ap.add_argument("--repeats", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lat = [int(b) for b in a.latency_batches.split(",") if b]
    model, name = None, a.model
    if a.model_file:
        model, name = from_model_file(a.model_file), a.model_file
    print(json.dumps(bench(name, a.threads, a.batch_size, a.steps, a.warmup, lat, a.repeats,
                           model=model)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
