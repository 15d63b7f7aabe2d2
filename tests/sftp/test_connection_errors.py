"""Connecting goes wrong in the ways deployments get it wrong; each error names the connection and the fix."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from airflow.sdk import BaseHook, Connection
from devtools.sshd import SSHServer, current_user, free_loopback_port

from airflow_iterate import IterateError
from airflow_iterate._core import is_permanent_error
from airflow_iterate.sftp import SFTPConnectError, SFTPPool, SyncSFTPPool
from airflow_iterate.sftp._connect import open_connection
from airflow_iterate.sftp._settings import default_ciphers, load_settings

from ._util import run


def borrow(pool_or_conn: SFTPPool | str, **options: Any) -> None:
    async def main() -> None:
        pool = pool_or_conn if isinstance(pool_or_conn, SFTPPool) else SFTPPool(pool_or_conn, **options)
        async with pool, pool.client() as sftp:
            await sftp.realpath(".")

    run(main())


def borrow_sync(conn_id: str) -> None:
    with SyncSFTPPool(conn_id) as pool, pool.client() as sftp:
        sftp.normalize(".")


def other_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


@pytest.fixture(params=["async", "sync"])
def connect(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Both pools read connections the same way and explain failures the same way."""
    return borrow if request.param == "async" else borrow_sync


def test_wrong_client_key(sshd: SSHServer, make_connection: Callable[..., str], connect: Any) -> None:
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    conn_id = make_connection(sshd, private_key=wrong, look_for_keys="false")
    with pytest.raises(SFTPConnectError) as info:
        connect(conn_id)
    message = str(info.value)
    assert conn_id in message and "refused the login of user 'root'" in message
    assert "`private_key`" in message
    assert info.value.conn_id == conn_id and not info.value.transient
    assert isinstance(info.value, IterateError)
    assert is_permanent_error(info.value)  # an item's retry would be refused the same way


