"""torch's CPU threads in a server whose model runs on a worker thread."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def single_threaded():
    """torch on one thread inside, the thread count restored after.

    Every thread that runs a multi-threaded torch op gets its own OpenMP team, and GNU OpenMP spins only
    briefly (throttled) once its threads outnumber the cores: the model loaded in one thread and run in
    the worker thread made every parallel op of a decode step wait for a sleeping helper thread (2 cores:
    decode step 33 ms instead of 22 with bf16 weights, prefill 1.4x slower). Loading single-threaded
    leaves the worker's team the only one; the server's other torch work (a torch query encoder on an
    executor thread) runs single-threaded for the same reason."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
