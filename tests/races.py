"""Writes committed by another connection at a chosen moment of a view."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def committed_after_read(
    read: Callable[..., Any], *, after_read: int, commit: Callable[[], Any]
) -> Callable[..., Any]:
    """``read`` (a page's stamp), with ``commit`` run and committed by another thread on its
    own connection right after the ``after_read``-th call: a change made while the page is
    being computed."""
    reads: list[Any] = []

    def read_then_committed_elsewhere(**kwargs: Any) -> Any:
        reads.append(read(**kwargs))
        if len(reads) == after_read:
            elsewhere = threading.Thread(target=_on_own_connection, args=(commit,))
            elsewhere.start()
            elsewhere.join()
        return reads[-1]

    return read_then_committed_elsewhere


def _on_own_connection(commit: Callable[[], Any]) -> None:
    try:
        commit()
    finally:
        connection.close()
