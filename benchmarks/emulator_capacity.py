"""Raw capacity of the Firestore emulator on this machine, with the bare client.

    uv run python benchmarks/emulator_capacity.py --emulator-host 127.0.0.1:8086

What any library on top of it could reach at most, so that drain rates can be read as a
share of the machine's limit (``benchmarks/drain.py`` runs it in the same run):

* ``serial_creates_per_s``: one ``document().create()`` per request, one after the
  other (what one enqueueing process does per task);
* ``batched_writes_per_s``: ``create`` writes committed 500 per batch (the most
  documents a commit may hold);
* ``claims_per_s``: the claim pattern of a worker, in a loop until the collection is
  drained: a query for up to ``--chunk`` READY documents, then one batch that updates
  each of them on the condition that it is unchanged since the read (``last_update_time``),
  so documents claimed per second (``claim_commits_per_s``: batches per second).

Each figure uses a fresh project id on the emulator and no django_tasks_fs code. Without
``--emulator-host`` the script starts its own emulator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Documents in one batched commit (Firestore's limit per commit).
BATCH = 500
#: Fields of every document: about the size of an execution's queue fields.
FIELDS = {"status": "READY", "queue": "default", "priority": 0, "payload": "x" * 200}


def _client(host: str, project: str) -> Any:
    import os

    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    from google.cloud import firestore

    return firestore.Client(project=project)


def serial_creates(host: str, count: int) -> float:
    """Documents created per second, one request each."""
    client = _client(host, f"cap-serial-{uuid.uuid4().hex[:8]}")
    collection = client.collection("docs")
    collection.document("warm").create(FIELDS)
    start = time.perf_counter()
    for _ in range(count):
        collection.document().create(FIELDS)
    return count / (time.perf_counter() - start)


def _fill(collection: Any, client: Any, count: int) -> float:
    """Create ``count`` documents in commits of BATCH; return the seconds it took."""
    start = time.perf_counter()
    done = 0
    while done < count:
        batch = client.batch()
        for _ in range(min(BATCH, count - done)):
            batch.create(collection.document(), FIELDS)
            done += 1
        batch.commit()
    return time.perf_counter() - start


def batched_writes(host: str, count: int) -> float:
    """Documents created per second, BATCH per commit."""
    client = _client(host, f"cap-batch-{uuid.uuid4().hex[:8]}")
    collection = client.collection("docs")
    collection.document("warm").create(FIELDS)
    return count / _fill(collection, client, count)


def claims(host: str, count: int, chunk: int) -> tuple[float, float]:
    """(documents claimed per second, claim commits per second) until none is READY."""
    from google.cloud import firestore

    client = _client(host, f"cap-claim-{uuid.uuid4().hex[:8]}")
    collection = client.collection("docs")
    _fill(collection, client, count)
    ready = collection.where(filter=firestore.FieldFilter("status", "==", "READY"))
    claimed = commits = 0
    start = time.perf_counter()
    while True:
        snapshots = list(ready.limit(chunk).stream())
        if not snapshots:
            break
        batch = client.batch()
        for snapshot in snapshots:
            option = client.write_option(last_update_time=snapshot.update_time)
            batch.update(snapshot.reference, {"status": "RUNNING"}, option=option)
        batch.commit()
        claimed += len(snapshots)
        commits += 1
    elapsed = time.perf_counter() - start
    if claimed != count:
        raise RuntimeError(f"claimed {claimed} documents, expected {count}")
    return claimed / elapsed, commits / elapsed


def measure(host: str, *, serial: int, batched: int, claim: int, chunk: int) -> dict[str, Any]:
    """Every figure once, on ``host``."""
    claims_per_s, commits_per_s = claims(host, claim, chunk)
    return {
        "serial_creates_per_s": round(serial_creates(host, serial), 1),
        "batched_writes_per_s": round(batched_writes(host, batched), 1),
        "claims_per_s": round(claims_per_s, 1),
        "claim_commits_per_s": round(commits_per_s, 1),
        "serial_creates": serial,
        "batched_writes": batched,
        "claimed": claim,
        "chunk": chunk,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--emulator-host", help="HOST:PORT of a running emulator")
    parser.add_argument("--serial", type=int, default=1000, help="serial creates (1000)")
    parser.add_argument("--batched", type=int, default=5000, help="batched creates (5000)")
    parser.add_argument("--claim", type=int, default=2000, help="documents to claim (2000)")
    parser.add_argument("--chunk", type=int, default=50, help="documents per claim (50)")
    args = parser.parse_args(argv)
    options = {
        "serial": args.serial,
        "batched": args.batched,
        "claim": args.claim,
        "chunk": args.chunk,
    }
    if args.emulator_host:
        print(json.dumps(measure(args.emulator_host, **options)))
        return 0
    from django_tasks_fs.emulators.firestore import FirestoreEmulator

    with FirestoreEmulator() as emulator:
        print(json.dumps(measure(emulator.host, **options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
