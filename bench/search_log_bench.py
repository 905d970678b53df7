"""What the search log costs per search, by how many records one write transaction carries.

    .venv/bin/python -m bench.search_log_bench [--uri bolt://127.0.0.1:7687]
        [--home .tunegraph/neo4j]

Reads up to 1,000 logged searches back from the store (run a load benchmark or the simulator
first), writes copies of them under new ids through `EventLog._write` in batches of 1, 2, 4, 12,
and 500 records, and prints Neo4j's CPU (from /proc, every thread of the server under `--home`)
and this process's CPU per record; the copies are deleted after each size. The service's writer
batches whatever arrives within `api.eventlog.FLUSH_S`, so at a given search rate this table says
what that window costs.
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

import msgspec

from api.eventlog import EventLog
from bench.search_cost import Meter, tree
from graph import server
from graph.neo4j_store import Neo4jStore

SIZES = (1, 2, 4, 12, 500)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default="bolt://127.0.0.1:7687")
    ap.add_argument("--home", type=Path, default=Path(".tunegraph/neo4j"))
    args = ap.parse_args()
    found = server.status(args.home)
    if found is None:
        raise SystemExit(f"no Neo4j is running under {args.home}")
    store = Neo4jStore.connect(args.uri)
    events = EventLog(store)
    records = events.searches(limit=1_000)
    if not records:
        raise SystemExit("no searches logged yet: run bench.load_bench or the simulator first")
    size = sum(len(msgspec.json.encode(r)) for r in records) / len(records)
    print(f"{len(records)} logged searches, {size:,.0f} bytes a record\n")
    print("| records a transaction | Neo4j CPU ms a record | API CPU ms a record |")
    print("|---:|---:|---:|")
    meter = Meter(tree(found.pid), lambda: [os.getpid()])  # Neo4j and its children; us
    for batch in SIZES:
        copies = [msgspec.structs.replace(r, search_id=f"bench-{uuid.uuid4().hex}")
                  for r in records]
        batches = [copies[i:i + batch] for i in range(0, len(copies), batch)]
        own, db, _, _ = meter.run(events._write, batches)  # ms a call, i.e. a transaction
        per = len(batches) / len(copies)
        print(f"| {batch} | {db * per:.2f} | {own * per:.2f} |")
        store.driver.execute_query("MATCH (s:Search) WHERE s.id STARTS WITH 'bench-' DELETE s",
                                   database_=store.database)
    store.close()


if __name__ == "__main__":
    main()
