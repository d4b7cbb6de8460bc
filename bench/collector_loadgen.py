"""A bounded, loopback-only HTTP load generator for the collector benchmark.

Run as its own process (``python -m bench.collector_loadgen …``) so it does not share an
interpreter with the server it measures; it prints one JSON object on stdout. It never
imports Django.

Closed loop: ``--concurrency`` connections each send a request, wait for the whole
answer, then send the next, until ``--requests`` requests were sent or ``--duration``
seconds passed, whichever comes first. Every request is a ``POST`` of one collector batch
(``--events`` ``page_view`` events with fresh UUIDs, one anonymous visitor per request),
built before the clock starts. Connections are kept alive when the server allows it
(gunicorn's gthread worker) and reopened when it answers ``Connection: close`` (its sync
worker); the reconnect is part of that request's latency, as it would be for a client.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
PAGES = ("products/spectrometer", "solutions/lab-automation", "cases/pharma", "about", "blog")
SOURCES = (("baidu", "cpc"), ("wechat", "social"), ("zhihu", "referral"), ("email", "edm"))


def batch_body(key: str, events: int, rng: random.Random) -> bytes:
    """One collector request body: ``events`` page views of one anonymous visitor."""
    anonymous_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    items: list[dict[str, Any]] = []
    source, medium = rng.choice(SOURCES)
    referrer = f"https://www.{source}.com/"
    for n in range(events):
        url = f"https://www.example.cn/{PAGES[rng.randrange(len(PAGES))]}"
        items.append(
            {
                "id": str(uuid.uuid4()),
                "type": "page_view",
                "occurred_at": (now - timedelta(seconds=events - n)).isoformat(
                    timespec="milliseconds"
                ),
                "url": url,
                "referrer": referrer,
                "title": "华澜仪器 - 光谱与实验室自动化",
            }
        )
        if n == 0:  # campaign parameters come with the landing page; later pages are clicks
            items[0]["utm"] = {"source": source, "medium": medium, "campaign": "2024-expo"}
        referrer = url
    body = {"key": key, "anonymous_id": anonymous_id, "events": items}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def request_bytes(host: str, port: int, path: str, key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        "Content-Type: application/json\r\n"
        f"X-LeadLoop-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class ServerClosed(Exception):
    """The server closed a kept-alive connection before answering (retry on a new one)."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Read one HTTP/1.1 response; return (status, server closes the connection, body)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ServerClosed from exc
        raise
    lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = lines[0].split(" ", 2)
    length = 0
    close = version == "HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
    body = await reader.readexactly(length) if length else b""
    return int(status), close, body


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil
    return sorted_values[int(rank) - 1]


@dataclass
class StepResult:
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    requests_per_s: float = 0.0
    accepted: int = 0
    accepted_events_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    connections_opened: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    error_sample: str = ""
    answer_sample: str = ""


async def run_step(
    host: str,
    port: int,
    requests: list[bytes],
    concurrency: int,
    duration: float,
    events: int,
) -> StepResult:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    result = StepResult(concurrency=concurrency)
    next_index = 0
    samples: dict[int, bytes] = {}
    deadline = time.perf_counter() + duration

    async def client() -> None:
        nonlocal next_index
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while next_index < len(requests) and time.perf_counter() < deadline:
            payload = requests[next_index]
            next_index += 1
            started = time.perf_counter()
            for attempt in (1, 2):
                fresh = writer is None
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                        result.connections_opened += 1
                    assert reader is not None
                    writer.write(payload)
                    status, close, body = await read_response(reader)
                    break
                except (ServerClosed, ConnectionResetError, BrokenPipeError) as exc:
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    if fresh or attempt == 2:
                        result.errors += 1
                        result.error_sample = result.error_sample or repr(exc)
                        status, close, body = 0, True, b""
                        break
                    # A kept-alive connection the server had closed: one retry, same clock.
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            samples.setdefault(status, body[:300])
            if close and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    latencies.sort()
    result.requests = len(latencies)
    result.seconds = round(seconds, 3)
    result.requests_per_s = round(len(latencies) / seconds, 1)
    result.accepted = statuses.get(202, 0)
    result.accepted_events_per_s = round(result.accepted * events / seconds, 1)
    result.p50_ms = round(percentile(latencies, 50) * 1000, 2)
    result.p90_ms = round(percentile(latencies, 90) * 1000, 2)
    result.p99_ms = round(percentile(latencies, 99) * 1000, 2)
    result.max_ms = round(latencies[-1] * 1000, 2) if latencies else 0.0
    result.statuses = {str(k): v for k, v in sorted(statuses.items())}
    unexpected = sorted(k for k in samples if k != 202)
    if unexpected:
        status = unexpected[0]
        result.answer_sample = f"{status}: {samples[status].decode('utf-8', 'replace')}"
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.collector_loadgen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/v1/collect")
    parser.add_argument("--key", required=True, help="the site's public key")
    parser.add_argument("--events", type=int, default=10, help="events per request")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=10_000, help="at most this many")
    parser.add_argument("--duration", type=float, default=15.0, help="at most this long (s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Loopback only: this is a benchmark tool, not a way to load someone else's server.
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")
    if not (1 <= args.concurrency <= 256 and 1 <= args.requests <= 1_000_000):
        parser.error("need 1 ≤ --concurrency ≤ 256 and 1 ≤ --requests ≤ 1,000,000")
    if not 0 < args.duration <= 600:
        parser.error("need 0 < --duration ≤ 600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    built = time.perf_counter()
    bodies = [batch_body(args.key, args.events, rng) for _ in range(args.requests)]
    requests = [request_bytes(args.host, args.port, args.path, args.key, b) for b in bodies]
    build_s = time.perf_counter() - built
    result = asyncio.run(
        run_step(args.host, args.port, requests, args.concurrency, args.duration, args.events)
    )
    payload = asdict(result)
    payload["events_per_request"] = args.events
    payload["body_bytes_mean"] = round(sum(map(len, bodies)) / len(bodies))
    payload["build_s"] = round(build_s, 2)
    json.dump(payload, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
