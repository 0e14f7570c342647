// Publish with the npm package @socket.io/redis-emitter, for tests/test_redis_cluster.py.
//
//   NODE_PATH=.cache/node/node_modules node tests/node/redis_emit.js REDIS_URL OPS_JSON
//
// OPS_JSON is a list of {"ns": "/", "to": [rooms], "except": [rooms], "event": "name",
// "args": [...], "binary": true?, "date": true?}; with "binary" a Buffer [1, 2, 3], with
// "date" new Date(1000) is appended to the args. {"kind": "socketsJoin"|"socketsLeave",
// "rooms": [...]} and {"kind": "disconnectSockets", "close": bool} (with ns/to/except too)
// make the matching sockets join, leave or disconnect.
// Exits 0 once every PUBLISH has been answered by Redis.
"use strict";

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

async function main() {
  const [url, opsJson] = process.argv.slice(2);
  const ops = JSON.parse(opsJson);
  const client = createClient({ url });
  client.on("error", (err) => {
    console.error("redis error", err);
    process.exit(2);
  });
  await client.connect();
  const root = new Emitter(client);
  for (const op of ops) {
    let target = root.of(op.ns || "/");
    for (const room of op.to || []) target = target.to(room);
    for (const room of op.except || []) target = target.except(room);
    if (op.kind === "socketsJoin") {
      target.socketsJoin(op.rooms);
      continue;
    }
    if (op.kind === "socketsLeave") {
      target.socketsLeave(op.rooms);
      continue;
    }
    if (op.kind === "disconnectSockets") {
      target.disconnectSockets(!!op.close);
      continue;
    }
    const args = op.args || [];
    if (op.binary) args.push(Buffer.from([1, 2, 3]));
    if (op.date) args.push(new Date(1000));
    target.emit(op.event, ...args);
  }
  await client.ping(); // commands run in order: every PUBLISH before it is done
  await client.quit();
}

const timer = setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 10000);
main().then(() => clearTimeout(timer), (err) => {
  console.error(err);
  process.exit(1);
});
