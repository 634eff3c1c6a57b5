"""The results store: one SQLite database of runs plus a folder of ``.tflite`` artifacts.

Every run is a row: model and dataset (with fingerprints), scheme, settings,
status, error, metrics and the artifact path. The same model + data + scheme
+ settings (the run *key*) is served from the store instead of recomputed.
SQLite runs in WAL mode with a busy timeout, so several sessions and a CLI
sweep can write at once. Artifacts are written to a temporary file and
renamed, so a killed process never leaves half a file under a real name.
"""

import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import tempfile
import time
from pathlib import Path

from optlib import paths

ENGINE_VERSION = 3  # bump when a change makes stored figures incomparable
# (2: latency on CompiledModel; 3: latency timed for a minimum time too, with the others paused)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_fingerprint TEXT NOT NULL,
    scheme TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    metrics TEXT,
    tflite_path TEXT,
    host TEXT,
    pid INTEGER,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_key ON runs (key, status);
"""


def run_key(model_fingerprint, dataset_fingerprint, scheme, settings, task=""):
    """Return the key that identifies a run: same key, same result.

    ``task`` is the task setting when one was given (a detected task follows from the model and data).
    """
    text = json.dumps([ENGINE_VERSION, model_fingerprint, dataset_fingerprint, scheme, settings]
                      + ([task] if task else []), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _alive(pid):
    """True if process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust kill(0)


