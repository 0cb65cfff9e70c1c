"""First load (parse the files, write the cache) and cached load of ``enas``, ``sst`` and
``sst-binary``: wall-clock and CPU seconds of this process, in one run, into a fresh cache.

    python benchmarks/dag_tree_loading.py --data-root ../shared/data

CPU seconds are what the loaders cost; wall-clock seconds also show how busy the machine is
(the load average is printed before and after).
"""
import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="../shared/data")
    args = parser.parse_args()
    os.environ["PLSTM_GRAPH_CACHE_DIR"] = tempfile.mkdtemp(prefix="plstm-graph-bench-")
    torch.set_num_threads(1)
    from plstm_graph.data import get_dataset  # after the cache folder is chosen

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, 1 torch thread")
    print("| load | dataset | graphs | nodes | wall s | CPU s |\n|---|---|---:|---:|---:|---:|")
    for attempt in ("first", "cached"):
        for name in ("enas", "sst", "sst-binary"):
            wall, cpu = time.perf_counter(), time.process_time()
            spec = get_dataset(name, root=args.data_root, download=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            nodes = int(spec.dataset.slices["x"][-1])
            print(f"| {attempt} | {name} | {len(spec)} | {nodes} | {wall:.2f} | {cpu:.2f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
