"""Drive node's official ``socket.io-client`` 4.x from asyncio tests.

``tests/node/client.js`` reads JSON commands on stdin and writes JSON events on
stdout (see the comment at its top); :class:`NodeClient` wraps it::

    async with NodeClient() as node:
        await node.send({"op": "connect", "id": "c1", "url": url})
        msg = await node.expect(type="connect", id="c1")

:meth:`NodeClient.expect` returns the first message (in arrival order) that
matches, and leaves the others queued for later ``expect`` calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
from typing import Any, Dict, List, Optional

from tests import support

SCRIPT = support.ROOT / "tests" / "node" / "client.js"


def to_wire(value: Any) -> Any:
    """Python data -> the driver's JSON: bytes become ``{"$bin": base64}``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def from_wire(value: Any) -> Any:
    """The driver's JSON -> Python data: ``{"$bin": base64}`` becomes bytes."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"} and isinstance(value["$bin"], str):
            return base64.b64decode(value["$bin"])
        return {k: from_wire(v) for k, v in value.items()}
    return value


class NodeClient:
    """One ``node tests/node/client.js`` process; many socket.io clients inside it."""

    def __init__(self, default_timeout: float = 10.0) -> None:
        self.default_timeout = default_timeout
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.messages: List[Dict[str, Any]] = []  # received, not yet matched
        self.log: List[Dict[str, Any]] = []  # everything received, for failure messages
        self.stderr: List[str] = []
        self._arrived = asyncio.Event()
        self._tasks: List[asyncio.Task[None]] = []
        self._eof = False

    async def __aenter__(self) -> NodeClient:
        modules = support.need_node_module("socket.io-client")
        node = support.need("node", support.NODE_HINT)
        env = {
            **os.environ,
            "NODE_PATH": str(modules),
            "TORNADO_SIO_NODE_CACHE": str(modules.parent),
        }
        self.proc = await asyncio.create_subprocess_exec(
            node, str(SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=str(support.ROOT),
        )
        self._tasks = [
            asyncio.ensure_future(self._read_stdout()),
            asyncio.ensure_future(self._read_stderr()),
        ]
        try:
            await self.expect(type="ready", timeout=15)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                msg = {"type": "garbage", "line": line.decode("utf-8", "replace")}
            self.messages.append(msg)
            self.log.append(msg)
            self._arrived.set()
        self._eof = True
        self._arrived.set()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                break
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    async def send(self, command: Dict[str, Any]) -> None:
        """Write one command (bytes anywhere in it are encoded as ``$bin``)."""
        assert self.proc is not None and self.proc.stdin is not None, "NodeClient is not running"
        self.proc.stdin.write((json.dumps(to_wire(command)) + "\n").encode("utf-8"))
        await self.proc.stdin.drain()

    @staticmethod
    def _matches(msg: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
        return all(msg.get(k) == v for k, v in wanted.items())

    def pop(self, **wanted: Any) -> Optional[Dict[str, Any]]:
        """The first queued message matching *wanted* (removed), or None. Never waits."""
        for i, msg in enumerate(self.messages):
            if self._matches(msg, wanted):
                del self.messages[i]
                return from_wire(msg)
        return None

    def queued(self, **wanted: Any) -> List[Dict[str, Any]]:
        """The queued messages matching *wanted* (left in the queue)."""
        return [from_wire(m) for m in self.messages if self._matches(m, wanted)]

    async def expect(self, timeout: Optional[float] = None, **wanted: Any) -> Dict[str, Any]:
        """Wait for a message whose fields equal *wanted* (``type=``, ``id=``, ``event=``, ...).

        Returns it with ``$bin`` values decoded to bytes; earlier messages that
        did not match stay queued. Raises AssertionError on timeout or when the
        driver has exited.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.default_timeout if timeout is None else timeout)
        while True:
            found = self.pop(**wanted)
            if found is not None:
                return found
            if self._eof:
                raise AssertionError(f"node driver exited while waiting for {wanted}; {self._describe()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no message matching {wanted}; {self._describe()}")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _describe(self) -> str:
        tail = "\n".join(self.stderr[-20:])
        return f"received so far: {self.log[-30:]}" + (f"\nnode stderr:\n{tail}" if tail else "")

    async def close(self) -> None:
        """Ask the driver to exit; stop it by PID if it does not."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.send({"op": "exit"})
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 3)
                except asyncio.TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    await proc.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)
        self.proc = None
