"""Fault tests: the app runs in real subprocesses (manage.py, gunicorn, Celery) against the test
database, and the test breaks what they depend on. Every wait is bounded and every process
started here is stopped at the end, whatever happens."""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client as BrowserClient

from conftest import need_service


def database_url() -> str:
    """The test database, as a subprocess must see it."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def free_port() -> int:
    """A local TCP port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CSRF = "faultsfaultsfaultsfaultsfaults12"  # any 32 letters and digits: cookie and form agree


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url: str, cookie: str = "", data: dict[str, str] | None = None) -> tuple[int, str]:
    """GET (or POST ``data``) without following redirects; a hanging request fails."""
    body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": CSRF}).encode() if data else None
    headers = {"Cookie": f"{cookie}; csrftoken={CSRF}"}
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=body, headers=headers), timeout=15) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def session_cookie(user) -> str:
    browser = BrowserClient()
    browser.force_login(user)
    return f"sessionid={browser.cookies['sessionid'].value}"


def wait_for(condition: Callable[[], object], what: str, seconds: float = 30) -> object:
    """Poll until ``condition()`` is truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Process:
    """A subprocess of the app whose output goes to a temporary file."""

    def __init__(self, args: list[str], env: dict[str, str], name: str, log: IO[str]) -> None:
        self.name = name
        self.log = log
        self.popen = subprocess.Popen(
            args, cwd=settings.BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait(self, seconds: float) -> int:
        return self.popen.wait(timeout=seconds)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 10 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def app_env(postgres, transactional_db) -> Callable[..., dict[str, str]]:
    """The environment of a production-like process on the test database (committed data,
    PostgreSQL only). Keyword arguments override or add variables."""

    def make(**extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "supportbilling.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": "",
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "0",
            "SECURE_COOKIES": "0",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    return make


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    """Start app subprocesses; all are stopped at the end of the test, and their output is
    printed (pytest shows it when the test fails)."""
    started: list[Process] = []
    with contextlib.ExitStack() as logs:

        def start(args: list[str], env: dict[str, str], name: str) -> Process:
            log = logs.enter_context(tempfile.TemporaryFile(mode="w+"))
            process = Process(args, env, name, log)
            started.append(process)
            return process

        try:
            yield start
        finally:
            for process in started:  # all at once, then wait for each
                if process.popen.poll() is None:
                    process.popen.terminate()
            for process in started:
                process.stop()
            for process in started:
                print(f"--- {process.name} (exit {process.popen.returncode}) ---")
                print(process.output()[-4000:])


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def celery_worker_args(name: str) -> list[str]:
    """A Celery worker that runs one task at a time in its own process."""
    return [
        sys.executable,
        *("-m", "celery", "-A", "supportbilling", "worker", "-n", f"{name}@%h"),
        *("--pool=solo", "--loglevel=info", "--without-gossip", "--without-mingle"),
        "--without-heartbeat",
    ]


@pytest.fixture(scope="session")
def static_manifest() -> None:
    """gunicorn serves the app with DEBUG off: templates need the collected static files."""
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        subprocess.run(
            manage("collectstatic", "--no-input", "-v0"),
            cwd=settings.BASE_DIR,
            env={**os.environ, "SECRET_KEY": settings.SECRET_KEY},
            check=True,
            timeout=120,
        )


@pytest.fixture
def gunicorn(static_manifest, app_env, processes) -> Callable[..., str]:
    """Start the web app under gunicorn (one worker, as a separate process from the test);
    returns its base URL once it answers."""
    import urllib.error
    import urllib.request

    def start(**env: str) -> str:
        port = free_port()
        processes(
            [
                sys.executable,
                *("-m", "gunicorn", "supportbilling.wsgi"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30"),
                *("--graceful-timeout", "2", "--access-logfile", "-"),
            ],
            app_env(**env),
            "gunicorn",
        )
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"{base}/healthz/", timeout=5).close()
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        wait_for(answers, "gunicorn to start", seconds=30)
        return base

    return start


def postgres_bindir() -> Path | None:
    """The directory of a PostgreSQL server's binaries (initdb, postgres): Debian's newest
    /usr/lib/postgresql/<version>/bin, else the one on PATH."""
    debian = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (path.parent / "postgres").exists()
    ]
    if debian:
        return max(debian, key=lambda bindir: int(bindir.parent.name.split(".")[0]))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A throw-away PostgreSQL server of the test's own: a cluster made by initdb in a
    temporary directory, listening on 127.0.0.1 at a free port (socket in the same directory).
    Stopping it disturbs no other database on the machine."""

    def __init__(self, bindir: Path, directory: Path, owner: str | None) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"
        self.owner = owner  # the OS user the server runs as (initdb refuses root)
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None
        self.log = directory / "postgres.log"

    def run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            timeout=120,
            capture_output=True,
            **self.as_owner(),
        )

    def as_owner(self) -> dict:
        """Popen's arguments to run as the owner (user, its group, no other groups), if any."""
        if self.owner is None:
            return {}
        return {"user": self.owner, "group": pwd.getpwnam(self.owner).pw_gid, "extra_groups": []}

    def initdb(self) -> None:
        self.run(
            *("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            "--no-sync",  # a throw-away cluster: no need to wait for the disk
        )

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, "already running"
        with open(self.log, "a") as log:
            self.popen = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    *("-D", str(self.data), "-p", str(self.port), "-k", str(self.directory)),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self.as_owner(),
                start_new_session=True,  # its own process group: backends are killed with it
            )
        wait_for(self.is_up, "the private PostgreSQL to accept connections")

    def is_up(self) -> bool:
        ready = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            timeout=10,
            check=False,
        )
        return ready.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT: connections are cut), SIGKILL to the whole process group if
        it is not down within 30 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def private_postgres(postgres, transactional_db) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server with the app's database migrated on it; for the test's
    duration the test's own connection (factories, ``database_url()``, hence gunicorn) points
    at it. Killed and deleted at the end, whatever happens."""
    bindir = postgres_bindir()
    if bindir is None:
        need_service("PostgreSQL server binaries (initdb, postgres)")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres").pw_name
        except KeyError:
            need_service("a 'postgres' OS user to run a private PostgreSQL as (not root)")
    directory = Path(tempfile.mkdtemp(prefix="faults-postgres-"))
    if owner:
        shutil.chown(directory, owner, owner)
    server = PrivatePostgres(bindir, directory, owner)
    default = connections["default"]
    saved = dict(default.settings_dict)
    try:
        server.initdb()
        server.start()
        server.run("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "app")
        connections.close_all()
        default.settings_dict.update(
            NAME="app", HOST="127.0.0.1", PORT=str(server.port), USER="postgres", PASSWORD=""
        )
        subprocess.run(
            manage("migrate", "--no-input", "-v0"),
            cwd=settings.BASE_DIR,
            env={**os.environ, "SECRET_KEY": settings.SECRET_KEY, "DATABASE_URL": database_url()},
            check=True,
            timeout=120,
            capture_output=True,
        )
        yield server
    finally:
        connections.close_all()
        default.settings_dict.clear()
        default.settings_dict.update(saved)
        server.stop()
        print(f"--- private PostgreSQL (port {server.port}) ---")
        print(server.output()[-4000:])
        shutil.rmtree(directory, ignore_errors=True)