class Store:
    """A results store at ``path`` (default: the data folder's ``results.sqlite``)."""

    def __init__(self, path=None):
        self.path = Path(path or paths.default_store_path()).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.artifacts = self.path.parent / "artifacts"
        self.artifacts.mkdir(exist_ok=True)
        # Switching to WAL needs the database to itself, and SQLite answers "database is locked" at
        # once (no busy wait) when another process is doing the same: processes creating one store
        # together take turns here. WAL mode then stays with the file.
        with open(self.path.parent / ".create.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self._connect() as db:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA busy_timeout=60000")
        db.row_factory = sqlite3.Row
        return _Closing(db)

    # --- writing ---------------------------------------------------------

    def start(self, inputs, spec, host, pid, started_at=None):
        """Insert a 'running' row for a job that has started on ``host`` in process ``pid``; return its id.

        A row left 'running' by a process that died is marked 'interrupted' by :meth:`mark_interrupted`.
        """
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO runs (key, model, model_fingerprint, dataset, dataset_fingerprint, scheme,"
                " settings, status, host, pid, started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (spec.key, inputs.model.name, inputs.model.fingerprint, inputs.data.name, inputs.data.fingerprint,
                 spec.scheme, json.dumps(spec.settings, sort_keys=True), "running", host, pid,
                 started_at or time.time()))
            return cursor.lastrowid

    def finish(self, run_id, result):
        """Record a job's :class:`~optlib.engine.job.Result`: status, figures and artifact; return the row id."""
        started = time.perf_counter()
        metrics = json.dumps(result.metrics or {})  # before the artifact: a figure that is not JSON stops here
        path = self.save_artifact(result.spec.key, result.scheme, result.artifact, run_id) if result.artifact else None
        if isinstance((result.metrics or {}).get("phases_s"), dict):  # where the time went: storing it too
            # The figures encoded and the artifact written and synced (the row's own write is not counted).
            phases = {**result.metrics["phases_s"], "store": round(time.perf_counter() - started, 3)}
            metrics = json.dumps({**result.metrics, "phases_s": phases})
        with self._connect() as db:
            db.execute("UPDATE runs SET status=?, error=?, metrics=?, tflite_path=?, host=COALESCE(?, host),"
                       " pid=COALESCE(?, pid),"
                       " started_at=COALESCE(?, started_at), finished_at=? WHERE id=?",
                       (result.status, result.error, metrics,
                        str(path) if path else None, result.host or None, result.pid or None,
                        result.started_at or None, result.finished_at or time.time(), run_id))
        return run_id

    def save_artifact(self, key, scheme, content, run_id):
        """Write ``content`` atomically as the artifact of run ``run_id``; return its path.

        One file per run, not per key: a run made again (recompute, or two sweeps at once) does not change
        the bytes an older row's figures were measured on (training is not bit-exact from run to run).
        """
        final = self.artifacts / f"{scheme}-{key}-{run_id}.tflite"
        handle, tmp = tempfile.mkstemp(dir=self.artifacts, suffix=".part")
        with os.fdopen(handle, "wb") as sink:
            sink.write(content)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, final)
        return final

    def mark_interrupted(self):
        """Mark 'running' rows of dead processes on this host as 'interrupted'; return how many."""
        host = socket.gethostname()
        with self._connect() as db:
            rows = db.execute("SELECT id, pid, host FROM runs WHERE status='running'").fetchall()
            dead = [r["id"] for r in rows if r["host"] == host and not _alive(r["pid"])]
            marked = 0
            for run_id in dead:  # only if still running: its own sweep may have finished it since the SELECT
                marked += db.execute("UPDATE runs SET status='interrupted', error=?, finished_at=?"
                                     " WHERE id=? AND status='running'",
                                     ("the process running this scheme stopped before it finished", time.time(),
                                      run_id)).rowcount
        return marked

    # --- reading ---------------------------------------------------------

    def lookup(self, key):
        """Return the latest finished-ok row with this key whose artifact exists, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE key=? AND status='ok' ORDER BY id DESC LIMIT 1",
                             (key,)).fetchone()
        if row is None:
            return None
        row = _decode(row)
        return row if row["tflite_path"] and Path(row["tflite_path"]).is_file() else None

    def rows(self, model=None, dataset=None, scheme=None, status=None, latest=False):
        """Return stored runs, newest first, optionally filtered.

        Args:
            latest: keep one row per run key (model fingerprint, dataset, scheme, settings): the newest
                ok one, so a rerun that failed, timed out or was interrupted never hides a good result;
                the newest row of any status where none is ok.
        """
        query, args = "SELECT * FROM runs WHERE 1=1", []
        for column, value in (("model", model), ("dataset", dataset), ("scheme", scheme), ("status", status)):
            if value is not None:
                query += f" AND {column}=?"
                args.append(value)
        with self._connect() as db:
            rows = [_decode(r) for r in db.execute(query + " ORDER BY id DESC", args).fetchall()]
        if latest:
            chosen = {}
            for row in rows:  # newest first
                if row["key"] not in chosen or (row["status"] == "ok" and chosen[row["key"]]["status"] != "ok"):
                    chosen[row["key"]] = row
            kept = {row["id"] for row in chosen.values()}
            rows = [row for row in rows if row["id"] in kept]
        return rows

    def history(self, run_id):
        """Every run of the same model, data, scheme and settings as run ``run_id``, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE key=(SELECT key FROM runs WHERE id=?) ORDER BY id DESC",
                              (run_id,)).fetchall()
        return [_decode(row) for row in rows]

    def get(self, run_id):
        """Return one run by id, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return _decode(row) if row else None


def result_row(row, cached=False):
    """Flatten a stored run into the JSON result row of the CLI contract (metrics at the top level).

    The one place a stored run becomes a flat row: the sweep, the CLI, the
    results frame and the generated code all read rows shaped by it.
    """
    metrics = row.get("metrics") or {}
    return {"id": row.get("id"), "scheme": row["scheme"], "status": row["status"], "error": row.get("error"),
            "cached": cached, "model": row.get("model"), "dataset": row.get("dataset"),
            "model_fingerprint": row.get("model_fingerprint"), "dataset_fingerprint": row.get("dataset_fingerprint"),
            "settings": row.get("settings"), **metrics, "tflite_path": row.get("tflite_path"),
            "host": row.get("host"), "pid": row.get("pid"),
            "started_at": row.get("started_at"), "finished_at": row.get("finished_at")}


def flat(row):
    """A result row from either a result row (returned as a copy) or a stored row (flattened)."""
    return result_row(row, row.get("cached", False)) if isinstance(row.get("metrics"), dict) else dict(row)


def _decode(row):
    row = dict(row)
    row["settings"] = json.loads(row["settings"] or "{}")
    row["metrics"] = json.loads(row["metrics"] or "{}")
    return row


class _Closing:
    """Context manager that closes the connection (sqlite3's own only commits)."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        return self.db

    def __exit__(self, *exc):
        self.db.close()
