"""``renkei bench bus``: authenticated request/reply against bare nats-py request/reply.

The caller runs in this process and the responder in a process of its own, as in the
stack; both measurements use the same nats-server, the same logins, the same payload and
the same number of requests in flight. The authenticated path is the full one: token,
per-request proof and its replay check, the allowlist, and pydantic validation of
request and reply on both sides. The bare path is nats-py's request and a responder that
answers with fixed bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from shared.bus import inbox_prefix
from shared.contracts import REGISTRY
from shared.contracts.system import PingRequest
from shared.trust import Principal, TrustDirectory

CITY = "112224"
SERVER = Principal("integrated_address", CITY)
CLIENT = Principal("health_mgmt", CITY)
PING = REGISTRY.operation("integrated_address", "ping")


async def _rate(call, total: int, in_flight: int) -> dict:
    latencies: list[float] = []
    remaining = iter(range(total))

    async def worker():
        for _ in remaining:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "round_trips_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 3),
    }


async def _serve(mode: str, url: str, data: Path) -> None:
    """The responder process: serve until stdin closes."""
    from renkei.testkit import make_bus
    from shared.service import answer_ping

    credentials = json.loads((data / "nats" / "credentials.json").read_text())
    user = f"{SERVER.service}-{CITY}"
    if mode == "authenticated":
        bus = make_bus(data, TrustDirectory.load(data), SERVER)
        await bus.connect(url, user, credentials[user])
        context = type("Ctx", (), {"principal": SERVER, "settings": type("S", (), {"service": SERVER.service, "city": CITY})()})()
        await bus.serve(PING, answer_ping(context), CITY)
        nc = bus.nc
    else:
        nc = await nats.connect(url, user=user, password=credentials[user], inbox_prefix=inbox_prefix(user))
        body = json.dumps({"service": SERVER.service, "city": CITY, "principal": str(SERVER), "caller": str(CLIENT), "nonce": "n"}).encode()

        async def answer(msg):
            await nc.publish(msg.reply, body)

        for _ in range(8):  # as many subscriptions as the bus uses
            await nc.subscribe(PING.subject(CITY), queue=SERVER.service, cb=answer)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await nc.close()


def _responder(mode: str, url: str, data: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bus", "--serve", mode, "--url", url, "--data", str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"the {mode} responder did not start")
    return process


async def _measure(mode: str, url: str, data: Path, total: int, in_flight: int) -> dict:
    from renkei.testkit import make_bus

    credentials = json.loads((data / "nats" / "credentials.json").read_text())
    user = f"{CLIENT.service}-{CITY}"
    request = PingRequest(nonce="n")
    if mode == "authenticated":
        bus = make_bus(data, TrustDirectory.load(data), CLIENT)
        await bus.connect(url, user, credentials[user])

        async def call():
            await bus.request(PING, CITY, request)

        close = bus.close
    else:
        nc = await nats.connect(url, user=user, password=credentials[user], inbox_prefix=inbox_prefix(user))
        payload, subject = request.model_dump_json().encode(), PING.subject(CITY)

        async def call():
            await nc.request(subject, payload, timeout=5)

        close = nc.close
    await _rate(call, min(500, total), in_flight)  # warm-up
    figures = await _rate(call, total, in_flight)
    await close()
    return figures


def run(quick: bool = False, total: int | None = None, in_flight: int = 16) -> dict:
    from renkei.testkit import NatsServer, SecuredStackFiles  # the same real parts the tests use

    total = total or (300 if quick else 10_000)
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        files = SecuredStackFiles(base / "data", [CITY])
        (base / "nats").mkdir()
        server = NatsServer(base / "nats", files.nats_config()).start()
        try:
            for mode in ("authenticated", "bare"):
                responder = _responder(mode, server.url, files.data_dir)
                try:
                    figures[mode] = asyncio.run(_measure(mode, server.url, files.data_dir, total, in_flight))
                finally:
                    responder.stdin.close()
                    responder.wait(timeout=10)
        finally:
            server.kill()
    ratio = figures["authenticated"]["round_trips_per_s"] / figures["bare"]["round_trips_per_s"]
    return {
        "benchmark": "bus",
        "requests": total,
        "in_flight": in_flight,
        **figures,
        "ratio": round(ratio, 3),
        "target": {"ratio": ">= 0.5"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["authenticated", "bare"])
    parser.add_argument("--url")
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.url, args.data))
    else:
        print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
