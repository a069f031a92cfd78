"""Running independent parts of one image's work side by side on a thread pool (or, without a
pool, one after the other). The heavy parts (numpy, k-d tree queries) release the GIL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any


def submit(pool: Executor | None, function: Callable, *args: Any) -> Future:
    """function(*args) on the pool, or at once without one; a Future either way."""
    if pool is not None:
        return pool.submit(function, *args)
    done: Future = Future()
    done.set_result(function(*args))
    return done


@contextmanager
def thread_pool(threads: int) -> Iterator[Executor | None]:
    """A pool of ``threads`` threads, or None (work runs in the caller) for one thread."""
    if threads <= 1:
        yield None
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="cellbench") as pool:
        yield pool
