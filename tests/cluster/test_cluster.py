"""Two API replicas, two webhook workers, nginx, PostgreSQL and Redis, tested as one system
(tests/cluster/conftest.py starts them). The tests run in this file's order: the last ones kill
processes and cut the database off, and each leaves the cluster whole again for the next.

What "PostgreSQL restarted" means here: the server is shared with other work on this machine,
so the test cuts only its own database off, as tests/faults/ does (ALTER DATABASE … WITH
ALLOW_CONNECTIONS false and pg_terminate_backend of its sessions), which is what a restart looks
like to a client: every pooled connection dies and new ones are refused until it is back.
"""

import datetime as dt
import itertools
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import text

from tests.cluster.conftest import (
    ANONYMOUS_BUDGET,
    PATIENCE,
    WEBHOOK_CONCURRENCY,
    WINDOW_SECONDS,
    Cluster,
    admin_engine,
)
from tests.faults.conftest import cut_off, event_body, wait_for
from tests.helpers import assert_problem

DRONE = "2025-04-01-algeria-shoots-down-malian-drone"
TIMEOUT = 60.0


def clients(cluster: Cluster) -> tuple[httpx.Client, httpx.Client, httpx.Client]:
    a, b = cluster.replicas["a"].base_url, cluster.replicas["b"].base_url
    assert cluster.proxy is not None
    return (
        httpx.Client(base_url=a, timeout=TIMEOUT),
        httpx.Client(base_url=b, timeout=TIMEOUT),
        httpx.Client(base_url=cluster.proxy.base_url, timeout=TIMEOUT),
    )


def figure(name: str, value: float) -> None:
    """Durations worth knowing (docs/operations.md quotes them); never asserted."""
    sys.stdout.write(f"cluster figure: {name} = {value:.2f}\n")


def feed_end(http: httpx.Client) -> str:
    since = ""
    while True:
        page = http.get(
            "/v1/changes", params={"since": since, "limit": 1000} if since else {"limit": 1000}
        )
        assert page.status_code == 200, page.text
        since = page.json()["next_since"]
        if not page.json()["has_more"]:
            return since


def retitle(
    cluster: Cluster, http: httpx.Client, path: str, etag: str, title: str
) -> httpx.Response:
    """PATCH an event's title through `http`, as an editor holding the ETag `etag`."""
    return http.patch(
        path,
        json={"title": title},
        headers={
            **cluster.auth(),
            "If-Match": etag,
            "Content-Type": "application/merge-patch+json",
        },
    )


def test_a_write_through_a_is_read_through_b_at_once(cluster: Cluster) -> None:
    a, b, _ = clients(cluster)
    with a, b:
        path = f"/v1/events/{DRONE}"
        before = b.get(path)
        assert before.status_code == 200
        assert b.get(path).headers["etag"] == before.headers["etag"]  # now in B's response cache
        page_before = b.get("/v1/timeline", params={"from": "2025-04-01", "to": "2025-04-01"})
        since = feed_end(a)

        title = "Algeria shoots down a Malian drone (edited through replica A)"
        edited = retitle(cluster, a, path, before.headers["etag"], title)
        assert edited.status_code == 200, edited.text

        # B: no stale cached page, the new ETag, a 200 (not 304) for the old one.
        after = b.get(path)
        assert after.json()["title"] == title
        assert after.headers["etag"] != before.headers["etag"]
        version = int(edited.headers["etag"].strip('"'))
        assert after.headers["etag"].startswith(f'"{version}')
        revalidated = b.get(path, headers={"If-None-Match": before.headers["etag"]})
        assert revalidated.status_code == 200 and revalidated.json()["title"] == title
        page = b.get("/v1/timeline", params={"from": "2025-04-01", "to": "2025-04-01"})
        assert title in [item["title"] for item in page.json()["items"]]
        assert page.headers["etag"] != page_before.headers["etag"]

        # B's change feed has the write, and as_known_at agrees with it on either side.
        changes = b.get("/v1/changes", params={"since": since}).json()["items"]
        assert [(c["id"], c["version"]) for c in changes] == [(DRONE, version)]
        at = dt.datetime.fromisoformat(changes[0]["at"])
        assert changes[0]["data"]["title"] == title
        known = b.get(path, params={"as_known_at": at.isoformat()})
        assert known.json()["title"] == title
        earlier = (at - dt.timedelta(milliseconds=1)).isoformat()
        assert (
            b.get(path, params={"as_known_at": earlier}).json()["title"] == before.json()["title"]
        )


