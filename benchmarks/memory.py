"""Peak memory on the CPU, where ``torch.cuda.max_memory_allocated`` has no counterpart.

:func:`peak_bytes` replays the allocation and free events that ``torch.profiler`` records with
``profile_memory=True``: the high-water mark of the bytes PyTorch's CPU allocator holds during
the call, above what it held before (inputs excluded; outputs, saved tensors, gradients and
the temporaries inside fused kernels included).
"""
from torch.profiler import ProfilerActivity, profile


def peak_bytes(fn) -> int:
    """High-water mark of CPU allocator bytes allocated while ``fn()`` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # The raw event list keeps every allocation and free, with its size, in time order;
    # the aggregated views merge them into the enclosing operators.
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]"]
    live = peak = 0
    for _, nbytes in sorted(events, key=lambda e: e[0]):
        live += nbytes
        peak = max(peak, live)
    return peak
