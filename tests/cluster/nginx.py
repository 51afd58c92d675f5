"""nginx as a child process of the tests, with the repository's proxy settings
(deploy/nginx/proxy.conf and api.conf) wrapped in a configuration of its own: its own ports,
temporary files, pid and logs in a temporary folder, in the foreground (`daemon off`)."""

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from app.config import PROJECT_ROOT
from tests.live import free_port

DEPLOY = PROJECT_ROOT / "deploy" / "nginx"


def nginx_binary() -> str:
    """nginx from apt (`deploy/nginx/ensure-nginx.sh`, run by `make test`): missing, the tests
    fail rather than skip."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    assert found, "nginx is not installed: run `bash deploy/nginx/ensure-nginx.sh` (make test does)"
    return found


def check(config: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a configuration file: its syntax, includes and upstreams."""
    return subprocess.run(
        [
            nginx_binary(),
            "-t",
            "-c",
            str(config),
            "-p",
            f"{folder}/",
            "-e",
            str(folder / "error.log"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


class Nginx:
    def __init__(self, folder: Path, upstreams: list[int]) -> None:
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "nginx.conf"
        # Run as root (CI), the workers would otherwise switch to `nobody`, which cannot write
        # the temporary folder; as another user nginx ignores the directive.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        servers = "".join(f"server 127.0.0.1:{port}; " for port in upstreams)
        temp = " ".join(
            f"{kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.config.write_text(
            f"""{user}
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {folder / "access.log"};
    {temp}
    include {DEPLOY / "proxy.conf"};
    upstream api {{ {servers} keepalive 16; }}
    server {{
        listen 127.0.0.1:{self.port};
        include {DEPLOY / "api.conf"};
    }}
}}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Self:
        checked = check(self.config, self.folder)
        assert checked.returncode == 0, checked.stderr
        log = (self.folder / "stderr.log").open("ab")
        self.process = subprocess.Popen(
            [
                nginx_binary(),
                "-c",
                str(self.config),
                "-p",
                f"{self.folder}/",
                "-e",
                str(self.folder / "error.log"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop(self.process)


def stop(process: "subprocess.Popen[bytes] | None", grace: float = 20.0) -> None:
    """SIGTERM, and SIGKILL if the process has not ended after `grace` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
