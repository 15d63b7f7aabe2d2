"""Large answers streamed to files and object storage: never whole in memory, atomic, never through a link."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from devtools.http_server import HTTPTestServer, large_body_sha256

from airflow_iterate._core import is_permanent_error
from airflow_iterate.http import (
    HTTPClient,
    HTTPClientUsageError,
    HTTPDownloadError,
    HTTPStatusError,
    HTTPTransportError,
    download_file,
    download_to_storage,
)

from ._util import run

LARGE = 200 * 1024 * 1024


class RssPeak:
    """The largest RSS of this process, sampled every 10 ms in a thread."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".partial"))


@pytest.mark.slow
def test_a_200_mb_answer_streams_to_a_file_with_bounded_memory(
    http_server: HTTPTestServer, make_connection: Callable[..., str], tmp_path: Path
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> Path:
        async with HTTPClient(conn_id) as client:
            return await download_file(client, f"large?size={LARGE}", tmp_path / "out", name="big.bin")

    with RssPeak() as rss:
        written = run(main())
    assert written == tmp_path / "out" / "big.bin" and written.stat().st_size == LARGE
    assert _sha256(written) == large_body_sha256(LARGE)
    # the body is 200 MiB; the client holds a few chunks of 256 KiB at a time
    assert rss.growth_mib < 64, f"the test process grew by {rss.growth_mib:.0f} MiB"
    assert _leftovers(tmp_path) == []


def test_a_download_cut_short_leaves_nothing_behind(
    make_server: Callable[..., HTTPTestServer], make_connection: Callable[..., str], tmp_path: Path
) -> None:
    server = make_server()
    conn_id = make_connection(server)
    (tmp_path / "big.bin").write_bytes(b"the previous version")

    async def cut_in_the_middle() -> HTTPTransportError:
        async with HTTPClient(conn_id) as client:
            killer = threading.Timer(0.3, server.kill)  # a 20 GB answer never ends in 0.3 s
            killer.start()
            try:
                with pytest.raises(HTTPTransportError) as caught:
                    await download_file(client, f"large?size={20 * 1024**3}", tmp_path, name="big.bin")
            finally:
                killer.join()
            return caught.value

    error = run(cut_in_the_middle())
    assert error.sent and not is_permanent_error(error) and "answer was cut short" in str(error)
    assert (tmp_path / "big.bin").read_bytes() == b"the previous version"  # untouched
    assert _leftovers(tmp_path) == []


def test_streams_read_as_they_arrive_and_error_statuses_raise_before_the_block(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)
    size = 3 * 1024 * 1024 + 7

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            digest = hashlib.sha256()
            async with client.stream("GET", f"large?size={size}") as stream:
                assert (stream.status, stream.content_length) == (200, size)
                sizes = []
                async for chunk in stream.iter_chunks(65536):
                    sizes.append(len(chunk))
                    digest.update(chunk)
            assert max(sizes) <= 65536 and sum(sizes) == size
            assert digest.hexdigest() == large_body_sha256(size)
            with pytest.raises(HTTPStatusError, match="404"):
                async with client.stream("GET", "records/0"):
                    raise AssertionError("not reached")
            assert client.statistics().in_flight == 0

    run(main())


def test_links_never_take_a_download_out_of_its_directory(
    http_server: HTTPTestServer, make_connection: Callable[..., str], tmp_path: Path
) -> None:
    conn_id = make_connection(http_server)
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (outside / "victim.bin").write_bytes(b"keep me")
    (target / "linked.bin").symlink_to(outside / "victim.bin")
    (target / "sub").symlink_to(outside)

    async def main() -> list[HTTPDownloadError]:
        errors = []
        async with HTTPClient(conn_id) as client:
            for name in ("linked.bin", "sub/victim.bin", "sub/new.bin"):
                with pytest.raises(HTTPDownloadError, match="is a symbolic link") as caught:
                    await download_file(client, "large?size=1000", target, name=name)
                errors.append(caught.value)
        return errors

    errors = run(main())
    assert all(is_permanent_error(e) and e.target.startswith(str(target)) for e in errors)
    assert (outside / "victim.bin").read_bytes() == b"keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.bin"]
    assert _leftovers(tmp_path) == []


def test_names_come_from_the_url_or_are_checked(
    http_server: HTTPTestServer, make_connection: Callable[..., str], tmp_path: Path
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            written = await download_file(client, "records/7", tmp_path)
            assert written == tmp_path / "7" and written.read_bytes().startswith(b'{"id":7,')
            nested = await download_file(client, "records/8", tmp_path, name="2026/12/eight.json")
            assert nested == tmp_path / "2026" / "12" / "eight.json" and nested.is_file()
            for bad in ("../escape.json", "/etc/passwd", "a//b", "a/./b"):
                with pytest.raises(HTTPClientUsageError, match="relative path"):
                    await download_file(client, "records/7", tmp_path, name=bad)
            with pytest.raises(HTTPClientUsageError, match="pass name="):
                await download_file(client, "/", tmp_path)
            with pytest.raises(HTTPStatusError):
                await download_file(client, "records/0", tmp_path, name="missing.json")

    run(main())
    assert not (tmp_path / "missing.json").exists() and _leftovers(tmp_path) == []
    assert not (tmp_path.parent / "escape.json").exists()


def test_download_to_object_storage(
    http_server: HTTPTestServer, make_connection: Callable[..., str], tmp_path: Path
) -> None:
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    attach(protocol="memory", fs=fsspec.filesystem("memory"))
    conn_id = make_connection(http_server)
    size = 5 * 1024 * 1024 + 3

    async def main() -> tuple[object, object]:
        async with HTTPClient(conn_id) as client:
            in_memory = await download_to_storage(
                client, f"large?size={size}", ObjectStoragePath("memory://bucket/in/"), name="big.bin"
            )
            on_disk = await download_to_storage(
                client, "records/9", ObjectStoragePath(f"file://{tmp_path}/landing/"), name="9.json"
            )
            return in_memory, on_disk

    in_memory, on_disk = run(main())
    assert str(in_memory) == "memory://bucket/in/big.bin"
    assert hashlib.sha256(in_memory.read_bytes()).hexdigest() == large_body_sha256(size)  # type: ignore[attr-defined]
    assert [str(p) for p in ObjectStoragePath("memory://bucket/in/").iterdir()] == [
        "memory://bucket/in/big.bin"
    ]
    assert (tmp_path / "landing" / "9.json").read_bytes().startswith(b'{"id":9,')
    assert str(on_disk).endswith("/landing/9.json")
    assert os.listdir(tmp_path / "landing") == ["9.json"]
