"""Benchmark: trainer event → browser latency with 50 websocket watchers on one job.

    .venv/bin/python benchmarks/ws_fanout.py [--watchers 50] [--events 200] [--rate 20] [--rounds 5]

A throwaway installation (SQLite, private Redis, daphne as the run command starts it). The
job's owner and 49 TAs of its class log in (real sessions) and open `/ws/jobs/<id>/`; a second
process plays the worker: `jobs.tasks.JobReporter(job_id, attempt)(event)` for a running job,
which stores each event, then sends it through the channel layer. Each event carries its send
time; each client notes when it arrives (one machine, one clock). Rounds alternate with a
reference: the same events to a job that only its owner watches. Prints p50/p95/max, and the
events lost or received twice.
"""

import argparse
import asyncio
import base64
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import Stack, machine, make_class, percentile  # noqa: E402

SPEC = {"model": "logistic", "epochs": 1000, "input_size": 8}


class Socket:
    """The least websocket client that reads a server's text frames (RFC 6455)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str, path: str, cookie: str) -> "Socket":
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {url}\r\nCookie: sessionid={cookie}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise SystemExit(f"websocket refused: {head[:200]!r}")
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)  # a client masks every frame
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def messages(self):
        """Yield (arrival time, text) per message; answers pings; ends when the server closes."""
        read = self.reader.readexactly
        while True:
            first, second = await read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await read(8))[0]
            payload = await read(length)
            arrived = time.time()
            opcode = first & 0x0F
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                return
            elif opcode == 0x1:
                yield arrived, payload

    def close(self) -> None:
        self._send(0x8, struct.pack("!H", 1000))
        self.writer.close()


class Watcher:
    """One browser tab on a job: notes each event's latency and number."""

    def __init__(self, socket: Socket):
        self.socket = socket
        self.latency: dict[str, list[float]] = {}  # round → ms
        self.numbers: dict[str, list[int]] = {}  # round → the `i` of each event received
        self.replayed = asyncio.Event()

    async def listen(self) -> None:
        async for arrived, text in self.socket.messages():
            event = json.loads(text)
            sent = event.get("sent")
            if sent is None:  # the replay of the event stored before the rounds
                self.replayed.set()
                continue
            self.latency.setdefault(event["round"], []).append((arrived - sent) * 1000)
            self.numbers.setdefault(event["round"], []).append(event["i"])


def prepare(watchers: int) -> tuple[list[int], list[str]]:
    """Two running jobs (the reference and the measured one) and a session per watcher."""
    from django.test import Client
    from django.utils import timezone

    from webapp.datasets.models import Dataset
    from webapp.jobs.models import Job
    from webapp.jobs.tasks import JobReporter

    teacher, course, tas, students = make_class(1, tas=max(0, watchers - 1))
    owner = students[0]
    dataset = Dataset.objects.create(
        course=course, owner=teacher, name="digits", kind="classification", status="ready", head=1
    )
    now = timezone.now()
    jobs = [
        Job.objects.create(
            course=course,
            owner=owner,
            dataset=dataset,
            dataset_version=1,
            spec=SPEC,
            status="running",
            attempts=1,
            started_at=now,
            heartbeat_at=now,
        )
        for _ in range(2)
    ]
    for job in jobs:  # one stored event each: its replay tells a watcher it has joined
        JobReporter(job.pk, 1)({"kind": "log", "data": {"message": "ready"}})
    cookies = []
    for user in [owner, *tas]:
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    return [job.pk for job in jobs], cookies


EMITTER = r"""
import json, sys, time
import django
django.setup()
from webapp.jobs.tasks import JobReporter
job_id, events, rate, label = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
reporter = JobReporter(job_id, 1, epochs=events + 1)
calls = []
start = next_at = time.monotonic()
for i in range(events):
    data = {"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_acc": 0.5, "val_loss": 0.9,
            "val_acc": 0.6, "lr": 0.001, "seconds": 0.05, "round": label, "i": i}
    data["sent"] = time.time()
    began = time.perf_counter()
    reporter({"kind": "epoch", "seq": i + 1, "data": data})
    calls.append((time.perf_counter() - began) * 1000)
    next_at += 1 / rate
    time.sleep(max(0.0, next_at - time.monotonic()))
print(json.dumps({"calls": calls, "seconds": time.monotonic() - start}))
"""