def test_reads_that_share_a_version_read_never_miss_a_write_through_a(cluster: Cluster) -> None:
    # B busy with cached reads from many clients at once, so they share reads of the data
    # version (app/responsecache.py, SharedRead): every read sent after A acknowledged a write
    # must show it, however the shared reads fell around the commit.
    a, b, _ = clients(cluster)
    path = f"/v1/events/{DRONE}"
    # Each reader stops when told to, or at most at its anonymous budget's worth of reads.
    readers, most = 8, ANONYMOUS_BUDGET - 10
    with a, b:
        before = b.get(path)
        assert before.status_code == 200
        title = before.json()["title"] + " (seen by every later read)"
        seen: list[tuple[float, str]] = []
        lock = threading.Lock()
        started = threading.Barrier(readers + 1)
        stop = threading.Event()

        def read(n: int) -> None:
            # An address of its own each (X-Forwarded-For, believed from 127.0.0.1), so the
            # reads fit in the anonymous budget.
            headers = {"X-Forwarded-For": f"203.0.113.{100 + n}"}
            with httpx.Client(base_url=b.base_url, timeout=TIMEOUT, headers=headers) as http:
                started.wait()
                for _ in range(most):
                    if stop.is_set():
                        return
                    sent = time.monotonic()
                    response = http.get(path)
                    assert response.status_code == 200, response.text
                    with lock:
                        seen.append((sent, response.json()["title"]))

        with ThreadPoolExecutor(readers) as pool:
            running = [pool.submit(read, n) for n in range(readers)]
            started.wait()
            wait_for(lambda: len(seen) >= readers * 4, PATIENCE, "reads before the write")
            edited = retitle(cluster, a, path, before.headers["etag"], title)
            acknowledged = time.monotonic()
            assert edited.status_code == 200, edited.text
            wait_for(
                lambda: sum(sent > acknowledged for sent, _ in seen) >= readers * 4,
                PATIENCE,
                "reads after the write",
            )
            stop.set()
            for done in running:
                done.result()
        later = [t for sent, t in seen if sent > acknowledged]
        assert later, "no read was sent after the write"
        assert set(later) == {title}
        assert before.json()["title"] in {t for sent, t in seen if sent < acknowledged}


def test_a_cursor_from_a_pages_on_b(cluster: Cluster) -> None:
    a, b, _ = clients(cluster)
    with a, b:
        query = {"state": "MLI", "limit": 5}
        first = a.get("/v1/timeline", params=query)
        assert first.status_code == 200
        cursor = first.json()["next_cursor"]
        assert cursor
        second = b.get("/v1/timeline", params={**query, "cursor": cursor})
        assert second.status_code == 200, second.text
        whole = b.get("/v1/timeline", params={**query, "limit": 10}).json()["items"]
        assert [e["id"] for e in first.json()["items"] + second.json()["items"]] == [
            e["id"] for e in whole
        ]


def test_the_rate_limit_budget_is_shared_exactly(cluster: Cluster) -> None:
    # A client of its own: an address nobody else uses (X-Forwarded-For, believed from
    # 127.0.0.1), its requests alternating between the replicas and nginx.
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 60:
        time.sleep(left + 0.5)
    a, b, proxy = clients(cluster)
    caller = {"X-Forwarded-For": "203.0.113.77"}
    with a, b, proxy:
        statuses: Counter[tuple[str, int]] = Counter()
        for n, http in zip(range(ANONYMOUS_BUDGET + 50), itertools.cycle((a, b))):
            response = http.get("/v1/categories", headers=caller)
            statuses[("ab"[n % 2], response.status_code)] += 1
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
        assert statuses[("a", 200)] + statuses[("b", 200)] == ANONYMOUS_BUDGET, statuses
        assert statuses[("a", 429)] + statuses[("b", 429)] == 50, statuses
        # Costs are shared too: facets (20 units) from a second address, half through each.
        other = {"X-Forwarded-For": "203.0.113.78"}
        facets = [http.get("/v1/timeline/facets", headers=other) for http in (a, b) * 6]
        assert [r.status_code for r in facets] == [200] * (ANONYMOUS_BUDGET // 20) + [429] * 2


def test_webhooks_reach_a_receiver_once_each_while_a_worker_is_killed(cluster: Cluster) -> None:
    a, b, _ = clients(cluster)
    count = 500
    with a, b:
        hook = a.post(
            "/v1/webhook-endpoints",
            json={"url": cluster.receiver.url("/cluster"), "event_types": ["event.created"]},
            headers=cluster.auth("hooks"),
        )
        assert hook.status_code == 201, hook.text
        ids = [f"2025-04-10-cluster-webhook-{n:03d}" for n in range(count)]
        created: list[str] = []
        killed = threading.Event()

        def create(n: int) -> None:
            http = (a, b)[n % 2]
            response = http.post("/v1/events", json=event_body(ids[n]), headers=cluster.auth())
            assert response.status_code == 201, response.text
            created.append(ids[n])
            if len(created) == count // 3 and not killed.is_set():
                killed.set()
                cluster.workers[0].kill()  # kill -9, mid-run
                cluster.worker(0)  # and restarted

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, range(count)))
        figure("500 events created through both replicas, s", time.monotonic() - started)
        assert killed.is_set() and len(created) == count

        def received() -> dict[str, list[str]]:
            by_event: dict[str, list[str]] = {}
            for r in cluster.receiver.at("/cluster"):
                message = json.loads(r.body)
                if message["type"] == "event.created":  # not the endpoint's webhook.ping
                    by_event.setdefault(message["data"]["id"], []).append(r.headers["webhook-id"])
            return by_event

        wait_for(lambda: len(received()) == count, PATIENCE, "not every event was delivered")
        figure("until the last of them was received, s", time.monotonic() - started)
        by_event = received()
        assert set(by_event) == set(ids)
        # One message per event, whatever the number of workers and replicas ...
        assert all(len(set(messages)) == 1 for messages in by_event.values())
        # ... received once each by a receiver that deduplicates on webhook-id, as
        # docs/webhooks.md tells receivers to. Sent twice at most for the deliveries the killed
        # worker had in flight: it sent them, but died before recording it.
        resent = sum(len(messages) - 1 for messages in by_event.values())
        figure("deliveries sent again after the kill", resent)
        assert resent <= WEBHOOK_CONCURRENCY
        gone = a.delete(f"/v1/webhook-endpoints/{hook.json()['id']}", headers=cluster.auth("hooks"))
        assert gone.status_code == 204


