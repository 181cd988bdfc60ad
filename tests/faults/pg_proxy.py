"""A TCP hop in front of Postgres that can freeze: a database that stops answering mid-flight."""

from __future__ import annotations

import asyncio
import contextlib


class PostgresProxy:
    """Forwards bytes both ways until frozen; a frozen proxy accepts and reads but stays silent."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> PostgresProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def drop(self) -> None:
        """Cut every open connection, as a restart or a failover would; new ones still pass."""
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        writers = [client]
        pipes: list[asyncio.Task[None]] = []
        try:
            await self._flowing.wait()
            server_reader, server = await asyncio.open_connection(*self._target)
            writers.append(server)
            pipes = [
                asyncio.create_task(self._pipe(reader, server)),
                asyncio.create_task(self._pipe(server_reader, client)),
            ]
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for writer in writers:
                writer.close()
            self._connections.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                # Frozen: what was read is held back, like packets a dead host never acks.
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
