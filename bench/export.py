"""Streamed CSV export: rows per second, uncompressed and gzipped, and the server's peak memory,
at two data sizes.

`python -m bench.export [--events 10000 100000] [--seed S] [--help]`

The export streams in batches, so the server's peak RSS should stay flat as the data grows;
this measures it on the running server as deployed (uvicorn, one worker, SQLite), reading the
whole response as a client would.
"""

import argparse
import json
import threading
import time
from typing import Any

import httpx

from bench.runner import OUT, api_server, ensure_data, say, sqlite_file, tree_rss_mb


def measure(n: int, seed: int) -> dict[str, Any]:
    db = sqlite_file(n, seed)
    ensure_data(f"sqlite:///{db}", db.with_suffix(".done"), n, seed)  # the marker bench/run uses
    server = api_server(f"export-{n}", f"sqlite:///{db}", workers=1)
    with server.running():
        if server.proc is None:
            raise RuntimeError("the server did not start")
        pid = server.proc.pid
        idle = tree_rss_mb(pid)
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss_mb(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # A small export first: a worker's first export starts its renderer process
        # (app/timeline/renderers.py), once per worker rather than per export.
        _download(server.url(WARM_UP), "identity")
        timed = {encoding: _download(server.url(PATH), encoding) for encoding in ENCODINGS}
        done.set()
        sampler.join()
    rows, size, _ = timed["identity"]
    result: dict[str, Any] = {"events": n, "rows": rows, "mb": round(size / 1e6, 1)}
    for encoding, (_, _, seconds) in timed.items():
        result[f"{encoding}_seconds"] = round(seconds, 2)
        result[f"{encoding}_rows_per_s"] = round(rows / seconds)
    result["server_idle_rss_mb"] = round(idle, 1)
    result["server_peak_rss_mb"] = round(peak, 1)
    return result


PATH = "/v1/timeline?format=csv"
WARM_UP = f"{PATH}&from=2025-04&to=2025-04"
# As curl and scripts ask by default, then as browsers and httpx do (the server compresses).
ENCODINGS = ("identity", "gzip")


def _download(url: str, encoding: str) -> tuple[int, int, float]:
    """Rows, uncompressed bytes and seconds of one whole export."""
    rows = size = 0
    started = time.perf_counter()
    headers = {"Accept-Encoding": encoding}
    with httpx.stream("GET", url, headers=headers, timeout=600) as response:
        response.raise_for_status()
        # Counting the CSV's CRLF row ends in the bytes: decoding and splitting lines in Python
        # held the client to a fraction of what the server sends (bench/README.md).
        last = b""
        for chunk in response.iter_bytes():
            # A row end split between two chunks counts too.
            rows += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
            size += len(chunk)
    return rows - 1, size, time.perf_counter() - started  # less the header


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument(
        "--events",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="data sizes to export, smallest first (default: 10000 100000)",
    )
    parser.add_argument("--seed", type=int, default=42, help="synthetic data seed (default 42)")
    args = parser.parse_args()
    results = []
    for n in args.events:
        say(f"export: {n:,} events")
        result = measure(n, args.seed)
        say(f"export: {json.dumps(result)}")
        results.append(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"export-{int(time.time())}.json").write_text(json.dumps(results, indent=2))
    first, last = results[0], results[-1]
    growth = last["server_peak_rss_mb"] / first["server_peak_rss_mb"]
    print(
        f"export: {last['rows']:,} rows at {last['identity_rows_per_s']:,} rows/s uncompressed,"
        f" {last['gzip_rows_per_s']:,} gzipped; server peak RSS "
        f"{first['server_peak_rss_mb']} MB at {first['events']:,} events and "
        f"{last['server_peak_rss_mb']} MB at {last['events']:,} ({growth:.2f}x)"
    )


if __name__ == "__main__":
    main()
