"""Slow and oversized requests stop at nginx (deploy/nginx/proxy.conf), in front of the cluster's
replicas: uvicorn itself has no timeout for reading headers and takes a 16 MB header.

The timeouts are nginx's own (10 s for headers and for the body); the tests wait for them with
generous deadlines and never assert how fast anything was.
"""

import socket
import threading
import time
from pathlib import Path

import httpx

from tests.cluster.conftest import Cluster
from tests.cluster.nginx import DEPLOY, check
from tests.helpers import assert_problem
from tests.live import free_port

SLOW_CONNECTIONS = 50


def trickle(port: int, opened: list[socket.socket], stop: threading.Event) -> None:
    """A slowloris client: a request line, then one header line every 2 s, never the end."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    opened.append(sock)
    try:
        sock.sendall(b"GET /v1/timeline HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        n = 0
        while not stop.wait(2):
            sock.sendall(f"X-Slow-{n}: {'a' * 10}\r\n".encode())
            n += 1
    except OSError:
        pass  # nginx closed it: what we want


def closed(sock: socket.socket) -> bool:
    sock.settimeout(0.1)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slowloris_connections_do_not_stop_normal_requests(cluster: Cluster) -> None:
    assert cluster.proxy is not None
    opened: list[socket.socket] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=trickle, args=(cluster.proxy.port, opened, stop), daemon=True)
        for _ in range(SLOW_CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(opened) < SLOW_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(opened) == SLOW_CONNECTIONS
        # Normal clients are served meanwhile, by both replicas.
        with httpx.Client(base_url=cluster.proxy.base_url, timeout=30) as http:
            for _ in range(20):
                response = http.get("/v1/timeline?limit=5", headers=cluster.auth())
                assert response.status_code == 200, response.text
        # And nginx drops every trickling connection after its header timeout.
        deadline = time.monotonic() + 60
        while not all(closed(sock) for sock in opened):
            assert time.monotonic() < deadline, "slow connections were kept open"
            time.sleep(0.5)
    finally:
        stop.set()
        for sock in opened:
            sock.close()


def test_a_slow_body_is_dropped(cluster: Cluster) -> None:
    assert cluster.proxy is not None
    with socket.create_connection(("127.0.0.1", cluster.proxy.port), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        deadline = time.monotonic() + 60
        while not closed(sock):
            assert time.monotonic() < deadline, "a body that stopped arriving was waited for"
            time.sleep(0.5)


def test_oversized_headers_and_bodies_are_refused_as_problems(cluster: Cluster) -> None:
    assert cluster.proxy is not None
    with httpx.Client(base_url=cluster.proxy.base_url, timeout=30) as http:
        # One header of 16 MB, which uvicorn alone accepts; and one just over nginx's 8 KiB.
        for size in (16 * 1024 * 1024, 9 * 1024):
            response = http.get("/v1/timeline", headers={"X-Big": "a" * size})
            body = assert_problem(response, 431)
            assert body["type"].endswith("/headers-too-large")
        big = http.post(
            "/v1/events",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={**cluster.auth(), "Content-Type": "application/json"},
        )
        assert_problem(big, 413)
        # What a client sends as X-Forwarded-For is replaced by its real address.
        spoofed = http.get("/v1/categories", headers={"X-Forwarded-For": "198.51.100.200"})
        assert spoofed.status_code == 200
    log = cluster.replicas["a"].log() + cluster.replicas["b"].log()
    assert '"client_ip":"198.51.100.200"' not in log


def test_the_compose_proxy_configuration_passes_nginx_t(tmp_path: Path) -> None:
    """deploy/nginx/nginx.conf as compose.yaml mounts it, with the includes pointed at the
    repository and the replicas' names (which only resolve inside Compose) at local ports."""
    text = (DEPLOY / "nginx.conf").read_text()
    assert "/etc/nginx/timeline/" in text and "api-a:8000" in text and "api-b:8000" in text
    text = text.replace("/etc/nginx/timeline/", f"{DEPLOY}/")
    text = text.replace("api-a:8000", f"127.0.0.1:{free_port()}")
    text = text.replace("api-b:8000", f"127.0.0.1:{free_port()}")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    checked = check(config, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
