#!/usr/bin/env node
// A scriptable socket.io-client 4.x driver for the Python test suite.
//
// stdin:  one JSON command per line      stdout: one JSON event per line
//
// Commands (every one but "exit" names a client by "id"):
//   {"op":"connect","id":"c1","url":"http://127.0.0.1:PORT/ns","opts":{...}}
//       opts go to io(); the driver adds forceNew:true and reconnection:false
//       unless given. "share":"c0" opens the namespace of "url" on c0's
//       Manager instead (one connection, several namespaces).
//       opts {"parser":"msgpack"} uses socket.io-msgpack-parser.
//   {"op":"on","id":"c1","event":"y"}         report every "y" received ("*": every event)
//   {"op":"answer","id":"c1","event":"y","reply":[...]}
//       when the server sends "y" with an ack id, answer with these args
//       (also subscribes to "y")
//   {"op":"emit","id":"c1","event":"x","args":[...],"ack":true,"ref":"r1","timeout":5000}
//   {"op":"disconnect","id":"c1"}
//   {"op":"close_engine","id":"c1"}   kill the transport (socket.io.engine.close());
//       with opts {"reconnection":true} the Manager reconnects
//   {"op":"reconnect","id":"c1"}      socket.connect() again after a disconnect
//   {"op":"exit"}
//
// Events written:
//   {"type":"ready"}                                           once, at start
//   {"type":"connect","id","sid","transport","recovered"}
//   {"type":"connect_error","id","message","data"}
//   {"type":"disconnect","id","reason"}
//   {"type":"event","id","event","args","acked":bool}
//   {"type":"ack","id","event","ref","args"}   ("error" instead of args on timeout)
//   {"type":"handshake","id","data"}          the Engine.IO OPEN packet's data
//   {"type":"upgrade","id","transport"}
//   {"type":"error","message"}                                 a bad command
//
// Binary data is {"$bin":"<base64>"} in JSON, both ways, at any depth.
// The driver exits by itself after IDLE_MS without a line on stdin, or when
// stdin closes.
'use strict';

const path = require('path');
const readline = require('readline');

const IDLE_MS = 60 * 1000;

const cache = process.env.TORNADO_SIO_NODE_CACHE || path.join(__dirname, '..', '..', '.cache', 'node');
module.paths.unshift(path.join(cache, 'node_modules'));
const { io } = require('socket.io-client');

function write(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

function toJSON(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString('base64') };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString('base64') };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
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
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '$bin' && typeof value.$bin === 'string') {
      return Buffer.from(value.$bin, 'base64');
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromJSON(v);
    return out;
  }
  return value;
}

// id -> {socket, subs: Set<string>, answers: Map<string, any[]>}
const clients = new Map();

function client(id) {
  let c = clients.get(id);
  if (!c) {
    c = { socket: null, subs: new Set(), answers: new Map() };
    clients.set(id, c);
  }
  return c;
}

function transportName(socket) {
  const engine = socket.io && socket.io.engine;
  return engine && engine.transport ? engine.transport.name : null;
}

function watchEngine(id, manager) {
  const attach = () => {
    const engine = manager.engine;
    if (engine && !engine.__tsioWatched) {
      engine.__tsioWatched = true;
      engine.on('handshake', (data) => write({ type: 'handshake', id, data: toJSON(data) }));
      engine.on('upgrade', (transport) => write({ type: 'upgrade', id, transport: transport.name }));
    }
  };
  attach();
  manager.on('open', attach);
}

