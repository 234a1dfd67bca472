"""uvicorn's HTTP protocol (httptools), with each answer written to its socket once.

uvicorn writes an answer's status line and headers, then its body: two system calls, and the client woken
twice, for the few hundred bytes of a JSON answer; on these virtual machines a socket write costs about as
much as reading the request's JSON. Here what one turn of the event loop writes to a connection goes out in
one write, at the end of that turn.
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _OneWritePerTurn:
    """A transport that gathers the writes of one event-loop turn and hands them to the real one together."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written before close() goes out before the connection ends
        self._transport.close()

    def __getattr__(self, name):  # everything else is the real transport's
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWritePerTurn(transport, self.loop))
