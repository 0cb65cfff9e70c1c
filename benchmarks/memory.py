"""Peak memory of torch tensors on any device, CPU included.

``torch.cuda.max_memory_allocated`` has no CPU counterpart, and the process RSS mixes in the
allocator's caching. :class:`PeakMemory` instead watches every tensor an operator creates (a
``TorchDispatchMode`` sees all of them, inside custom autograd functions and backward too) and
counts the bytes of each storage while any tensor still refers to it. Tensors that existed
before entering are not counted: the figure is the extra memory of what runs inside.
"""
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakMemory(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.current = self.peak = 0
        self._refs = {}  # storage address -> [tensor count, bytes]

    def _release(self, key):
        entry = self._refs[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = (tensor.device, storage.data_ptr())
            if key in self._refs:
                self._refs[key][0] += 1
            else:
                self._refs[key] = [1, storage.nbytes()]
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            weakref.finalize(tensor, self._release, key)
        return out


def peak_bytes(fn) -> int:
    """Peak bytes of tensors alive at once while ``fn()`` runs."""
    with PeakMemory() as tracker:
        fn()
    return tracker.peak
