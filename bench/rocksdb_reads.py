"""What one read of a worker's RocksDB state costs, by Bloom filter bits per key.

The state tables are read by key for every event (an id, a lead, a contract), and most
such reads look for a key that is not there yet. RocksDB answers those from a Bloom
filter when the filter rules the key out; Faust's default filter has 3 bits a key, the
worker's tables 10 (streams.pipeline.log_table.BLOOM_BITS_PER_KEY). For each setting
this writes --keys keys (120-byte values) into a database sized like the ledger's
(write buffers of 8 MiB, a 16 MiB block cache), then times --reads reads of keys that
are there (hit) and keys that are not (miss), and prints the mean per read and the
ratio to the first setting's. No broker, no worker; about a minute:

    .venv/bin/python -m bench.rocksdb_reads
    .venv/bin/python -m bench.rocksdb_reads --keys 2000000 --bits 3 10 16
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import rocksdict

from streams.pipeline.log_table import MIB, ROCKSDB_OPTIONS

VALUE = b"v" * 120


def key(number: int) -> bytes:
    return b"ledger.leads\x00%012d" % number


def options(bits_per_key: int) -> rocksdict.Options:
    found = rocksdict.Options(raw_mode=True)
    found.create_if_missing(True)
    found.set_write_buffer_size(ROCKSDB_OPTIONS["write_buffer_size"])
    found.set_max_write_buffer_number(ROCKSDB_OPTIONS["max_write_buffer_number"])
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(bits_per_key, True)
    table.set_block_cache(rocksdict.Cache(ROCKSDB_OPTIONS["block_cache_size"]))
    found.set_block_based_table_factory(table)
    return found


def mean_read_us(db: rocksdict.Rdict, keys: list[bytes]) -> float:
    started = time.perf_counter()
    for wanted in keys:
        db.get(wanted)
    return (time.perf_counter() - started) / len(keys) * 1e6


def measure(
    bits_per_key: int, keys: int, reads: int, seed: int, where: Path
) -> tuple[float, float]:
    """Mean microseconds of a hit and of a miss."""
    rng = random.Random(seed)
    path = where / f"bits-{bits_per_key}"
    db = rocksdict.Rdict(str(path), options=options(bits_per_key))
    try:
        for number in range(keys):
            db[key(2 * number)] = VALUE  # even numbers are there, odd ones are not
        db.flush()
        hits = [key(2 * rng.randrange(keys)) for _ in range(reads)]
        misses = [key(2 * rng.randrange(keys) + 1) for _ in range(reads)]
        return mean_read_us(db, hits), mean_read_us(db, misses)
    finally:
        db.close()
        shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rocksdb_reads",
        description="mean RocksDB read of a present and an absent key, by Bloom bits per key",
    )
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys written (1000000)")
    parser.add_argument("--reads", type=int, default=200_000, help="reads timed of each kind")
    parser.add_argument("--bits", type=int, nargs="+", default=[3, 10], help="bits per key")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    buffer_mib = ROCKSDB_OPTIONS["write_buffer_size"] // MIB
    cache_mib = ROCKSDB_OPTIONS["block_cache_size"] // MIB
    print(f"rocksdb reads: {args.keys:,} keys, write buffers {buffer_mib} MiB, "
          f"block cache {cache_mib} MiB")  # fmt: skip
    print(f"  {'bits/key':>8}  {'hit us':>7}  {'miss us':>7}  {'hit ratio':>9}  {'miss ratio':>10}")
    first: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory(prefix="revpulse-rocksdb-") as where:
        for bits in args.bits:
            hit, miss = measure(bits, args.keys, args.reads, args.seed, Path(where))
            first = first or (hit, miss)
            print(f"  {bits:>8}  {hit:>7.2f}  {miss:>7.2f}  {hit / first[0]:>8.2f}x  "
                  f"{miss / first[1]:>9.2f}x", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