function connect(cmd) {
  const id = cmd.id;
  const c = client(id);
  if (c.socket) throw new Error(`client ${id} already exists`);
  const opts = Object.assign({ forceNew: true, reconnection: false }, fromJSON(cmd.opts || {}));
  if (opts.parser === 'msgpack') opts.parser = require('socket.io-msgpack-parser'); // tests/test_msgpack_*.py
  let socket;
  if (cmd.share) {
    const other = clients.get(cmd.share);
    if (!other || !other.socket) throw new Error(`no client ${cmd.share} to share`);
    const nsp = new URL(cmd.url).pathname || '/';
    socket = other.socket.io.socket(nsp, opts);
  } else {
    socket = io(cmd.url, opts);
    watchEngine(id, socket.io);
  }
  c.socket = socket;
  socket.on('connect', () => write({ type: 'connect', id, sid: socket.id, transport: transportName(socket), recovered: Boolean(socket.recovered) }));
  socket.on('connect_error', (err) =>
    write({ type: 'connect_error', id, message: err && err.message, data: toJSON(err && err.data) }));
  socket.on('disconnect', (reason) => write({ type: 'disconnect', id, reason }));
  socket.onAny((event, ...args) => {
    let ack = null;
    if (args.length && typeof args[args.length - 1] === 'function') ack = args.pop();
    if (c.subs.has(event) || c.subs.has('*')) {
      write({ type: 'event', id, event, args: toJSON(args), acked: ack !== null });
    }
    if (ack && c.answers.has(event)) ack(...fromJSON(c.answers.get(event)));
  });
  if (!socket.active) socket.connect();
}

function emit(cmd) {
  const c = clients.get(cmd.id);
  if (!c || !c.socket) throw new Error(`no client ${cmd.id}`);
  const args = fromJSON(cmd.args || []);
  if (!cmd.ack) {
    c.socket.emit(cmd.event, ...args);
    return;
  }
  const base = { type: 'ack', id: cmd.id, event: cmd.event, ref: cmd.ref === undefined ? null : cmd.ref };
  if (cmd.timeout) {
    c.socket.timeout(cmd.timeout).emit(cmd.event, ...args, (err, ...res) => {
      if (err) write(Object.assign(base, { error: String(err.message || err) }));
      else write(Object.assign(base, { args: toJSON(res) }));
    });
  } else {
    c.socket.emit(cmd.event, ...args, (...res) => write(Object.assign(base, { args: toJSON(res) })));
  }
}

function shutdown(code) {
  for (const c of clients.values()) {
    if (c.socket) c.socket.disconnect();
  }
  // let the close packets go out, then leave
  setTimeout(() => process.exit(code), 50);
}

let idle = null;
function touch() {
  if (idle) clearTimeout(idle);
  idle = setTimeout(() => {
    write({ type: 'error', message: `no input for ${IDLE_MS / 1000} s: exiting` });
    shutdown(2);
  }, IDLE_MS);
}

function handle(cmd) {
  switch (cmd.op) {
    case 'connect':
      connect(cmd);
      break;
    case 'on':
      client(cmd.id).subs.add(cmd.event);
      break;
    case 'answer': {
      const c = client(cmd.id);
      c.subs.add(cmd.event);
      c.answers.set(cmd.event, cmd.reply || []);
      break;
    }
    case 'emit':
      emit(cmd);
      break;
    case 'disconnect': {
      const c = clients.get(cmd.id);
      if (!c || !c.socket) throw new Error(`no client ${cmd.id}`);
      c.socket.disconnect();
      break;
    }
    case 'close_engine': {
      const c = clients.get(cmd.id);
      if (!c || !c.socket) throw new Error(`no client ${cmd.id}`);
      c.socket.io.engine.close();
      break;
    }
    case 'reconnect': {
      const c = clients.get(cmd.id);
      if (!c || !c.socket) throw new Error(`no client ${cmd.id}`);
      c.socket.connect();
      break;
    }
    case 'exit':
      shutdown(0);
      break;
    default:
      throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  touch();
  if (!line.trim()) return;
  try {
    handle(JSON.parse(line));
  } catch (err) {
    write({ type: 'error', message: String(err && err.message ? err.message : err) });
  }
});
rl.on('close', () => shutdown(0));
touch();
write({ type: 'ready' });