async def emit(job_id: int, events: int, rate: float, label: str) -> dict:
    """The worker's side in its own process: store and send `events` events at `rate` per s."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        EMITTER,
        str(job_id),
        str(events),
        str(rate),
        label,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode:
        raise SystemExit(err.decode()[-3000:])
    return json.loads(out.decode().strip().splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(watchers: list[Watcher], label: str, events: int) -> dict:
    latencies = [ms for w in watchers for ms in w.latency.get(label, [])]
    lost = duplicates = 0
    for w in watchers:
        numbers = w.numbers.get(label, [])
        lost += events - len(set(numbers))
        duplicates += len(numbers) - len(set(numbers))
    return {
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": percentile(latencies, 95),
        "max": max(latencies, default=float("nan")),
        "messages": len(latencies),
        "lost": lost,
        "duplicates": duplicates,
    }


async def measure(url: str, daphne: int, job_ids: list[int], cookies: list[str], args) -> None:
    reference_job, job = job_ids

    async def watcher(job_id: int, cookie: str) -> Watcher:
        w = Watcher(await Socket.open(url, f"/ws/jobs/{job_id}/?after=0", cookie))
        w.task = asyncio.create_task(w.listen())
        return w

    alone = [await watcher(reference_job, cookies[0])]
    crowd = list(await asyncio.gather(*(watcher(job, cookie) for cookie in cookies)))
    await asyncio.wait_for(
        asyncio.gather(*(w.replayed.wait() for w in alone + crowd)), timeout=60
    )  # every consumer has joined its job's group
    print(f"{len(crowd)} watchers on job {job}, 1 on job {reference_job}; connected")
    rows = []
    for number in range(1, args.rounds + 1):
        row = {}
        for name, job_id, group in (("1 watcher", reference_job, alone), ("crowd", job, crowd)):
            label = f"{name}-{number}"
            cpu = cpu_seconds(daphne)
            sent = await emit(job_id, args.events, args.rate, label)
            await asyncio.sleep(1.0)  # the last events arrive
            cpu = cpu_seconds(daphne) - cpu
            row[name] = {**figures(group, label, args.events), "call": sent["calls"]}
            row[name]["daphne_cpu"] = cpu / sent["seconds"]  # cores busy
            row[name]["cpu_per_message"] = cpu * 1000 / max(1, row[name]["messages"])
        rows.append(row)
        one, many = row["1 watcher"], row["crowd"]
        print(
            f"round {number}: 1 watcher p50 {one['p50']:5.1f} ms, p95 {one['p95']:5.1f} ms | "
            f"{len(crowd)} watchers p50 {many['p50']:5.1f} ms, p95 {many['p95']:5.1f} ms, "
            f"max {many['max']:6.1f} ms, {many['messages']} messages, lost {many['lost']}, "
            f"twice {many['duplicates']} | store+send in the worker p50 "
            f"{statistics.median(many['call']):.1f} ms | daphne CPU {many['daphne_cpu']:.0%} of a "
            f"core, {many['cpu_per_message']:.2f} ms per message"
        )
    for w in alone + crowd:
        w.socket.close()
    one = [r["1 watcher"] for r in rows]
    many = [r["crowd"] for r in rows]
    median = statistics.median
    print(
        f"median of rounds, {len(crowd)} watchers, {args.events} events at {args.rate:g}/s: "
        f"p50 {median(r['p50'] for r in many):.1f} ms, p95 {median(r['p95'] for r in many):.1f} "
        f"ms (target < 250), max {max(r['max'] for r in many):.1f} ms; lost "
        f"{sum(r['lost'] for r in many)}, twice {sum(r['duplicates'] for r in many)}"
    )
    print(
        f"reference, 1 watcher: p50 {median(r['p50'] for r in one):.1f} ms, p95 "
        f"{median(r['p95'] for r in one):.1f} ms; store+send in the worker p50 "
        f"{median(median(r['call']) for r in many):.1f} ms, p95 "
        f"{median(percentile(r['call'], 95) for r in many):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--events", type=int, default=200, help="events per round")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args()
    print(machine())
    with Stack(keep=args.keep) as stack:
        job_ids, cookies = prepare(args.watchers)
        url = stack.start_daphne()
        daphne = next(proc.pid for name, proc in stack.children if name == "daphne")
        asyncio.run(measure(url, daphne, job_ids, cookies, args))


if __name__ == "__main__":
    main()