def test_replica_a_killed_under_write_load_loses_no_acknowledged_write(cluster: Cluster) -> None:
    _, b, proxy = clients(cluster)
    a_server = cluster.replicas["a"]
    acked: list[str] = []
    refused: list[httpx.Response] = []
    answers: Counter[int] = Counter()
    stop = threading.Event()
    lock = threading.Lock()
    numbers = itertools.count()

    def write() -> None:
        while not stop.is_set():
            event_id = f"2025-04-11-cluster-failover-{next(numbers):04d}"
            try:
                response = proxy.post(
                    "/v1/events", json=event_body(event_id), headers=cluster.auth()
                )
            except httpx.TransportError:
                continue
            with lock:
                answers[response.status_code] += 1
                if response.status_code == 201:
                    acked.append(event_id)
                else:
                    refused.append(response)

    with b, proxy:
        writers = [threading.Thread(target=write) for _ in range(4)]
        for thread in writers:
            thread.start()
        wait_for(lambda: len(acked) >= 20, PATIENCE, "the writers did not get going")
        assert a_server.process is not None
        a_server.process.kill()  # kill -9
        a_server.process.wait(timeout=10)
        killed_at = len(acked)
        wait_for(lambda: len(acked) >= killed_at + 40, PATIENCE, "B stopped taking writes")
        stop.set()
        for thread in writers:
            thread.join(timeout=PATIENCE)
        figure("writes acknowledged, of which after the kill", len(acked) - killed_at)
        figure("writes answered 503 by nginx while A died", answers[503])
        # A request A had when it died: nginx does not resend a POST, and says so.
        for response in refused:
            assert_problem(response, 503)
            assert int(response.headers["retry-after"]) == 5
        # Every acknowledged write is there, read through B.
        for event_id in acked:
            found = b.get(f"/v1/events/{event_id}", headers=cluster.auth())
            assert found.status_code == 200, (event_id, found.text)
        assert b.get("/readyz").status_code == 200
    # A comes back on its port, and nginx sends it requests again.
    cluster.replica("a", port=a_server.port)


def test_the_database_cut_off_and_back_during_read_load(cluster: Cluster) -> None:
    a, b, proxy = clients(cluster)
    pids = {name: s.process.pid for name, s in cluster.replicas.items() if s.process}
    answers: Counter[int] = Counter()
    failed: list[httpx.Response] = []
    stop = threading.Event()
    lock = threading.Lock()

    def read() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            # Keyed, so no response cache: every read needs the database.
            state = ("MLI", "DZA", "NER", "BFA")[n % 4]
            response = proxy.get(f"/v1/timeline?limit=5&state={state}", headers=cluster.auth())
            with lock:
                answers[response.status_code] += 1
                if response.status_code != 200:
                    failed.append(response)

    admin = admin_engine()
    with a, b, proxy:
        readers = [threading.Thread(target=read) for _ in range(4)]
        for thread in readers:
            thread.start()
        try:
            wait_for(lambda: answers[200] >= 20, PATIENCE, "the readers did not get going")
            cut_off(admin, cluster.name)
            cut = time.monotonic()
            wait_for(lambda: answers[503] >= 20, PATIENCE, "no 503 while the database was away")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{cluster.name}" WITH ALLOW_CONNECTIONS true'))
            admin.dispose()
        back = answers[200]
        wait_for(lambda: answers[200] >= back + 20, PATIENCE, "reads never recovered")
        figure("database away, then back to 20 good reads, s", time.monotonic() - cut)
        stop.set()
        for thread in readers:
            thread.join(timeout=PATIENCE)
        assert set(answers) == {200, 503}, answers
        for response in failed:  # the API's own problem, passed on by nginx
            body = assert_problem(response, 503)
            assert body["type"].endswith("/service-unavailable")
            assert int(response.headers["retry-after"]) > 0
        # Both replicas recovered by themselves: same processes, ready, answering.
        for http in (a, b):
            wait_for(
                lambda http=http: http.get("/readyz").status_code == 200, PATIENCE, "not ready"
            )
            assert http.get("/v1/timeline?limit=1", headers=cluster.auth()).status_code == 200
    assert {n: s.process.pid for n, s in cluster.replicas.items() if s.process} == pids
    assert all(
        s.process is not None and s.process.poll() is None for s in cluster.replicas.values()
    )
