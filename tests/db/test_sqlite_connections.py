"""SQLite connections: every one ends up in WAL mode, however many open a new file at once."""

import sqlite3
import threading
from pathlib import Path

from app.db.engine import configure_sqlite_connection


def test_a_new_file_opened_while_another_connection_reads_it_still_ends_up_in_wal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.db"
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("CREATE TABLE t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    released = threading.Timer(0.2, lambda: reader.execute("COMMIT"))
    released.start()
    opened = sqlite3.connect(path, timeout=0)
    configure_sqlite_connection(opened, None)
    released.join()
    assert opened.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    opened.close()
    reader.close()
    # WAL is the file's mode now: a later connection finds it.
    later = sqlite3.connect(path)
    assert later.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    later.close()
