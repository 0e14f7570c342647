#!/usr/bin/env node
// A Node socket.io 4.8 server on @socket.io/redis-adapter 8 (classic pub/sub,
// redis@4 clients), driven by the mixed-cluster tests (tests/test_redis_mixed*.py).
//
//   node tests/node/cluster_server.js PORT REDIS_URL [KEY]
//
// stdin: one JSON command per line; stdout: one JSON line per event. Every
// command may carry "ref"; its outcome is written as {"type":"result","ref",
// "value"} or {"type":"result","ref","error"}. "ns" defaults to "/", "to" and
// "except" are lists of rooms (sids are rooms).
//   {"op":"emit","to","except","event","args"}        io.of(ns).to().except().emit()
//   {"op":"emitWithAck","to","event","args","timeout"} io.timeout(ms).emitWithAck(): every answer
//   {"op":"fetchSockets","to"}                        [{id, rooms, data, query, auth}]
//   {"op":"socketsJoin","to","except","rooms"} / socketsLeave / {"op":"disconnectSockets","close"}
//   {"op":"serverSideEmit","event","args"}
//   {"op":"serverSideEmitWithAck","event","args"}   every other server's answer (within requestsTimeout)
//   {"op":"allRooms"} / {"op":"serverCount"}
//   {"op":"exit"}
// Written by itself:
//   {"type":"ready","port"}                      once listening and subscribed
//   {"type":"sse","event","args"}                a server-side event from another server
// Its clients may emit (with an ack): "whoami" -> {sid, port, impl:"node"};
// "join" room -> "joined"; "my rooms" -> sorted rooms. socket.data is
// {impl:"node", port}. A server-side event with an ack is answered
// {"from":"node","port"}.
'use strict';

const path = require('path');
const readline = require('readline');
const http = require('http');

const cache = process.env.TORNADO_SIO_NODE_CACHE || path.join(__dirname, '..', '..', '.cache', 'node');
module.paths.unshift(path.join(cache, 'node_modules'));
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const [port, redisUrl, key] = process.argv.slice(2);
const NAMESPACES = ['/', '/test'];

function write(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

function toJSON(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString('base64') };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map(toJSON);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJSON(v);
    return out;
  }
  return value === undefined ? null : value;
}

function fromJSON(value) {
  if (Array.isArray(value)) return value.map(fromJSON);
  if (value && typeof value === 'object') {
    if (Object.keys(value).length === 1 && typeof value.$bin === 'string') return Buffer.from(value.$bin, 'base64');
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromJSON(v);
    return out;
  }
  return value;
}

function select(io, cmd) {
  let target = io.of(cmd.ns || '/');
  for (const room of cmd.to || []) target = target.to(room);
  for (const room of cmd.except || []) target = target.except(room);
  return target;
}

async function run(io, cmd) {
  const args = fromJSON(cmd.args || []);
  switch (cmd.op) {
    case 'emit':
      select(io, cmd).emit(cmd.event, ...args);
      return 'ok';
    case 'emitWithAck':
      return select(io, cmd).timeout(cmd.timeout || 5000).emitWithAck(cmd.event, ...args);
    case 'fetchSockets': {
      const sockets = await select(io, cmd).fetchSockets();
      return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data,
        query: s.handshake.query, auth: s.handshake.auth }));
    }
    case 'socketsJoin':
      select(io, cmd).socketsJoin(cmd.rooms);
      return 'ok';
    case 'socketsLeave':
      select(io, cmd).socketsLeave(cmd.rooms);
      return 'ok';
    case 'disconnectSockets':
      select(io, cmd).disconnectSockets(!!cmd.close);
      return 'ok';
    case 'serverSideEmit':
      io.of(cmd.ns || '/').serverSideEmit(cmd.event, ...args);
      return 'ok';
    case 'serverSideEmitWithAck':
      return io.of(cmd.ns || '/').serverSideEmitWithAck(cmd.event, ...args);
    case 'allRooms':
      return [...(await io.of(cmd.ns || '/').adapter.allRooms())].sort();
    case 'serverCount':
      return io.of(cmd.ns || '/').adapter.serverCount();
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) client.on('error', (err) => process.stderr.write(`redis: ${err}\n`));
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub, key ? { key } : {}) });
  for (const name of NAMESPACES) {
    const nsp = io.of(name);
    nsp.on('connection', (socket) => {
      socket.data = { impl: 'node', port: Number(port) };
      socket.on('whoami', (cb) => cb({ sid: socket.id, port: Number(port), impl: 'node' }));
      socket.on('join', (room, cb) => { socket.join(room); cb('joined'); });
      socket.on('my rooms', (cb) => cb([...socket.rooms].sort()));
    });
  }
  io.on('new-order', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    write({ type: 'sse', event: 'new-order', args: toJSON(args) });
    if (ack) ack({ from: 'node', port: Number(port) });
  });
  await new Promise((resolve) => httpServer.listen(Number(port), '127.0.0.1', resolve));
  // the adapter subscribes asynchronously: a PING on the subscriber answers after it
  await sub.ping();
  write({ type: 'ready', port: Number(port) });

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      write({ type: 'error', message: `bad JSON: ${err}` });
      return;
    }
    if (cmd.op === 'exit') {
      io.close();
      await Promise.allSettled([pub.quit(), sub.quit()]);
      process.exit(0);
    }
    try {
      write({ type: 'result', ref: cmd.ref, value: toJSON(await run(io, cmd)) });
    } catch (err) {
      write({ type: 'result', ref: cmd.ref, error: String(err && err.message ? err.message : err) });
    }
  });
  rl.on('close', () => process.exit(0));
}

// node-redis rejects a PUBLISH whose connection just broke (EPIPE while Redis
// restarts) and the adapter does not catch it: report it instead of letting
// Node end the process, as a production server's handler would.
process.on('unhandledRejection', (err) => write({ type: 'warning', message: String(err) }));

main().catch((err) => {
  process.stderr.write(`cluster_server: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
