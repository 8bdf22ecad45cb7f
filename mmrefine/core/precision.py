"""Mixed precision: the model's forward in bfloat16, every loss and metric in fp32.

Under ``trainer.precision: bf16-mixed`` Lightning runs each step under ``torch.autocast``:
matrix products (linear layers, attention) run in bfloat16, which a CPU with AVX-512 BF16
multiplies 2.2x faster than fp32 here (``benchmarks/transformer_throughput.py --precision 32
bf16``), while weights, gradients and the optimiser stay fp32. Autocast already computes
cross-entropy, MSE and BCE with logits in fp32, but not a cosine or a softmax (a Refiner's
cosine loss, UCRN's Jensen-Shannon term); so :class:`~mmrefine.training.module.MultimodalModule` takes the model's output
back to fp32 (:func:`full_precision`) and computes every loss term and metric with autocast
off (:func:`autocast_off`):

    out = full_precision(model(x))          # bf16 tensors -> fp32, the rest unchanged
    with autocast_off(device): L = sum_k L_k(out)   # refiner decoders included, in fp32

In fp32 both are no-ops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)


def full_precision(obj: Any) -> Any:
    """``obj`` with every bfloat16 / float16 tensor in it cast to fp32, through NamedTuples,
    tuples, lists and dicts (a model's output and its internals); anything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.float() if obj.dtype in LOW_PRECISION else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(full_precision(v) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(full_precision(v) for v in obj)
    if isinstance(obj, dict):
        return {k: full_precision(v) for k, v in obj.items()}
    return obj


@contextlib.contextmanager
def autocast_off(device_type: str) -> Iterator[None]:
    """Autocast disabled for ``device_type`` inside, when it is on; nothing otherwise."""
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type, enabled=False):
            yield
    else:
        yield
