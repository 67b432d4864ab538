"""Helpers shared by the service tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import os
import socket

_pg_db_counter = [0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_pg_database(base_url: str) -> str:
    import psycopg

    _pg_db_counter[0] += 1
    name = f"t{os.getpid()}_{_pg_db_counter[0]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return base_url.rsplit("/", 1)[0] + "/" + name
