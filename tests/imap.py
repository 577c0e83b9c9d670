"""A real IMAP server for the mail intake tests: Debian's Dovecot (``dovecot-imapd``, see
scripts/install-dovecot) started in the foreground with its own configuration in a temporary
directory, on a free local port; never the machine's service."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.mail import free_port

DOVECOT = os.environ.get("DOVECOT_PATH", "/usr/sbin/dovecot")
USER, PASSWORD = "desk", "secret"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = {internal_user}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
mail_location = maildir:{tmp}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    log: Path


def dovecot_available() -> bool:
    return os.path.exists(DOVECOT)


def _owner() -> tuple[int, int, str, str]:
    """Who owns the mail: the current user; as root (Dovecot refuses uid 0 for mail and
    root for its login processes) the package's own ``dovecot`` and ``dovenull`` users."""
    if os.getuid() != 0:
        name = pwd.getpwuid(os.getuid()).pw_name
        return os.getuid(), os.getgid(), name, name
    dovecot = pwd.getpwnam("dovecot")
    return dovecot.pw_uid, dovecot.pw_gid, "dovecot", "dovenull"


def dovecot_running() -> Iterator[ImapServer]:
    """Start Dovecot on a free port with a single user (USER/PASSWORD) and stop it after."""
    with tempfile.TemporaryDirectory(prefix="dovecot-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)  # the mail processes run as the mail owner
        yield from _dovecot_in(tmp)


def _dovecot_in(tmp: Path) -> Iterator[ImapServer]:
    uid, gid, internal_user, login_user = _owner()
    port = free_port()
    for sub in ("run", "state", "mail", "home"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("mail", "home"):
        shutil.chown(tmp / sub, user=uid, group=gid)
    (tmp / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    config = tmp / "dovecot.conf"
    config.write_text(
        _CONFIG.format(
            tmp=tmp,
            port=port,
            uid=uid,
            gid=gid,
            internal_user=internal_user,
            login_user=login_user,
        )
    )
    process = subprocess.Popen(  # our own binary and configuration
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_file = tmp / "dovecot.log"
                    log = log_file.read_text() if log_file.exists() else ""
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"Dovecot did not start: {stderr}{log}") from None
                time.sleep(0.1)
        yield ImapServer("127.0.0.1", port, USER, PASSWORD, tmp / "dovecot.log")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
