"""Generating the demo's remote files: XML documents of 2-40 KB with a fixed seed."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

MANIFEST = "manifest.json"


def generate(root: Path, count: int, *, seed: int = 17) -> dict[str, int]:
    """Write ``count`` XML files under ``root`` (in 10 folders); returns {path: records}.

    Reuses what an earlier call wrote with the same count and seed.
    """
    manifest_path = root / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("count") == count and manifest.get("seed") == seed:
            return dict(manifest["records"])
    shutil.rmtree(root, ignore_errors=True)  # no stale files from a run of another size
    root.mkdir(parents=True)
    rng = random.Random(seed)
    records: dict[str, int] = {}
    for n in range(count):
        folder = root / f"batch-{n % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"invoice-{n:06d}.xml"
        target = rng.randint(2_000, 40_000)
        parts = [f'<?xml version="1.0"?>\n<invoices file="{n}">\n']
        size = len(parts[0])
        index = 0
        while size < target:
            note = "x" * rng.randint(20, 120)
            line = (
                f'  <record id="{n}-{index}"><customer>C{rng.randint(1, 99999):05d}</customer>'
                f"<amount>{rng.uniform(1, 5000):.2f}</amount><note>{note}</note></record>\n"
            )
            parts.append(line)
            size += len(line)
            index += 1
        parts.append("</invoices>\n")
        path.write_text("".join(parts))
        records[str(path)] = index
    manifest_path.write_text(json.dumps({"count": count, "seed": seed, "records": records}))
    return records
