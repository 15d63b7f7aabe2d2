"""The SFTP request layer under the transfer helpers: one request per step, batched on the wire.

A small file is three requests (open, read, close), and at thousands of files a second the CPU
goes to what surrounds them rather than to the bytes. asyncssh's ``SFTPClient`` wraps a file in an
``SFTPClientFile``, each request in a coroutine that formats its debug log arguments whether or
not debug logging is on, and sends every request as an SSH packet of its own, which asyncssh
precedes with an empty ``SSH_MSG_IGNORE`` packet when it encrypts: two encryptions and two
``send()`` system calls per request. So for the pool's sessions:

* :class:`BatchingWriter` stands in for the session's channel writer. What the session writes
  during one pass of the event loop (every borrower's requests, asyncssh's own included) goes out
  in order as one channel write at the end of that pass: one SSH packet, whatever the number of
  requests in it. Nothing waits longer than the pass (no timer); a large write goes at once.
* :class:`Requests` sends the requests the transfer helpers make (open, read, write, fstat,
  fsetstat, close) straight into the session's table of pending requests, and decodes their
  answers, with no object, task or log formatting per request.

It works on asyncssh's ``SFTPClientHandler`` internals (its table of pending requests by id, the
next id, its writer, SFTP version 3 framing), unchanged from asyncssh 2.18 to 2.24;
:func:`check_handler` refuses a handler that does not look that way, and the tests pin them.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import asyncssh
from asyncssh.constants import (
    FXP_ATTRS,
    FXP_CLOSE,
    FXP_DATA,
    FXP_FSETSTAT,
    FXP_FSTAT,
    FXP_HANDLE,
    FXP_OPEN,
    FXP_READ,
    FXP_STAT,
    FXP_STATUS,
    FXP_WRITE,
)
from asyncssh.packet import SSHPacket

__all__ = ["BATCH_LIMIT", "BatchingWriter", "Requests", "check_handler"]

log = logging.getLogger("airflow_iterate.sftp")

#: a write at least this long is not batched: what is queued goes first, then it, at once (an SSH
#: channel packet carries 32 KiB at most; a large upload block fills its own)
BATCH_LIMIT = 16 * 1024

#: the SFTP version the pool's sessions speak (asyncssh's default, which every server accepts)
SFTP_VERSION = 3

# length, type, request id: the header of every request
_HEADER = struct.Struct(">LBL")
_U32 = struct.Struct(">L")
_U64 = struct.Struct(">Q")
_OFFSET_LENGTH = struct.Struct(">QL")
#: SFTPAttrs() encoded for version 3: no attributes
NO_ATTRS = b"\x00\x00\x00\x00"


def _string(value: bytes) -> bytes:
    return _U32.pack(len(value)) + value


class BatchingWriter:
    """An SFTP session's channel writer that sends what one pass of the event loop wrote at once.

    Installed in place of the session's ``SSHWriter`` (everything but writing goes to it). Order is
    kept: every write of the session goes through the same queue, so requests on one handle reach
    the server in the order they were made.
    """

    __slots__ = ("_inner", "_loop", "_queued", "_scheduled", "channel")

    def __init__(self, inner: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._queued: list[bytes] = []
        self._scheduled = False
        #: read by asyncssh before each request (``channel.is_closing()``)
        self.channel = inner.channel

    def write(self, data: bytes) -> None:
        if len(data) >= BATCH_LIMIT:
            self.flush()
            self._inner.write(data)
            return
        self._queued.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        queued = self._queued
        if not queued:
            return
        self._queued = []
        try:
            self._inner.write(queued[0] if len(queued) == 1 else b"".join(queued))
        except OSError as exc:
            # The channel closed since these were queued (asyncssh checks before each request);
            # the session's end fails the requests waiting for an answer.
            log.debug("SFTP requests not sent, the session is closing: %s", exc)

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def check_handler(handler: Any) -> None:
    """Refuse an asyncssh SFTP client handler whose internals are not the ones this module uses."""
    missing = [
        name
        for name in ("_requests", "_next_pktid", "_writer", "_process_status", "version")
        if not hasattr(handler, name)
    ]
    if missing or not isinstance(handler._requests, dict):
        raise RuntimeError(
            f"asyncssh {asyncssh.__version__} is not supported by airflow_iterate.sftp: its SFTP client "
            f"handler lacks {', '.join(missing) or 'a dict of pending requests'}"
        )
    if handler.version != SFTP_VERSION:
        raise RuntimeError(f"the SFTP session speaks version {handler.version}, not {SFTP_VERSION}")


class _Discard:
    """Takes the answer to a request nobody waits for (a close): it carries nothing to act on."""

    __slots__ = ()

    def cancelled(self) -> bool:
        return False

    def set_result(self, answer: tuple[int, SSHPacket]) -> None:
        resptype, packet = answer
        if resptype == FXP_STATUS and log.isEnabledFor(logging.DEBUG):
            code = packet.get_uint32()
            if code:
                log.debug("closing a remote file failed: SFTP status %d", code)

    def set_exception(self, exc: BaseException) -> None:
        log.debug("closing a remote file failed: %s", exc)  # the connection went away: so did the handle


_DISCARD = _Discard()


class Requests:
    """The helpers' requests on one SFTP session of the pool (SFTP version 3)."""

    __slots__ = ("_handler", "_loop", "max_read", "max_write", "sftp", "whole_reads")

    def __init__(self, sftp: asyncssh.SFTPClient, *, whole_reads: bool) -> None:
        handler: Any = sftp._handler
        check_handler(handler)
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self.sftp = sftp
        #: whether a read answered with less than asked, at any offset, means the end of the file
        self.whole_reads = whole_reads
        #: the longest read and write the server accepts in one request (its limits, else safe ones)
        self.max_read: int = sftp.limits.max_read_len
        self.max_write: int = sftp.limits.max_write_len
        if not isinstance(handler._writer, BatchingWriter):
            handler._writer = BatchingWriter(handler._writer, self._loop)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, pkttype: int, payload: bytes, waiter: Any) -> int:
        """Queue one request whose answer goes to ``waiter``; its request id."""
        handler = self._handler
        writer = handler._writer
        if writer is None:
            raise asyncssh.SFTPNoConnection("Connection not open")
        pktid: int = handler._next_pktid
        handler._next_pktid = (pktid + 1) & 0xFFFFFFFF
        handler._requests[pktid] = waiter
        # As asyncssh does: a session that is closing sends nothing, and its end fails the waiter.
        if not writer.channel.is_closing():
            writer.write(_HEADER.pack(len(payload) + 5, pkttype, pktid) + payload)
        return pktid

    def request(self, pkttype: int, payload: bytes) -> asyncio.Future[tuple[int, SSHPacket]]:
        """Send one request; the future of its answer (``(type, packet)``), decoded by the caller."""
        waiter: asyncio.Future[tuple[int, SSHPacket]] = self._loop.create_future()
        self._send(pkttype, payload, waiter)
        return waiter

    # -- decoding -------------------------------------------------------------------------------

    def _status(self, resptype: int, packet: SSHPacket) -> None:
        """An FXP_STATUS answer: raises its error (asyncssh's exception for the code); OK passes."""
        if resptype != FXP_STATUS:
            raise asyncssh.SFTPBadMessage(f"Unexpected response type: {resptype}")
        self._handler._process_status(packet)

    def handle_of(self, resptype: int, packet: SSHPacket) -> bytes:
        if resptype == FXP_HANDLE:
            handle: bytes = packet.get_string()
            packet.check_end()
            return handle
        self._status(resptype, packet)
        raise asyncssh.SFTPBadMessage("Unexpected FX_OK response")

    def data_of(self, resptype: int, packet: SSHPacket) -> bytes:
        """The bytes of a read's answer; ``b""`` at the end of the file."""
        if resptype == FXP_DATA:
            data: bytes = packet.get_string()
            packet.check_end()
            return data
        try:
            self._status(resptype, packet)
        except asyncssh.SFTPEOFError:
            return b""
        raise asyncssh.SFTPBadMessage("Unexpected FX_OK response")

    def attrs_of(self, resptype: int, packet: SSHPacket) -> asyncssh.SFTPAttrs:
        if resptype == FXP_ATTRS:
            attrs = asyncssh.SFTPAttrs.decode(packet, SFTP_VERSION)
            packet.check_end()
            return attrs
        self._status(resptype, packet)
        raise asyncssh.SFTPBadMessage("Unexpected FX_OK response")

    # -- the requests ---------------------------------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: bytes = NO_ATTRS) -> bytes:
        """Open ``path``; its handle. Safe to cancel: a handle the server opens after its caller
        gave up is closed as soon as the answer arrives."""
        waiter: asyncio.Future[tuple[int, SSHPacket]] = self._loop.create_future()
        pktid = self._send(FXP_OPEN, _string(path) + _U32.pack(pflags) + attrs, waiter)
        try:
            resptype, packet = await waiter
        except asyncio.CancelledError:
            self._orphan(pktid, waiter)
            raise
        return self.handle_of(resptype, packet)

    def _orphan(self, pktid: int, waiter: asyncio.Future[tuple[int, SSHPacket]]) -> None:
        if waiter.cancelled():
            # The answer is still to come, and asyncssh drops answers to cancelled requests: take it
            # over. (A session that ended meanwhile has a new, empty table: nothing will come.)
            requests = self._handler._requests
            if requests.get(pktid) is waiter:
                adopted: asyncio.Future[tuple[int, SSHPacket]] = self._loop.create_future()
                adopted.add_done_callback(self._close_adopted)
                requests[pktid] = adopted
        else:
            self._close_adopted(waiter)  # answered just before the cancellation reached the caller

    def _close_adopted(self, answer: asyncio.Future[tuple[int, SSHPacket]]) -> None:
        if answer.cancelled() or answer.exception() is not None:
            return  # nothing was opened (the exception is retrieved: nobody else will)
        resptype, packet = answer.result()
        if resptype == FXP_HANDLE:
            self.close_later(packet.get_string())

    def close_later(self, handle: bytes) -> None:
        """Close ``handle`` without waiting for the answer, which carries nothing to act on."""
        try:
            self._send(FXP_CLOSE, _string(handle), _DISCARD)
        except asyncssh.SFTPNoConnection:
            return  # the session ended: so did its handles

    async def close(self, handle: bytes) -> None:
        resptype, packet = await self.request(FXP_CLOSE, _string(handle))
        self._status(resptype, packet)

    def read(self, handle: bytes, offset: int, length: int) -> asyncio.Future[tuple[int, SSHPacket]]:
        """Send a read; its answer's future, for :meth:`data_of`."""
        return self.request(FXP_READ, _string(handle) + _OFFSET_LENGTH.pack(offset, length))

    async def read_block(self, handle: bytes, offset: int, length: int) -> bytes:
        """One read: at most ``length`` bytes at ``offset``, ``b""`` at the end of the file."""
        resptype, packet = await self.read(handle, offset, length)
        return self.data_of(resptype, packet)

    def write(self, handle: bytes, offset: int, data: bytes) -> asyncio.Future[tuple[int, SSHPacket]]:
        """Send a write (at most ``max_write`` bytes); its answer's future, for :meth:`check`."""
        return self.request(FXP_WRITE, _string(handle) + _U64.pack(offset) + _string(data))

    def check(self, resptype: int, packet: SSHPacket) -> None:
        """Raise the error of a request answered with a status (write, fsetstat, close)."""
        self._status(resptype, packet)

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        """The attributes of the file at ``path`` (a link followed)."""
        resptype, packet = await self.request(FXP_STAT, _string(path))
        return self.attrs_of(resptype, packet)

    async def fstat(self, handle: bytes) -> asyncssh.SFTPAttrs:
        resptype, packet = await self.request(FXP_FSTAT, _string(handle))
        return self.attrs_of(resptype, packet)

    def fsetstat(self, handle: bytes, attrs: asyncssh.SFTPAttrs) -> asyncio.Future[tuple[int, SSHPacket]]:
        """Send an fsetstat; its answer's future, for :meth:`check`."""
        return self.request(FXP_FSETSTAT, _string(handle) + attrs.encode(SFTP_VERSION))
