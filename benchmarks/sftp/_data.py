"""The remote files: XML invoices of 2-40 KB, a fixed seed, spread over a few directories."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

DIRECTORIES = 10
MIN_SIZE = 2_000
MAX_SIZE = 40_000
SEED = 17_000
MANIFEST = "manifest.json"
#: distinct record lines files are assembled from; drawing whole lines keeps generating 17,000
#: files (350 MB) to seconds, and the variety still defeats any cache keyed on content
RECORD_VARIANTS = 4_096


@dataclass(frozen=True)
class DataSet:
    root: Path
    #: absolute remote paths, in a fixed order (the order every row reads them in)
    paths: list[str]
    sizes: list[int]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def subset(self, count: int) -> DataSet:
        """The first ``count`` files: every directory is represented, since files alternate between them."""
        return DataSet(self.root, self.paths[:count], self.sizes[:count])


def _records(rng: random.Random) -> list[str]:
    lines = []
    for _ in range(RECORD_VARIANTS):
        note = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz ", k=rng.randint(20, 120)))
        lines.append(
            f"  <record><customer>C{rng.randint(1, 99_999):05d}</customer>"
            f"<amount>{rng.uniform(1, 5_000):.2f}</amount><note>{note}</note></record>\n"
        )
    return lines


def _document(rng: random.Random, number: int, records: list[str]) -> bytes:
    head = f'<?xml version="1.0"?>\n<invoices file="{number}">\n'
    tail = "</invoices>\n"
    target = rng.randint(MIN_SIZE, MAX_SIZE)
    # Records average ~190 bytes: draw a generous batch, keep what fits, pad the rest with a
    # comment so that the size is exactly the target.
    body, size = [], len(head) + len(tail)
    for line in rng.choices(records, k=target // 100):
        if size + len(line) > target - 8:
            break
        body.append(line)
        size += len(line)
    padding = "<!--" + " " * (target - size - 8) + "-->\n"
    return (head + "".join(body) + padding + tail).encode()


def generate(root: Path, count: int, *, seed: int = SEED) -> DataSet:
    """Write ``count`` files under ``root``; reuses what an earlier call wrote with the same arguments."""
    manifest = root / MANIFEST
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["count"] == count and saved["seed"] == seed:
            return DataSet(root, saved["paths"], saved["sizes"])
    rng = random.Random(seed)
    records = _records(rng)
    paths, sizes = [], []
    for number in range(count):
        directory = root / f"batch-{number % DIRECTORIES:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"invoice-{number:05d}.xml"
        content = _document(rng, number, records)
        path.write_bytes(content)
        paths.append(str(path))
        sizes.append(len(content))
    manifest.write_text(json.dumps({"count": count, "seed": seed, "paths": paths, "sizes": sizes}))
    return DataSet(root, paths, sizes)
