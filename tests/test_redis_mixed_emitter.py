"""A tornado-sio server in its native format with ``node_emitter_key`` beside a Node cluster.

It reads Node's broadcast and request channels, so Node's adapter counts it as
a server (``PUBSUB NUMSUB``). It must then answer every request, or every Node
server's ``fetchSockets``, ``serverSideEmitWithAck``, ``allRooms`` and
broadcasts with acks would time out: joining a Node cluster half-way must never
break the Node servers.
"""

from __future__ import annotations

import json

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("msgpack")

from tests.apps import async_test
from tests.redis_support import close_all, connect_all, redis_server
from tests.test_redis_mixed import beside_node

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def beside():
    """(node, tornado): one Node server, one native tornado-sio server with node_emitter_key."""
    with redis_server() as redis, beside_node(redis.url, "--node-key", "socket.io") as (node, tornado):
        yield node, tornado


@async_test(40)
async def test_node_requests_are_answered_by_a_tornado_server_that_only_reads_nodes_channels(beside):
    node, tornado = beside
    clients = await connect_all([(node, ["/"]), (tornado, ["/"])])
    try:
        assert await clients[1].ask("join", "t-room") == "joined"
        clients[1].answers[("/", "question")] = "from tornado's client"
        clients[0].answers[("/", "question")] = "from node's client"
        assert await node.run("serverCount") == 2
        found = {item["id"]: item for item in await node.run("fetchSockets")}
        assert set(found) == {clients[0].sid["/"], clients[1].sid["/"]}
        assert found[clients[1].sid["/"]]["data"] == {"impl": "tornado", "port": tornado.port}
        assert "t-room" in await node.run("allRooms")
        assert await node.run("serverSideEmitWithAck", event="new-order", args=[1]) == \
            [{"from": "tornado", "port": tornado.port}]
        assert sorted(await node.run("emitWithAck", event="question", timeout=5000)) == \
            ["from node's client", "from tornado's client"]
    finally:
        await close_all(clients)


@async_test(40)
async def test_node_broadcasts_and_socket_operations_reach_the_tornado_servers_clients(beside):
    node, tornado = beside
    clients = await connect_all([(node, ["/"]), (tornado, ["/"])])
    try:
        await node.run("socketsJoin", to=[clients[1].sid["/"]], rooms=["joined-by-node"])
        for _ in range(100):
            if "joined-by-node" in await clients[1].ask("my rooms"):
                break
        await node.run("emit", to=["joined-by-node"], event="to the room", args=[b"\x01"])
        assert await clients[1].expect("to the room") == [[b"\x01"]]
    finally:
        await close_all(clients)


@async_test(40)
async def test_the_old_one_socket_join_request_is_applied_and_answered(beside):
    import redis.asyncio as redis_py

    node, tornado = beside
    clients = await connect_all([(tornado, ["/"])])
    url = tornado.args[tornado.args.index("--redis") + 1]
    listener = redis_py.Redis.from_url(url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe("socket.io-response#/#")
        request = {"uid": "old-adapter", "requestId": "r1", "type": 2, "sid": clients[0].sid["/"], "room": "legacy"}
        await listener.publish("socket.io-request#/#", json.dumps(request))
        answer = None
        for _ in range(100):
            answer = await pubsub.get_message(timeout=0.1)
            if answer is not None:
                break
        assert answer is not None and json.loads(answer["data"]) == {"requestId": "r1"}
        assert "legacy" in await clients[0].ask("my rooms")
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await close_all(clients)
