"""Deployment: the docker compose stack comes up healthy with the default (secure) settings,
the image is built the way docker-compose.yml expects, and no test touches the machine's
PostgreSQL.

Docker itself is not needed: the web, worker and beat commands of docker-compose.yml run as
written (the file's environment, with compose's ``${...}`` substitution) on this machine,
pointed at the test database and Redis, and their health checks are run as written until they
pass, as compose does before it starts the services that depend on them."""

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from conftest import need_service
from tests.faults.conftest import NoRedirect, database_url, free_port

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")
PUBLIC_HOST = "support.example.com"

# ---------------------------------------------------------------------------------------------
# Reading docker-compose.yml and the Dockerfile as docker does


VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's substitution of ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}`` and ``${VAR:?error}`` in every string of ``value``."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        current = variables.get(name)
        operator, argument = match["op"], match["arg"] or ""
        if operator == ":-":
            return current or argument
        if operator == "-":
            return argument if current is None else current
        if operator in (":?", "?") and (current is None or (operator == ":?" and not current)):
            raise ValueError(f"{name}: {argument}")
        return current or ""

    return VARIABLE.sub(substitute, value)


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return env


def health_command(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["sh", "-c", test]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", test[1]]
    assert test[0] == "CMD", test
    return test[1:]


# ---------------------------------------------------------------------------------------------
# Running commands like containers do, and killing all they start


class Started:
    """A service's command, in its own process group (gunicorn's and Celery's children are
    killed with it), its output in a temporary file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: IO[str]) -> None:
        self.name = name
        self.log = log
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,  # the image's WORKDIR holds the checkout
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        for sig, seconds in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            with _gone():
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=seconds)
                break
            except subprocess.TimeoutExpired:
                continue
        with _gone():  # children that outlived their parent
            os.killpg(self.popen.pid, signal.SIGKILL)


def _gone() -> contextlib.suppress:
    """The process (group) may have exited already."""
    return contextlib.suppress(ProcessLookupError)


def run_check(args: list[str], env: dict[str, str], seconds: float = 30) -> tuple[int, str]:
    """Run a health check command once; (exit status, output). A hanging check is killed
    (with everything it started) and counts as failed."""
    with tempfile.TemporaryFile(mode="w+") as log:
        popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            status = -1
        with _gone():
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=10)
        log.seek(0)
        return status, log.read()[-2000:]


def wait_healthy(
    name: str, service: dict[str, Any], env: dict[str, str], process: Started, seconds: float
) -> None:
    """Run the service's health check until it passes, as compose does; fail if the service's
    process exits or ``seconds`` pass first."""
    command = health_command(service)
    deadline = time.monotonic() + seconds
    while True:
        status, output = run_check(command, env)
        if status == 0:
            return
        exited = process.popen.poll()
        assert exited is None, f"{name} exited ({exited}):\n{process.output()}"
        assert time.monotonic() < deadline, (
            f"{name} not healthy after {seconds} s; last check ({status}): {output}\n"
            f"--- {name} ---\n{process.output()}"
        )
        time.sleep(0.5)


def get(url: str, host: str) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers={"Host": host}), timeout=15) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


# ---------------------------------------------------------------------------------------------
# The stack comes up healthy


@pytest.fixture
def stack(postgres, transactional_db, redis_url) -> Iterator[dict[str, Any]]:
    """What ``docker compose up`` would need here: the shell's variables, the services, the
    runtime environment of each app service, and ``start(name)`` to start one's command
    (every process started is killed at the end)."""
    for program in ("sh", "pg_isready", "redis-cli"):
        if shutil.which(program) is None:
            need_service(program)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="compose-") as directory:
        # What a deployer exports before `docker compose up`: nothing about DEBUG or HTTPS.
        shell = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": PUBLIC_HOST,
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",  # 2 shared cores
        }
        services = interpolate(compose_file()["services"], shell)
        bindir = str(Path(sys.executable).parent)  # python, gunicorn, celery as in the image
        container = {
            "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": directory,
            "HOSTNAME": f"compose-test-{os.getpid()}",  # docker sets it to the container's id
            **dockerfile_env(),
        }
        environments = {
            name: {
                **container,
                **services[name]["environment"],
                # this machine's PostgreSQL and Redis instead of the postgres/redis services
                "DATABASE_URL": database_url(),
                "REDIS_URL": redis_url,
                **({"BEAT_PIDFILE": f"{directory}/celerybeat.pid"} if name == "beat" else {}),
            }
            for name in APP_SERVICES
        }
        started: list[Started] = []
        with contextlib.ExitStack() as logs:

            def start(name: str) -> Started:
                log = logs.enter_context(tempfile.TemporaryFile(mode="w+"))
                process = Started(name, services[name]["command"], environments[name], log)
                started.append(process)
                return process

            try:
                yield {"port": port, "services": services, "env": environments, "start": start}
            finally:
                for process in started:
                    process.stop()


def test_docker_compose_services_become_healthy_with_the_default_secure_settings(stack):
    services, env, start = stack["services"], stack["env"], stack["start"]
    # given the file's settings: DEBUG off, https redirect and secure cookies on
    for name in APP_SERVICES:
        assert "DEBUG" not in env[name]
        assert env[name]["SECURE_SSL_REDIRECT"] == "1"
        assert env[name]["SECURE_COOKIES"] == "1"
        assert env[name]["ALLOWED_HOSTS"] == PUBLIC_HOST
    # the postgres and redis health checks pass against this machine's servers
    db = settings.DATABASES["default"]
    server_env = {**os.environ, "PGHOST": db["HOST"] or "127.0.0.1", "PGPORT": str(db["PORT"])}
    for name in ("postgres", "redis"):
        status, output = run_check(health_command(services[name]), server_env)
        assert status == 0, (name, output)

    # when the web service starts (migrate, gunicorn)
    web = start("web")
    # then its health check passes
    wait_healthy("web", services["web"], env["web"], web, seconds=45)

    # when the worker and beat start, which wait for a healthy web
    worker, beat = start("worker"), start("beat")
    # then both become healthy
    for name, process in (("worker", worker), ("beat", beat)):
        wait_healthy(name, services[name], env[name], process, seconds=45)

    # and the secure defaults are live: a page over plain http is sent to https, the health
    # check is not
    base = f"http://127.0.0.1:{stack['port']}"
    status, headers, _ = get(f"{base}/", PUBLIC_HOST)
    assert (status, headers["Location"]) == (301, f"https://{PUBLIC_HOST}/")
    status, _, body = get(f"{base}/healthz/", PUBLIC_HOST)
    assert (status, body) == (200, '{"status": "ok"}')


@pytest.mark.django_db
def test_the_health_check_is_not_redirected_to_https_when_pages_are(client, settings):
    # given the production default: plain http is redirected to https
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/login/").status_code == 301
    # when a load balancer or docker asks for the health over plain http
    response = client.get("/healthz/")
    # then it gets the answer, not a redirect
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_plain_http_mode_turns_the_redirect_and_secure_cookies_off():
    # given a laptop trial over http, as the compose file's header says
    shell = {"SECRET_KEY": "x", "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0"}
    # when compose fills in the file
    services = interpolate(compose_file()["services"], shell)
    # then every app service gets both switches off
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert (environment["SECURE_SSL_REDIRECT"], environment["SECURE_COOKIES"]) == ("0", "0")


def test_the_compose_file_refuses_to_start_without_a_secret_key():
    with pytest.raises(ValueError, match="SECRET_KEY"):
        interpolate(compose_file()["services"], {})


# ---------------------------------------------------------------------------------------------
# The image


def test_the_app_services_run_the_built_image_without_mounting_or_installing():
    services = compose_file()["services"]
    for name in APP_SERVICES:
        service = services[name]
        build = service.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context == ".", f"{name} is not built from the Dockerfile"
        # only the data volume of the attachments, never the code
        assert service.get("volumes", []) == ["media:/app/media"], service.get("volumes")
        command = " ".join(service["command"])
        assert "pip " not in command and "venv" not in command, command
    assert "venv" not in (compose_file().get("volumes") or {})


def test_the_dockerfile_installs_the_lock_collects_static_and_runs_as_a_user():
    instructions = dockerfile_instructions()
    arguments = {kind: [a for k, a in instructions if k == kind] for kind, _ in instructions}
    # a slim Python 3.11
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", arguments["FROM"][0].split()[0])
    runs = arguments["RUN"]
    # dependencies at the versions of requirements.lock, at build time
    assert any("requirements.lock" in copy for copy in arguments["COPY"])
    assert any(
        "pip install" in run
        and re.search(r"(-c|-r|--constraint|--requirement)\s+requirements\.lock", run)
        for run in runs
    ), runs
    # static files collected into the image
    assert any("manage.py collectstatic" in run for run in runs), runs
    # the processes do not run as root
    user = arguments["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    last_user = max(i for i, (kind, _) in enumerate(instructions) if kind == "USER")
    assert all(kind not in ("RUN", "COPY") for kind, _ in instructions[last_user + 1 :])
    # nothing of the developer's machine goes into the image
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "staticfiles", "db.sqlite3", ".git"} <= set(ignored)


# ---------------------------------------------------------------------------------------------
# The README's commands exist


def test_the_readme_names_only_commands_that_exist():
    readme = (ROOT / "README.md").read_text()
    commands = set(re.findall(r"manage\.py (\w+)", readme))
    assert commands >= {"createsuperuser", "seed_demo", "migrate"}
    assert commands <= set(get_commands()), commands - set(get_commands())
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    assert set(re.findall(r"\bmake ([a-z-]+)", readme)) <= targets


def test_the_readme_postgresql_section_gets_a_newcomer_to_a_login_over_http():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running with PostgreSQL", 1)[1].split("\n## ", 1)[0]
    # the database must exist before migrate, someone must be able to sign in, and a
    # plain-http run must not be redirected to https
    assert "createdb" in section
    assert "createsuperuser" in section and "seed_demo" in section
    assert "SECURE_SSL_REDIRECT=0" in section and "SECURE_COOKIES=0" in section


# ---------------------------------------------------------------------------------------------
# Tests leave the machine's servers alone


def test_no_test_stops_or_restarts_the_machines_services():
    # pg_ctlcluster, systemctl or service act on the machine's shared servers; a test that
    # breaks a server starts its own (tests/faults/conftest.py, private_postgres)
    forbidden = re.compile(
        r"pg_ctlcluster|systemctl|[\"']service[\"']|\bservice (postgresql|redis)"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    assert offenders == []
