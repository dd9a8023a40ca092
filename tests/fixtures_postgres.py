"""Pytest plugin: a real, throwaway PostgreSQL server for the tests marked `postgres`.

`postgres_server` (session) runs `initdb` into a temporary directory and `pg_ctl start` on a free
port of 127.0.0.1 (its unix socket stays inside that directory), with password authentication over
TCP so that URLs carry a real secret. `postgres_url` (session) is a SQLAlchemy URL
(`postgresql+psycopg://...`) of a database created on it; `postgres_server.create_database()` gives
a test a database of its own. At the end of the session the server is stopped and the directory
removed.

The server binaries come from the Debian `postgresql` package (/usr/lib/postgresql/<version>/bin,
newest version first) or from PATH; `bash scripts/ensure-postgres.sh` installs them. When they are
missing the fixture fails rather than skips, so that a test run never passes without having tested
PostgreSQL. initdb refuses to run as root, so as root the server runs as the `postgres` system user
(created by the Debian package) through `runuser`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import URL

ENSURE_HINT = "run `bash scripts/ensure-postgres.sh` (installs the Debian 'postgresql' package)"
SERVER_USER = "postgres"  # system user the server runs as when the tests run as root
DB_USER = "weighbridge"  # superuser created by initdb, authenticated by password over TCP
INITDB_TIMEOUT_S = 120
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, else the PATH's."""

    def usable(d: Path) -> bool:
        return all(os.access(d / tool, os.X_OK) for tool in ("initdb", "pg_ctl"))

    def version(d: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", d.parent.name))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = [Path(p).parent for p in (shutil.which("pg_ctl"),) if p]
    return next((d for d in [*debian, *on_path] if usable(d)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


@dataclass
class PostgresServer:
    """A running throwaway server. `url(db)` names a database on it; `create_database` makes one."""

    bindir: Path
    root: Path  # temporary directory: data/, server.log, the unix socket
    run_as: str | None  # system user for the server commands, None to run them as ourselves
    password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    user: str = DB_USER
    startup_seconds: float = 0.0
    _running: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres", *, port: int | None = None, password: str | None = None) -> str:
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password if password is None else password,
            host=self.host,
            port=self.port if port is None else port,
            database=database,
        ).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """Create database `name` (letters, digits, underscores) and return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    # -- lifecycle -------------------------------------------------------------------------
    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / tool), *args]
        if self.run_as is None:
            return cmd
        return [shutil.which("runuser") or "/usr/sbin/runuser", "-u", self.run_as, "--", *cmd]

    def _run(self, what: str, cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        # PG* variables (PGDATA, PGPORT, PGHOST, ...) of the caller must not steer the throwaway server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            return subprocess.run(
                cmd,
                cwd=self.root,  # the server user may not be able to enter the caller's directory
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{what} did not finish within {timeout:.0f}s: {shlex.join(cmd)}") from exc

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        pwfile.chmod(0o600)
        try:
            done = self._run(
                "initdb",
                self._cmd(
                    "initdb",
                    f"--pgdata={self.data}",
                    f"--username={self.user}",
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",  # a throwaway cluster needs no fsync: initdb takes ~1 s instead of several
                ),
                INITDB_TIMEOUT_S,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {shlex.quote(str(self.root))}",  # unix socket in our directory, not /var/run
                    # Durability is irrelevant to a server deleted at the end of the session.
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                ]
            )
            self._running = True  # from here on, stop() must run even if start fails half-way
            done = self._run(
                "pg_ctl start",
                self._cmd(
                    "pg_ctl",
                    "start",
                    f"--pgdata={self.data}",
                    f"--log={self.log}",
                    "--wait",
                    f"--timeout={START_TIMEOUT_S}",
                    "-o",
                    options,
                ),
                START_TIMEOUT_S + 15,
            )
            if done.returncode == 0:
                return
            log = self._log_tail()
            self.stop()
            if attempt < START_ATTEMPTS and "already in use" in log:
                continue
            raise RuntimeError(
                f"pg_ctl start failed (exit {done.returncode}):\n{done.stdout}{done.stderr}\nserver log:\n{log}"
            )

    def stop(self) -> None:
        """Stop the server: fast shutdown, then immediate, then SIGKILL to the postmaster."""
        if not self._running:
            return
        for mode, timeout in (("fast", STOP_TIMEOUT_S), ("immediate", 10)):
            try:
                args = [f"--pgdata={self.data}", f"--mode={mode}", "--wait", f"--timeout={timeout}"]
                done = self._run("pg_ctl stop", self._cmd("pg_ctl", "stop", *args), timeout + 15)
            except RuntimeError:
                continue
            if done.returncode == 0 or not (self.data / "postmaster.pid").exists():
                self._running = False
                return
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)  # its backends exit when they notice the postmaster is gone
        self._running = False

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH; "
            + ENSURE_HINT,
            pytrace=False,
        )
    run_as: str | None = None
    base: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.fail(
                f"running as root, the PostgreSQL test server must run as the '{SERVER_USER}' system user, "
                f"which does not exist; {ENSURE_HINT}",
                pytrace=False,
            )
        run_as = SERVER_USER
        # The server user must be able to reach its directory: TMPDIR may be private to root.
        if not _traversable_by_others(Path(tempfile.gettempdir())):
            base = "/tmp"
    root = Path(tempfile.mkdtemp(prefix="weighbridge-pg-", dir=base))
    server = PostgresServer(bindir=bindir, root=root, run_as=run_as)
    atexit.register(server.stop)  # in case the session dies without running fixture teardown
    try:
        server._chown(root)
        began = time.perf_counter()
        try:
            server.init()
            server.start()
        except RuntimeError as exc:
            pytest.fail(f"could not start the PostgreSQL test server in {root}: {exc}", pytrace=False)
        server.startup_seconds = time.perf_counter() - began
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this test session (see the module docstring)."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL (postgresql+psycopg) of a database created for this session on the test server."""
    return postgres_server.create_database("weighbridge")
