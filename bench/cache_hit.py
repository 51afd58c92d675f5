"""The response cache against bare FastAPI, interleaved in one run (issue 23, target 4).

    .venv/bin/python -m bench.cache_hit [--database-url URL] [--rounds 5] [--duration 5]

Starts bare FastAPI (`bench/bare_app.py`) and the API with its response cache on (1 worker
each, as `bench/run` serves them), then, round after round, drives with wrk: bare /ping, one
popular page answered from the cache, and the same page with `If-None-Match` (a 304). It prints
each round's req/s and both ratios to bare, then their medians: rounds alternate so that other
work on the machine touches all three alike.
"""

import argparse
import statistics

import httpx

from bench import runner

POPULAR = "/v1/timeline?state=USA&from=2020"  # bench/runner.py's popular query


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=f"sqlite:///{runner.sqlite_file(1_000_000, 42)}",
        help="the API's database (default: the 1M SQLite data set of bench/run)",
    )
    parser.add_argument("--path", default=POPULAR, help=f"the popular page (default {POPULAR})")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args(argv)

    bare = runner.bare_server(1)
    api = runner.api_server("api-cache-hit", args.database_url, 1, cache=True)
    with bare.running(), api.running():
        first = httpx.get(api.url(args.path), timeout=60)
        first.raise_for_status()
        etag = first.headers["etag"]
        again = httpx.get(api.url(args.path), headers={"If-None-Match": etag}, timeout=60)
        assert again.status_code == 304, again.status_code  # noqa: S101 - a broken setup
        runner.say(f"page: {len(first.content):,} bytes, ETag {etag}")

        def run(server: runner.Server, path: str, header: str | None = None) -> float:
            result = runner.wrk(
                server,
                [path],
                conns=args.connections,
                seconds=args.duration,
                threads=args.threads,
                header=header,
                # Hits leave no backlog, and this machine is rarely idle enough for the wait.
                drain=False,
            )
            return float(result["rps"])

        run(bare, "/ping")  # warm both
        run(api, args.path)
        hits: list[float] = []
        not_modified: list[float] = []
        for n in range(1, args.rounds + 1):
            b = run(bare, "/ping")
            h = run(api, args.path)
            c = run(api, args.path, f"If-None-Match: {etag}")
            b2 = run(bare, "/ping")
            base = (b + b2) / 2
            hits.append(h / base)
            not_modified.append(c / base)
            runner.say(
                f"round {n}: bare {b:,.0f}/{b2:,.0f}  hit {h:,.0f} ({h / base:.2f}x)"
                f"  304 {c:,.0f} ({c / base:.2f}x)"
            )
        runner.say(
            f"median: hit {statistics.median(hits):.2f}x bare"
            f" (range {min(hits):.2f}-{max(hits):.2f}),"
            f" 304 {statistics.median(not_modified):.2f}x bare"
            f" (range {min(not_modified):.2f}-{max(not_modified):.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
