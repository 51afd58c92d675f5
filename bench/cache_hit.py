"""The response cache against bare FastAPI, interleaved in one run (issue 23, target 4).

    .venv/bin/python -m bench.cache_hit [--database-url URL] [--rounds 5] [--duration 5]
                                        [--baseline DIR]

Starts bare FastAPI (`bench/bare_app.py`) and the API with its response cache on (1 worker
each, as `bench/run` serves them), then, round after round, drives with wrk: bare /ping, one
popular page answered from the cache, and the same page with `If-None-Match` (a 304). It prints
each round's req/s and the ratios to bare (the mean of the bare runs before and after), then
their medians: rounds alternate so that other work on the machine touches all alike. It also
prints the server's CPU time per request, which other work on a shared machine disturbs far
less than req/s: bare's CPU per request over the API's is the ratio on an idle core.
`--baseline DIR` also serves the API from another checkout (a worktree of main, say) and
measures it in the same rounds, for an A/B of a change.
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
    parser.add_argument("--baseline", help="another checkout whose app to measure alongside")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args(argv)

    bare = runner.bare_server(1)
    apis = {"api": runner.api_server("api-cache-hit", args.database_url, 1, cache=True)}
    if args.baseline:
        base = runner.api_server("api-cache-hit-baseline", args.database_url, 1, cache=True)
        base.cmd = [*base.cmd, "--app-dir", args.baseline]
        apis["baseline"] = base
    servers = [bare, *apis.values()]
    for server in servers:
        server.start()
    try:
        etags = {}
        for name, api in apis.items():
            first = httpx.get(api.url(args.path), timeout=60)
            first.raise_for_status()
            etags[name] = first.headers["etag"]
            again = httpx.get(api.url(args.path), headers={"If-None-Match": etags[name]})
            assert again.status_code == 304, again.status_code  # noqa: S101 - a broken setup
            runner.say(f"{name}: page of {len(first.content):,} bytes, ETag {etags[name]}")

        cpu: dict[str, list[float]] = {}

        def run(
            server: runner.Server, path: str, header: str | None = None, label: str = ""
        ) -> float:
            assert server.proc is not None  # noqa: S101 - started above
            used = runner.tree_cpu_seconds(server.proc.pid)
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
            used = runner.tree_cpu_seconds(server.proc.pid) - used
            if label:
                cpu.setdefault(label, []).append(used / max(1, int(result["requests"])) * 1e6)
            return float(result["rps"])

        run(bare, "/ping")  # warm every server
        for api in apis.values():
            run(api, args.path)
        ratios: dict[str, list[float]] = {}
        for n in range(1, args.rounds + 1):
            before = run(bare, "/ping", label="bare")
            line = []
            measured = {}
            for name, api in apis.items():
                measured[f"{name} hit"] = run(api, args.path, label=f"{name} hit")
                measured[f"{name} 304"] = run(
                    api, args.path, f"If-None-Match: {etags[name]}", label=f"{name} 304"
                )
            after = run(bare, "/ping", label="bare")
            mean = (before + after) / 2
            for label, rps in measured.items():
                ratios.setdefault(label, []).append(rps / mean)
                line.append(f"{label} {rps:,.0f} ({rps / mean:.2f}x)")
            runner.say(f"round {n}: bare {before:,.0f}/{after:,.0f}  " + "  ".join(line))
        for label, values in ratios.items():
            runner.say(
                f"median {label}: {statistics.median(values):.2f}x bare"
                f" (range {min(values):.2f}-{max(values):.2f})"
            )
        bare_cpu = statistics.median(cpu["bare"])
        for label, values in cpu.items():
            per = statistics.median(values)
            runner.say(
                f"CPU per request, {label}: median {per:.0f} us"
                f" (range {min(values):.0f}-{max(values):.0f}); bare/this {bare_cpu / per:.2f}"
            )
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
