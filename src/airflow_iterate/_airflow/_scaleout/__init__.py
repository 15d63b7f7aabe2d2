"""``iterate(..., chunk_size=N)`` / ``chunks=N``: one input, split over mapped task instances.

One iterated task instance runs on one worker. To spread a large input over several workers the
DAG gets, instead of that one task, a TaskGroup named after the task id holding three tasks:

``<task_id>.plan`` (:mod:`._plan`)
    runs on a worker and reads only the input's length (one count query for the output of a
    mapped task, one XCom value for a list), then returns the chunk descriptors
    ``[{"start": 0, "stop": 5000}, {"start": 5000, "stop": 10000}, ...]``.
``<task_id>.chunks`` (:mod:`._chunk`)
    ONE mapped task, expanded over the descriptors. Each task instance resolves the input, takes
    its window only (a window of a lazy XCom sequence fetches just that slice) and iterates over
    it exactly like an unchunked iterate: concurrency, item retries, failure tolerance, progress,
    and a checkpoint of its own (the task state store is per task instance, so per chunk). Items
    see their GLOBAL position as ``iterate_index``.
``<task_id>.gather`` (:mod:`._gather`)
    concatenates the chunks' results in map-index order, i.e. input order, and sums their
    summaries. Its output is what ``.iterate()`` returns, so downstream code does not change.

:mod:`._build` puts the three in the DAG. Several iterables (the cross product) are chunked over
the flattened product index: a chunk reads the rows of the first argument it touches and the
other arguments whole, as an unchunked run does. Nothing here materialises the input in the
scheduler: it only ever sees the descriptors.
"""

from ._build import build_chunked

__all__ = ["build_chunked"]
