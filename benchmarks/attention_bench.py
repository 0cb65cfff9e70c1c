"""Time and peak memory of the 1-, 2- and 3-pass einsum cascades against
``torch.nn.functional.scaled_dot_product_attention`` (SDPA), on one graph of N nodes.

    python benchmarks/attention_bench.py            # N = 256 ... 8192 (a few minutes)
    python benchmarks/attention_bench.py --quick    # N = 256 ... 2048

What is measured, all in this one run, on the CPU:

* time: the best of ``--repeats`` runs (fewer once a configuration has taken ``--budget``
  seconds; the memory run below warms up), the methods interleaved run by run, forward
  under ``torch.no_grad()`` and forward + backward (gradients of q, k and v); wall-clock, or with ``--clock cpu`` the CPU seconds of
  this process (``time.process_time``: with ``--threads 1`` the time it computed, not the
  time it waited for a core on a shared machine);
* peak memory: the high-water mark of the bytes that PyTorch's CPU allocator holds during
  the call, above what it held before (inputs excluded; outputs, saved tensors and
  gradients included), read from the allocation and free events that
  ``torch.profiler`` records with ``profile_memory=True``.

The cascades take q, k, v as [N, H, D] (PyG node order, one graph: ``batch=None``); SDPA gets
its preferred contiguous [1, H, N, D] layout (4-D: its fused CPU kernel). ``1-pass-torch`` is
the 1-pass cascade with the PyTorch references of its row stages
(``plstm_graph/ops/attention/rows.py``) in place of the compiled ones, forward and backward.
"""
import argparse
import contextlib
import gc
import os
import time

import torch
from torch.nn.functional import scaled_dot_product_attention

from plstm_graph.ops.attention import einsum_attention, rows
from memory import peak_bytes  # benchmarks/memory.py (the script's folder is on sys.path)

METHODS = ("SDPA", "1-pass", "1-pass-torch", "2-pass", "3-pass")


