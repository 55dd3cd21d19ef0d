#!/usr/bin/env python3
"""check_layout.py - checks safetensors files against the published format, independently.

Usage: check_layout.py expected.json FILE...

Only the Python standard library is used (json + struct), so this is a second reader that
shares no code with shrinkwrap's. For every file it checks the layout the safetensors README
specifies: u64 little-endian header length N; N bytes of UTF-8 JSON starting with '{' and
padded with spaces (shrinkwrap, like the reference writer, pads N to a multiple of 8); unique
keys; __metadata__ a string-to-string map; each entry's dtype, shape and data_offsets
consistent; the entries tiling the data section with no gap or overlap. Model files also need
the shrinkwrap metadata and tensor names "<node>.<param>" of nodes in the architecture.
Finally the leading F32 values of every tensor are located through the header and compared,
bit for bit, with what the writer recorded in expected.json.
"""
import json
import math
import struct
import sys

DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
               "I8": 1, "U8": 1, "BOOL": 1}


def fail(path, message):
    raise SystemExit(f"{path}: {message}")


def unique_pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate key in {keys}")
    return dict(pairs)


def check_file(path, expected):
    data = open(path, "rb").read()
    if len(data) < 8:
        fail(path, "shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n % 8 != 0:
        fail(path, f"header length {n} is not a multiple of 8")
    if 8 + n > len(data):
        fail(path, "header runs past the end")
    raw = data[8:8 + n]
    if raw[:1] != b"{":
        fail(path, "header does not start with '{'")
    text = raw.decode("utf-8")
    body = text.rstrip(" ")
    if len(text) - len(body) >= 8 or not body.endswith("}"):
        fail(path, "padding is not at most 7 spaces after the JSON object")
    header = json.loads(body, object_pairs_hook=unique_pairs)
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail(path, "__metadata__ is not a string-to-string map")
    data_section = data[8 + n:]
    ranges = []
    for name, entry in header.items():
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_SIZES:
            fail(path, f"{name}: unknown dtype {dtype}")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            fail(path, f"{name}: bad shape {shape}")
        begin, end = offsets
        if end - begin != math.prod(shape) * DTYPE_SIZES[dtype]:
            fail(path, f"{name}: offsets {offsets} do not match {shape} x {dtype}")
        ranges.append((begin, end, name))
    # The writer lays the tensors out in header order, so the ranges are already sorted.
    covered = 0
    for begin, end, name in ranges:
        if begin != covered:
            fail(path, f"{name}: starts at {begin}, expected {covered}")
        covered = end
    if covered != len(data_section):
        fail(path, f"tensors cover {covered} of {len(data_section)} data bytes")

    if meta.get("format") == "shrinkwrap-model":
        if meta.get("format_version") != "1" or "arch" not in meta:
            fail(path, "model metadata incomplete")
        arch = json.loads(meta["architecture"])
        nodes = {node["name"] for node in arch["nodes"]}
        for name in header:
            node, _, param = name.rpartition(".")
            if node not in nodes or param not in ("weight", "bias", "running_mean",
                                                  "running_var"):
                fail(path, f"tensor {name} is not <node>.<param> of the architecture")
            if header[name]["dtype"] != "F32":
                fail(path, f"model tensor {name} is not F32")

    for name, values in expected.items():
        begin = header[name]["data_offsets"][0]
        for k, want in enumerate(values):
            (got,) = struct.unpack_from("<I", data_section, begin + 4 * k)
            if got != want:
                (as_float,) = struct.unpack("<f", struct.pack("<I", got))
                fail(path, f"{name}[{k}] holds bits {got:#010x} ({as_float!r}), the writer "
                     f"wrote {want:#010x}")
    return len(header)


def main():
    expected = json.load(open(sys.argv[1]))
    files = sys.argv[2:]
    if not files:
        raise SystemExit("no files to check")
    for path in files:
        key = path.rsplit("/", 1)[-1]
        if key not in expected:
            fail(path, "no expected values recorded")
        count = check_file(path, expected[key])
        print(f"{key}: layout ok, {count} tensors, values match bit for bit")


if __name__ == "__main__":
    main()
