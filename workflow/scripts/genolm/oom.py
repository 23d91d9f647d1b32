"""Out-of-memory back-off for batched inference: halve the batch and retry instead of failing a long run.

Inference over many sequences or genome windows picks one batch size for the whole run; the longest batch, or
another job on a shared GPU, can still exhaust device memory. `with_oom_backoff` runs the batches, and on
`torch.OutOfMemoryError` frees the CUDA cache, halves the batch size, logs a warning and retries the same items.
Each item is computed exactly once, by a call that succeeded, so results match a run that never ran out
(for models whose per-item output does not depend on the batch, i.e. any model in eval mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from genolm.errors import ConfigError, ResourceError

log = logging.getLogger(__name__)


def _free_cuda_cache() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def with_oom_backoff(
    run_batch: Callable[[np.ndarray], None],
    indices: np.ndarray | Sequence[int],
    batch_size: int,
    *,
    what: str,
) -> int:
    """Call `run_batch(indices[i : i + size])` over consecutive slices of `indices`, first with
    `size = batch_size`; return the batch size that worked last, so a caller can start there next time.

    `run_batch` stores its own results, and only once its batch succeeded. When it raises
    `torch.OutOfMemoryError`, the same slice is retried at half the size, which is kept for the rest of the
    run. A batch of one that still runs out raises ResourceError; `what` names the work in messages.
    """
    if batch_size < 1:
        raise ConfigError(f"{what}: batch size must be >= 1, got {batch_size}")
    items = np.asarray(indices)
    size = int(batch_size)
    start = 0
    while start < len(items):
        chunk = items[start : start + size]
        detail = None
        try:
            run_batch(chunk)
        except torch.OutOfMemoryError as err:
            detail = str(err).strip().splitlines()[0] if str(err).strip() else "out of memory"
        if detail is None:
            start += len(chunk)
            continue
        # Outside the except block: the traceback (and the tensors its frames hold) is gone before the cache
        # is emptied.
        _free_cuda_cache()
        if len(chunk) == 1:
            raise ResourceError(
                f"{what}: out of memory even with a batch of 1 ({detail}); free device memory (other jobs on "
                "the GPU), use shorter sequences or windows or a smaller model, or run on the CPU (device: cpu)"
            )
        size = max(1, min(size, len(chunk)) // 2)
        log.warning("%s: out of memory with a batch of %d; retrying with batches of %d", what, len(chunk), size)
    return size