def best_times(calls: dict, repeats: int, budget: float, clock=time.perf_counter) -> dict:
    """Best of ``repeats`` runs of each call on ``clock``, the calls interleaved (one run of
    each per round, so that a change in the machine's load hits all alike); fewer rounds
    once a call has taken ``budget`` seconds."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = clock()
            call()
            times[name].append(clock() - start)
        if max(sum(t) for t in times.values()) >= budget:
            break
    return {name: min(t) for name, t in times.items()}


def make_call(method: str, n: int, heads: int, dim: int, chunk_size: int, backward: bool):
    generator = torch.Generator().manual_seed(n)
    shape = (1, heads, n, dim) if method == "SDPA" else (n, heads, dim)
    q, k, v = (torch.randn(shape, generator=generator).requires_grad_(backward) for _ in range(3))
    grad = torch.randn(shape, generator=generator)

    def attend():
        if method == "SDPA":
            return scaled_dot_product_attention(q, k, v)
        return einsum_attention(q, k, v, passes=int(method[0]), chunk_size=chunk_size)

    def call():
        with rows.references() if method == "1-pass-torch" else contextlib.nullcontext():
            if not backward:
                with torch.no_grad():
                    attend()
                return
            for x in (q, k, v):
                x.grad = None
            attend().backward(grad)

    return call


def measure(sizes, methods, heads, dim, chunk_size, repeats, budget, clock):
    results = {}
    for n in sizes:
        for backward in (False, True):
            calls = {m: make_call(m, n, heads, dim, chunk_size, backward) for m in methods}
            peaks = {m: peak_bytes(call) for m, call in calls.items()}  # also the warm-up runs
            times = best_times(calls, repeats, budget, clock)
            for m in methods:
                results[n, m, backward] = (times[m], peaks[m])
            del calls
            gc.collect()
        print(f"  measured N = {n:5d}", flush=True)
    return results


def print_tables(results, sizes, methods):
    def row(cells, widths):
        return " | ".join(str(c).rjust(w) for c, w in zip(cells, widths))

    def width(names, least):
        return [max(least, len(name)) for name in names]

    for backward, label in ((False, "forward"), (True, "forward + backward")):
        print(f"\nTime, {label} (ms; ratio = cascade / SDPA)")
        cascades = [m for m in methods if m != "SDPA"]
        head = ["N"] + list(methods) + [f"{m}/SDPA" for m in cascades]
        widths = [5] + width(head[1:], 9)
        print(row(head, widths))
        for n in sizes:
            t = {m: results[n, m, backward][0] for m in methods}
            print(row([n] + [f"{t[m] * 1e3:.1f}" for m in methods]
                      + [f"{t[m] / t['SDPA']:.2f}" for m in cascades], widths))

        print(f"\nPeak memory, {label} (MiB; growth = peak(N) / peak(N / 2))")
        grown = [m for m in ("1-pass", "3-pass") if m in methods]
        head = ["N"] + list(methods) + [f"{m} growth" for m in grown]
        widths = [5] + width(head[1:], 9)
        print(row(head, widths))
        for i, n in enumerate(sizes):
            p = {m: results[n, m, backward][1] for m in methods}
            growth = []
            for m in grown:
                halved = results.get((n // 2, m, backward))
                growth.append(f"x{p[m] / halved[1]:.2f}" if i and halved and n // 2 == sizes[i - 1]
                              else "")
            print(row([n] + [f"{p[m] / 2 ** 20:.1f}" for m in methods] + growth, widths))


def chunk_memory(heads: int, dim: int) -> None:
    """Peak memory of the 1-pass forward + backward for chunk sizes up to 10**9: tiles are
    sized from the graphs, so it follows nodes x min(chunk_size, graph size)."""
    generator = torch.Generator().manual_seed(0)
    batches = {"1 graph of 5 nodes": [5], "64 graphs of 10-60 nodes":
               torch.randint(10, 61, (64,), generator=generator).tolist(),
               "1 graph of 4096 nodes": [4096]}
    print(f"\nPeak memory, 1-pass forward + backward (MiB), H = {heads}, D = {dim}")
    chunks = (16, 64, 256, 10**9)
    print(" | ".join(["batch".rjust(26)] + [f"chunk {c}".rjust(12) for c in chunks]))
    for name, sizes in batches.items():
        batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        q, k, v = (torch.randn(batch.numel(), heads, dim, generator=generator).requires_grad_()
                   for _ in range(3))
        cells = []
        for c in chunks:
            peak = peak_bytes(lambda: einsum_attention(q, k, v, batch, chunk_size=c).sum().backward())
            cells.append(f"{peak / 2 ** 20:.2f}".rjust(12))
        print(" | ".join([name.rjust(26)] + cells), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 256 ... 2048, 2 repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="node counts (default 256 ... 8192)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, SDPA first (default {','.join(METHODS)})")
    parser.add_argument("--repeats", type=int, help="timed runs per configuration (default 3)")
    parser.add_argument("--budget", type=float, default=2.0,
                        help="stop repeating a configuration after this many seconds")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--chunk-memory", action="store_true",
                        help="only the peak-memory table of the 1-pass cascade over chunk sizes")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock or this process's CPU seconds (use with --threads 1)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.chunk_memory:
        chunk_memory(args.heads, args.head_dim)
        return
    sizes = args.sizes or ([256, 512, 1024, 2048] if args.quick else
                           [256, 512, 1024, 2048, 4096, 8192])
    repeats = args.repeats or (2 if args.quick else 3)
    methods = args.methods.split(",")
    if methods[0] != "SDPA" or not set(methods) <= set(METHODS):
        parser.error(f"--methods must start with SDPA and name some of {', '.join(METHODS)}")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
          f"H = {args.heads} heads, D = {args.head_dim} per head, chunk_size = {args.chunk_size}, "
          f"best of {repeats} runs (fewer past {args.budget:g} s), {args.clock} clock; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    results = measure(sizes, methods, args.heads, args.head_dim, args.chunk_size, repeats, args.budget,
                      clock)
    print_tables(results, sizes, methods)
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average after: "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