def test_unknown_host_key(
    sshd: SSHServer, make_connection: Callable[..., str], tmp_path: Path, connect: Any
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    conn_id = make_connection(sshd, host_key=None, known_hosts=str(known_hosts))
    with pytest.raises(SFTPConnectError) as info:
        connect(conn_id)
    message = str(info.value)
    assert conn_id in message and "is not trusted" in message and str(known_hosts) in message
    # the key the server showed, so that it can be checked and pinned
    assert sshd.host_key.get_fingerprint() in message
    assert "`host_key`" in message and "no_host_key_check" in message
    assert is_permanent_error(info.value)


def test_host_key_from_known_hosts_file(
    sshd: SSHServer, make_connection: Callable[..., str], tmp_path: Path, connect: Any
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {sshd.host_public_key}\n")
    connect(make_connection(sshd, host_key=None, known_hosts=str(known_hosts)))


def test_changed_host_key(sshd: SSHServer, make_connection: Callable[..., str], connect: Any) -> None:
    conn_id = make_connection(sshd, host_key=other_key())
    with pytest.raises(SFTPConnectError, match=re.escape(conn_id)) as info:
        connect(conn_id)
    message = str(info.value)
    assert "does not match the `host_key` extra" in message
    assert sshd.host_key.get_fingerprint() in message
    assert is_permanent_error(info.value)


def test_no_host_key_check_must_be_explicit(
    sshd: SSHServer, make_connection: Callable[..., str], connect: Any
) -> None:
    connect(make_connection(sshd, host_key=None, no_host_key_check="true"))
    conn_id = make_connection(sshd, no_host_key_check="true")  # and a host_key: contradictory
    with pytest.raises(SFTPConnectError, match="remove one of them"):
        connect(conn_id)


def test_no_host_key_check_still_refuses_a_key_known_hosts_lists_differently(
    sshd: SSHServer, make_connection: Callable[..., str], tmp_path: Path, connect: Any
) -> None:
    """As SSHHook: no_host_key_check accepts hosts known_hosts does not list, not changed keys."""
    changed = tmp_path / "known_hosts"
    listed = f"[{sshd.host}]:{sshd.port} {other_key()}\n"
    changed.write_text(listed)
    conn_id = make_connection(sshd, host_key=None, known_hosts=str(changed), no_host_key_check="true")
    with pytest.raises(SFTPConnectError) as info:
        connect(conn_id)
    message = str(info.value)
    assert conn_id in message and sshd.host_key.get_fingerprint() in message
    assert f"is not the key {changed} lists for this host" in message and "allow_host_key_change" in message
    assert not info.value.transient

    # a host the file does not list, and the same host with its own key: accepted
    other_hosts = tmp_path / "other_hosts"
    other_hosts.write_text(f"[{sshd.host}]:{sshd.port + 1} {other_key()}\n")
    connect(make_connection(sshd, host_key=None, known_hosts=str(other_hosts), no_host_key_check="true"))
    right = tmp_path / "right_hosts"
    right.write_text(f"[{sshd.host}]:{sshd.port} {sshd.host_public_key}\n")
    connect(make_connection(sshd, host_key=None, known_hosts=str(right), no_host_key_check="true"))
    # and, as with SSHHook, allow_host_key_change lets a changed key through
    connect(
        make_connection(
            sshd,
            host_key=None,
            known_hosts=str(changed),
            no_host_key_check="true",
            allow_host_key_change="true",
        )
    )
    assert changed.read_text() == listed  # never written to


def test_refused_port(sshd: SSHServer, make_connection: Callable[..., str], connect: Any) -> None:
    class Closed:
        host = sshd.host
        port = free_loopback_port()

    conn_id = make_connection(sshd, via=Closed)
    with pytest.raises(SFTPConnectError) as info:
        connect(conn_id)
    assert f"{conn_id!r}" in str(info.value) and "connection refused" in str(info.value)
    assert info.value.transient and not is_permanent_error(info.value)


def test_missing_connection_id(connect: Any) -> None:
    with pytest.raises(
        SFTPConnectError, match=r"'no_such_sftp_conn' is not defined.*AIRFLOW_CONN_NO_SUCH"
    ) as info:
        connect("no_such_sftp_conn")
    assert is_permanent_error(info.value)


def test_unreadable_private_key(sshd: SSHServer, make_connection: Callable[..., str], connect: Any) -> None:
    conn_id = make_connection(sshd, private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    with pytest.raises(
        SFTPConnectError, match=rf"{conn_id}.*cannot load the key in the `private_key` extra"
    ) as info:
        connect(conn_id)
    assert is_permanent_error(info.value)


def test_key_file_extra(
    sshd: SSHServer, make_connection: Callable[..., str], tmp_path: Path, connect: Any
) -> None:
    key_file = tmp_path / "id"
    key_file.write_text(sshd.client_private_key)
    connect(make_connection(sshd, private_key=None, key_file=str(key_file)))


def test_every_waiting_borrower_gets_the_error(sshd: SSHServer, make_connection: Callable[..., str]) -> None:
    conn_id = make_connection(sshd, host_key=other_key())

    async def main() -> None:
        async with SFTPPool(conn_id) as pool:

            async def one() -> None:
                async with pool.client():
                    pass

            results = await asyncio.gather(*(one() for _ in range(20)), return_exceptions=True)
            assert all(isinstance(r, SFTPConnectError) for r in results)
            # one connection attempt answered all twenty; nothing is left queued or in use
            stats = pool.statistics()
            assert (stats.connect_failures, stats.waiting, stats.in_use, stats.connections) == (1, 0, 0, 0)

    run(main())


def test_an_already_fetched_connection(sshd: SSHServer) -> None:
    connection = Connection(
        conn_id="fetched_sftp",
        conn_type="sftp",
        host=sshd.host,
        port=sshd.port,
        login=current_user(),
        extra=json.dumps(sshd.connection_extra()),
    )
    borrow(SFTPPool(connection=connection))
    with SyncSFTPPool(connection=connection) as pool, pool.client() as sftp:
        assert sftp.normalize(".") == str(sshd.data_dir)


def test_the_connection_is_read_once_and_off_the_event_loop(
    conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's connection lookup is synchronous (a socket round trip in a task): never on the loop."""
    original = BaseHook.get_connection.__func__  # type: ignore[attr-defined]
    calls: list[str] = []

    def spy(cls: type, wanted: str) -> Any:
        try:
            asyncio.get_running_loop()
            calls.append("on the event loop")
        except RuntimeError:
            calls.append("in a thread")
        return original(cls, wanted)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(spy))

    async def main() -> None:
        async with SFTPPool(conn_id, borrowers_per_session=4) as pool:
            inside = 0
            all_in = asyncio.Event()

            async def one() -> None:
                nonlocal inside
                async with pool.client() as sftp:
                    await sftp.realpath(".")
                    inside += 1
                    if inside == 16:
                        all_in.set()
                    await all_in.wait()  # 16 at once: four connections, two of them opened together

            await asyncio.gather(*(one() for _ in range(16)))
            assert pool.statistics().opened == 4

    run(main())
    assert calls == ["in a thread"]


# -- ciphers ----------------------------------------------------------------------------------------


def negotiated_cipher(conn_id: str) -> str:
    async def main() -> str:
        settings = await load_settings(conn_id)
        opened = await open_connection(settings)
        try:
            return str(opened.ssh.get_extra_info("send_cipher"))
        finally:
            opened.ssh.close()
            await opened.ssh.wait_closed()

    return run(main())


def test_aes_gcm_is_preferred_by_default(sshd: SSHServer, make_connection: Callable[..., str]) -> None:
    # OpenSSH prefers chacha20-poly1305 itself; the client's first choice that the server has wins.
    assert negotiated_cipher(make_connection(sshd)) == "aes128-gcm@openssh.com"
    assert default_ciphers()[:2] == ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    assert "chacha20-poly1305@openssh.com" in default_ciphers()


def test_ciphers_extra_is_honoured(
    sshd: SSHServer, make_connection: Callable[..., str], connect: Any
) -> None:
    assert negotiated_cipher(make_connection(sshd, ciphers=["aes256-ctr"])) == "aes256-ctr"
    assert negotiated_cipher(make_connection(sshd, ciphers="aes192-ctr, aes256-ctr")) == "aes192-ctr"
    connect(make_connection(sshd, ciphers=["aes256-ctr"]))
    # OpenSSH 9 no longer offers 3des-cbc: with only that allowed there is nothing to agree on.
    refused = make_connection(sshd, ciphers=["3des-cbc"])
    with pytest.raises(SFTPConnectError) as info:
        connect(refused)
    assert refused in str(info.value)


def test_unknown_cipher_names_the_extra(
    sshd: SSHServer, make_connection: Callable[..., str], connect: Any
) -> None:
    conn_id = make_connection(sshd, ciphers=["aes128-gcm@openssh.com", "rot13"])
    with pytest.raises(SFTPConnectError, match=rf"'{conn_id}'.*`ciphers` extra names .*: rot13; choose from"):
        connect(conn_id)
