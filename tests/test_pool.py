import threading

import pytest

from cellbench.pool import submit, thread_pool


def test_one_thread_runs_in_the_caller():
    with thread_pool(1) as pool:
        assert pool is None
        future = submit(pool, threading.current_thread)
        assert future.done() and future.result() is threading.main_thread()


def test_a_pool_runs_elsewhere_and_keeps_the_order_of_results():
    with thread_pool(2) as pool:
        futures = [submit(pool, lambda k=k: (k * k, threading.current_thread().name)) for k in range(6)]
        results = [f.result() for f in futures]
    assert [value for value, _ in results] == [0, 1, 4, 9, 16, 25]
    assert all(name.startswith("cellbench") for _, name in results)


def test_errors_reach_the_caller():
    def fails():
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        submit(None, fails)
    with thread_pool(2) as pool, pytest.raises(ValueError, match="bad image"):
        submit(pool, fails).result()
