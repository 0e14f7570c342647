// Load generator for bench/run.py: raw Engine.IO v4 / Socket.IO v5 frames over
// the `ws` package (WebSocket) or node:http (long-polling). One process, meant to
// be pinned to its own core; it reports its own CPU share so a result limited by
// the generator can be told from one limited by the server.
//
//   node bench/loadgen.js '<json config>'
//
// Config: {scenario, url | urls, clients, warmup, duration, window, rate,
//          rateDuration, concurrency, maxSeconds, payload}
// Scenarios: echo, echo_ack, bcast (saturation, then optional fixed rate),
//            idle (connect N, hold, report connects/s), poll_echo,
//            soak (N idle clients answering pings, plus paced echo, broadcast
//            and churn at once; see bench/soak.py).
// Output: one JSON object per line on stdout:
//   {"phase": "...", ...}   a point the orchestrator may act on (CPU/RSS samples);
//                           for phases with "wait": true the generator waits for a
//                           line on stdin (at most 10 s) before going on
//   {"result": {...}}       the figures
//   {"error": "..."}        a failure (exit code 1)
// Every loop is bounded in time (maxSeconds, default 120) and count.
'use strict';

const crypto = require('crypto');
const http = require('http');
const net = require('net');
const readline = require('readline');
const WebSocket = require('ws');

const cfg = JSON.parse(process.argv[2] || '{}');
const MAX_SECONDS = cfg.maxSeconds || 120;
const killer = setTimeout(() => fail(`loadgen exceeded maxSeconds=${MAX_SECONDS}`), MAX_SECONDS * 1000);

function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function fail(msg) {
  out({ error: String(msg) });
  process.exit(1);
}
process.on('uncaughtException', (e) => fail(e && e.stack || e));
process.on('unhandledRejection', (e) => fail(e && e.stack || e));

const now = () => performance.now(); // ms, monotonic
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- stdin sync
const stdinLines = [];
let stdinWaiter = null;
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (stdinWaiter) { const w = stdinWaiter; stdinWaiter = null; w(line); } else stdinLines.push(line);
});
async function phase(name, extra = {}, wait = false) {
  out({ phase: name, t: now(), wait, ...extra });
  if (!wait) return;
  if (stdinLines.length) { stdinLines.shift(); return; }
  await Promise.race([new Promise((r) => { stdinWaiter = r; }), sleep((cfg.syncTimeout || 10) * 1000)]);
  stdinWaiter = null;
}

// ---------------------------------------------------------------- stats
class Samples {
  constructor(cap = 2_000_000) { this.a = new Float64Array(cap); this.n = 0; this.total = 0; }
  add(v) { this.total++; if (this.n < this.a.length) this.a[this.n++] = v; }
  summary() {
    if (!this.n) return { count: this.total };
    const s = this.a.subarray(0, this.n).slice().sort();
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
    let sum = 0; for (let i = 0; i < s.length; i++) sum += s[i];
    return { count: this.total, min: s[0], p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1], mean: sum / s.length };
  }
}

function cpuWindow() {
  const c0 = process.cpuUsage(); const t0 = now();
  return () => {
    const c = process.cpuUsage(c0); const wall = now() - t0;
    return { cpu: (c.user + c.system) / 1000 / wall, wall_s: wall / 1000 };
  };
}

// ---------------------------------------------------------------- WebSocket client
const SEQ_KEY = Buffer.from('"seq":');

function seqOf(buf) {
  const i = buf.indexOf(SEQ_KEY);
  if (i < 0) return -1;
  let v = 0; let j = i + SEQ_KEY.length;
  for (; j < buf.length; j++) { const c = buf[j]; if (c < 48 || c > 57) break; v = v * 10 + (c - 48); }
  return v;
}

// A minimal RFC 6455 client on node:net (the default): one socket.write per
// frame, frames parsed straight out of the 'data' chunks, no per-message stream
// machinery. Client frames are masked with a zero key (legal framing; every
// server still runs its unmasking code). `ws` is kept as the reference client
// (config "client": "ws") to check that both give the same figures.
class RawSocket {
  constructor(url, onOpen, onMessage, onFail) {
    const u = new URL(url);
    this.onMessage = onMessage;
    this.frag = null;
    const sock = this.sock = net.connect({ host: u.hostname, port: Number(u.port) });
    sock.setNoDelay(true);
    let handshaking = true;
    let buf = null;
    sock.on('connect', () => {
      const key = crypto.randomBytes(16).toString('base64');
      sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on('data', (chunk) => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      if (handshaking) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        if (!head.startsWith('HTTP/1.1 101')) { onFail(new Error(`handshake refused: ${head.split('\r\n')[0]}`)); sock.destroy(); return; }
        handshaking = false;
        buf = buf.subarray(end + 4);
        onOpen();
      }
      let pos = 0;
      const n = buf.length;
      while (n - pos >= 2) {
        const b0 = buf[pos]; const b1 = buf[pos + 1];
        let len = b1 & 0x7f; let h = pos + 2;
        if (len === 126) { if (n - h < 2) break; len = buf.readUInt16BE(h); h += 2; }
        else if (len === 127) { if (n - h < 8) break; len = Number(buf.readBigUInt64BE(h)); h += 8; }
        if (b1 & 0x80) h += 4; // a masked server frame is a protocol error; skip the key anyway
        if (n - h < len) break;
        const payload = buf.subarray(h, h + len);
        pos = h + len;
        const op = b0 & 0x0f;
        if (op === 8) { sock.end(); continue; }
        if (op === 9) { this.frame(0x8a, payload); continue; }
        if (op === 10) continue;
        if (!(b0 & 0x80)) { this.frag = this.frag ? Buffer.concat([this.frag, payload]) : Buffer.from(payload); continue; }
        if (op === 0 && this.frag) { const all = Buffer.concat([this.frag, payload]); this.frag = null; this.onMessage(all); continue; }
        this.onMessage(payload);
      }
      buf = pos < n ? buf.subarray(pos) : null;
    });
    sock.on('error', (e) => onFail(e));
    sock.on('close', () => onFail(new Error('closed')));
  }
  frame(first, payload) {
    const len = payload.length;
    const hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const f = Buffer.allocUnsafe(hl + 4 + len);
    f[0] = first;
    if (hl === 2) f[1] = 0x80 | len;
    else if (hl === 4) { f[1] = 0x80 | 126; f.writeUInt16BE(len, 2); }
    else { f[1] = 0x80 | 127; f.writeBigUInt64BE(BigInt(len), 2); }
    f.writeUInt32BE(0, hl); // zero masking key
    if (typeof payload === 'string') f.write(payload, hl + 4, 'utf8'); else payload.copy(f, hl + 4);
    this.sock.write(f);
  }
  send(text) {
    this.frame(0x81, typeof text === 'string' && text.length === Buffer.byteLength(text) ? text : Buffer.from(text));
  }
  terminate() { this.sock.destroy(); }
}

class WsClient {
  // handlers: onEvent(client, buf), onAck(client, id, buf)
  constructor(base, idx, handlers) {
    this.idx = idx; this.h = handlers; this.sid = null; this.connected = false;
    this.ackId = 0; this.pending = 0; this.t = 0; this.seq = 0;
    const u = base.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket';
    this.ready = new Promise((resolve, reject) => {
      this._resolve = resolve;
      const fail = (e) => { this.connected = false; reject(e instanceof Error ? e : new Error(String(e))); };
      if (cfg.client === 'ws') {
        const ws = this.ws = new WebSocket(u, { perMessageDeflate: false, skipUTF8Validation: true });
        ws.on('message', (data) => this.onMessage(data));
        ws.on('error', fail);
        ws.on('close', () => fail(new Error(`client ${idx} closed`)));
      } else {
        this.ws = new RawSocket(u, () => {}, (data) => this.onMessage(data), fail);
      }
    });
    this.ready.catch(() => {}); // a late failure after connect is not an unhandled rejection
  }
  onMessage(buf) {
    const t = buf[0];
    if (t === 0x34) { // '4' message
      const s = buf[1];
      if (s === 0x32) this.h.onEvent(this, buf); // '2' event
      else if (s === 0x33) { // '3' ack: 43<id>[...]
        let id = 0; let j = 2;
        for (; j < buf.length; j++) { const c = buf[j]; if (c < 48 || c > 57) break; id = id * 10 + (c - 48); }
        this.h.onAck(this, id, buf);
      } else if (s === 0x30) { this.connected = true; this._resolve(this); } // '0' connect
      else if (s === 0x34) { this.h.onError && this.h.onError(this, buf.toString()); }
    } else if (t === 0x32) { // ping -> pong
      if (this.h.onPing) this.h.onPing(this);
      this.ws.send('3');
    }
    else if (t === 0x30) this.ws.send('40'); // open -> connect namespace "/"
  }
  send(text) { this.ws.send(text); }
  close() { try { this.ws.terminate(); } catch (e) { /* already gone */ } }
}

async function connectMany(urls, n, handlers, concurrency) {
  const clients = new Array(n);
  let next = 0;
  const t0 = now();
  async function worker() {
    while (next < n) {
      const i = next++;
      const c = new WsClient(urls[i % urls.length], i, handlers);
      clients[i] = c;
      await Promise.race([c.ready, sleep(20000).then(() => { throw new Error(`client ${i}: no connect in 20 s`); })]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { clients, seconds: (now() - t0) / 1000 };
}

async function closeAll(clients) {
  for (const c of clients) if (c) c.close();
  await sleep(200);
}

const noop = () => {};

// ---------------------------------------------------------------- echo (event or ack)
async function echo(ack) {
  const n = cfg.clients;
  const payload = cfg.payload || 'hello, world';
  let measuring = false; let running = true; let count = 0; let errors = 0;
  const lat = new Samples();
  const fire = (c) => {
    c.seq++; c.t = now(); c.pending = 1;
    if (ack) c.send(`42${++c.ackId}["echo_ack",{"seq":${c.seq},"msg":"${payload}"}]`);
    else c.send(`42["echo",{"seq":${c.seq},"msg":"${payload}"}]`);
  };
  const done = (c, okSeq) => {
    if (!okSeq) errors++;
    c.pending = 0;
    if (measuring) { count++; lat.add(now() - c.t); }
    if (running) fire(c);
  };
  const handlers = {
    onEvent: (c, buf) => { if (!ack && c.pending) done(c, seqOf(buf) === c.seq); },
    onAck: (c, id, buf) => { if (ack && c.pending && id === c.ackId) done(c, seqOf(buf) === c.seq); },
  };
  const { clients, seconds } = await connectMany([cfg.url], n, handlers, cfg.concurrency || 50);
  for (const c of clients) fire(c);
  await sleep((cfg.warmup || 1) * 1000);
  await phase('measure_start');
  const cpu = cpuWindow(); const t0 = now();
  measuring = true;
  await sleep(cfg.duration * 1000);
  measuring = false;
  const wall = (now() - t0) / 1000; const lc = cpu();
  await phase('measure_end');
  running = false;
  const drainUntil = now() + 3000;
  while (clients.some((c) => c.pending) && now() < drainUntil) await sleep(10);
  await closeAll(clients);
  return { rate: count / wall, unit: 'round trips/s', latency_ms: lat.summary(), errors, loadgen_cpu: lc.cpu,
    seconds: wall, connect_seconds: seconds };
}

// ---------------------------------------------------------------- broadcast
async function bcast() {
  const n = cfg.clients;
  const window = cfg.window || 4;
  const rounds = new Map(); // seq -> {t, got}
  let seq = 0; let mode = 'idle'; let completed = 0; let errors = 0;
  let deliveries = 0; let lat = new Samples();
  let onComplete = noop;
  let sender = null;
  const send = () => {
    seq++;
    rounds.set(seq, { t: now(), got: 0 });
    sender.send(`42["bcast",{"seq":${seq}}]`);
  };
  const handlers = {
    onEvent: (c, buf) => {
      const s = seqOf(buf);
      const r = rounds.get(s);
      if (!r) { errors++; return; }
      const t = now();
      if (mode === 'measure') { deliveries++; lat.add(t - r.t); }
      if (++r.got === n) { rounds.delete(s); completed++; onComplete(); }
    },
    onAck: noop,
  };
  const { clients, seconds } = await connectMany(cfg.urls || [cfg.url], n, handlers, cfg.concurrency || 100);
  sender = clients[0];
  await sleep(300);

  // --- saturation: keep `window` rounds in flight
  let saturating = true;
  onComplete = () => { if (saturating) send(); };
  for (let i = 0; i < window; i++) send();
  mode = 'warmup';
  await sleep((cfg.warmup || 1) * 1000);
  await phase('measure_start', { name: 'saturation' });
  const cpu = cpuWindow(); let t0 = now();
  mode = 'measure';
  await sleep(cfg.duration * 1000);
  mode = 'drain';
  const wall = (now() - t0) / 1000; const lc = cpu();
  await phase('measure_end', { name: 'saturation' });
  saturating = false;
  const drainUntil = now() + 15000;
  while (rounds.size && now() < drainUntil) await sleep(10);
  const lost = rounds.size;
  const result = {
    rate: deliveries / wall, unit: 'deliveries/s', latency_ms: lat.summary(), rounds_per_s: deliveries / wall / n,
    loadgen_cpu: lc.cpu, seconds: wall, connect_seconds: seconds, connects_per_s: n / seconds, errors, incomplete_rounds: lost,
    window,
  };
  rounds.clear();

  // --- fixed offered load: `rate` rounds/s, open loop
  if (cfg.rate) {
    await sleep(300);
    deliveries = 0; lat = new Samples();
    onComplete = noop; mode = 'measure';
    const interval = 1000 / cfg.rate;
    const total = Math.max(1, Math.round(cfg.rate * (cfg.rateDuration || cfg.duration)));
    await phase('measure_start', { name: 'rate' });
    const cpu2 = cpuWindow(); t0 = now();
    for (let i = 0; i < total; i++) {
      send();
      const nextAt = t0 + (i + 1) * interval;
      const d = nextAt - now();
      if (d > 0) await sleep(d);
    }
    const sendWall = (now() - t0) / 1000;
    const until = now() + 15000;
    while (rounds.size && now() < until) await sleep(5);
    const lc2 = cpu2();
    await phase('measure_end', { name: 'rate' });
    result.fixed_rate = {
      offered_rounds_per_s: cfg.rate, offered_deliveries_per_s: cfg.rate * n, rounds: total,
      send_seconds: sendWall, latency_ms: lat.summary(), delivered: deliveries, expected: total * n,
      incomplete_rounds: rounds.size, loadgen_cpu: lc2.cpu,
    };
  }
  await closeAll(clients);
  return result;
}

// ---------------------------------------------------------------- idle connections
async function idle() {
  const n = cfg.clients;
  const handlers = { onEvent: noop, onAck: noop };
  // warm the server's code paths, then let the orchestrator take the baseline RSS
  const warm = await connectMany([cfg.url], 20, handlers, 20);
  await closeAll(warm.clients);
  await sleep(1000);
  await phase('baseline', {}, true);
  const cpu = cpuWindow();
  const { clients, seconds } = await connectMany([cfg.url], n, handlers, cfg.concurrency || 100);
  const lc = cpu();
  await sleep((cfg.settle || 2) * 1000);
  const alive = clients.filter((c) => c.connected).length;
  await phase('loaded', { clients: alive }, true);
  await closeAll(clients);
  return { connects_per_s: n / seconds, connect_seconds: seconds, clients: n, alive, loadgen_cpu: lc.cpu };
}

// ---------------------------------------------------------------- long-polling echo
function httpReq(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, method, path, host: '127.0.0.1', port: agent.port,
      headers: body !== undefined ? { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) } : {} },
    (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
        else resolve(text);
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function pollEcho() {
  const n = cfg.clients;
  const port = Number(new URL(cfg.url).port);
  const payload = cfg.payload || 'hello, world';
  let measuring = false; let running = true; let count = 0; let errors = 0;
  const lat = new Samples();
  const clients = [];
  async function client(i) {
    const getAgent = new http.Agent({ keepAlive: true, maxSockets: 1 }); getAgent.port = port;
    const postAgent = new http.Agent({ keepAlive: true, maxSockets: 1 }); postAgent.port = port;
    const base = '/socket.io/?EIO=4&transport=polling';
    const open = await httpReq(getAgent, 'GET', `${base}&t=${i}`);
    const sid = JSON.parse(open.slice(1).split('\x1e')[0]).sid;
    const path = `${base}&sid=${encodeURIComponent(sid)}`;
    const c = { sid, seq: 0, t: 0, pending: 0, connected: false, getAgent, postAgent, posting: Promise.resolve() };
    clients.push(c);
    const post = (body) => { c.posting = c.posting.then(() => httpReq(postAgent, 'POST', path, body)).catch((e) => { if (running) throw e; }); return c.posting; };
    const fire = () => { c.seq++; c.t = now(); c.pending = 1; post(`42["echo",{"seq":${c.seq},"msg":"${payload}"}]`); };
    await post('40');
    // reader loop: always one GET outstanding
    c.reader = (async () => {
      while (running) {
        let body;
        try { body = await httpReq(getAgent, 'GET', path); } catch (e) { if (running) throw e; return; }
        for (const p of body.split('\x1e')) {
          if (p === '2') post('3');
          else if (p.startsWith('40')) { c.connected = true; }
          else if (p.startsWith('42')) {
            if (c.pending) {
              if (seqOf(Buffer.from(p)) !== c.seq) errors++;
              c.pending = 0;
              if (measuring) { count++; lat.add(now() - c.t); }
              if (running) fire();
            }
          } else if (p === '1') { return; }
        }
      }
    })();
    while (!c.connected && running) await sleep(5);
    return { c, fire };
  }
  const t0c = now();
  const made = await Promise.all(Array.from({ length: n }, (_, i) => client(i)));
  const connectSeconds = (now() - t0c) / 1000;
  for (const m of made) m.fire();
  await sleep((cfg.warmup || 1) * 1000);
  await phase('measure_start');
  const cpu = cpuWindow(); const t0 = now();
  measuring = true;
  await sleep(cfg.duration * 1000);
  measuring = false;
  const wall = (now() - t0) / 1000; const lc = cpu();
  await phase('measure_end');
  running = false;
  const until = now() + 3000;
  while (clients.some((c) => c.pending) && now() < until) await sleep(10);
  // close the sessions politely (server answers the pending GET), then drop sockets
  await Promise.race([Promise.all(clients.map((c) => httpReq(c.postAgent, 'POST',
    `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(c.sid)}`, '1').catch(noop))), sleep(2000)]);
  for (const c of clients) { c.getAgent.destroy(); c.postAgent.destroy(); }
  return { rate: count / wall, unit: 'round trips/s', latency_ms: lat.summary(), errors, loadgen_cpu: lc.cpu,
    seconds: wall, connect_seconds: connectSeconds };
}

// ---------------------------------------------------------------- soak
// N idle clients (they answer pings; the time of each ping is kept, for the
// ping interval), then three measured phases one after the other, the idle
// clients pinged throughout:
//   1. echo, `duration` s: `echoClients` clients each sending an echo every
//      1/`echoRate` s (open loop: latency of every reply);
//   2. churn, `churnSeconds` s: a new client every 1/`churnRate` s, its
//      connect time (TCP connect to the Socket.IO CONNECT), closed again after
//      `churnHold` s (at most 200 in flight);
//   3. broadcast, `bcastSeconds` s: one emit to every client each
//      `bcastEvery` s (latency of every delivery).
// Bounded: every timer stops at the end of its phase; counts are bounded by
// rate x duration.
async function soak() {
  const n = cfg.clients;
  const pingTimes = new Map(); // client index -> [t, ...] (ms)
  let recording = false; let bcastMeasuring = false;
  const bcastSent = new Map(); const bcastLat = new Samples();
  const idleHandlers = {
    onEvent: (c, buf) => {
      if (!bcastMeasuring || buf[4] !== 0x62) return; // 42["bcast",...
      const t0 = bcastSent.get(seqOf(buf));
      if (t0 !== undefined) bcastLat.add(now() - t0);
    },
    onAck: noop,
    onPing: (c) => {
      if (!recording) return;
      let a = pingTimes.get(c.idx); if (!a) { a = []; pingTimes.set(c.idx, a); } a.push(now());
    },
  };
  const cpu0 = cpuWindow();
  const { clients, seconds } = await connectMany([cfg.url], n, idleHandlers, cfg.concurrency || 100);
  const connectCpu = cpu0();
  await phase('connected', { clients: clients.filter((c) => c.connected).length });
  let echoMeasuring = false;
  const echoLat = new Samples(); let echoErrors = 0; let echoLost = 0;
  const echoHandlers = {
    onEvent: (c, buf) => {
      if (buf[4] !== 0x65) return; // not 42["echo",... (a broadcast reaches these clients too)
      const s = seqOf(buf); const t0 = c.sent.get(s);
      if (t0 === undefined) { echoErrors++; return; }
      c.sent.delete(s);
      if (echoMeasuring) echoLat.add(now() - t0);
    },
    onAck: noop,
  };
  const echo = (await connectMany([cfg.url], cfg.echoClients || 10, echoHandlers, 10)).clients;
  for (const c of echo) c.sent = new Map();
  await sleep((cfg.settle || 5) * 1000);
  await phase('measure_start', {}, true);
  recording = true;
  const cpu = cpuWindow(); const t0 = now();
  // 1. echo
  const echoEvery = 1000 / (cfg.echoRate || 50);
  const timers = [];
  echoMeasuring = true;
  echo.forEach((c, i) => {
    setTimeout(() => timers.push(setInterval(() => {
      c.seq++; c.sent.set(c.seq, now());
      c.send(`42["echo",{"seq":${c.seq},"msg":"soak"}]`);
    }, echoEvery)), (i * echoEvery) / echo.length);
  });
  await sleep(cfg.duration * 1000);
  for (const t of timers) clearInterval(t);
  await sleep(500);
  echoMeasuring = false;
  for (const c of echo) echoLost += c.sent.size;
  // 2. churn
  const churnLat = new Samples(); let churnFailed = 0; let churnOpen = 0; let churnSkipped = 0;
  const churned = [];
  if (cfg.churnRate && cfg.churnSeconds) {
    const timer = setInterval(() => {
      if (churnOpen >= 200) { churnSkipped++; return; }
      churnOpen++;
      const ts = now();
      const c = new WsClient(cfg.url, -1, { onEvent: noop, onAck: noop });
      churned.push(c);
      c.ready.then(() => {
        churnLat.add(now() - ts);
        setTimeout(() => { c.close(); churnOpen--; }, (cfg.churnHold || 1) * 1000);
      }, () => { churnFailed++; churnOpen--; });
    }, 1000 / cfg.churnRate);
    await sleep(cfg.churnSeconds * 1000);
    clearInterval(timer);
    const until = now() + 5000;
    while (churnOpen > 0 && now() < until) await sleep(50);
  }
  // 3. broadcast
  let bseq = 0;
  if (cfg.bcastEvery && cfg.bcastSeconds) {
    bcastMeasuring = true;
    const timer = setInterval(() => {
      bseq++; bcastSent.set(bseq, now());
      echo[0].send(`42["bcast",{"seq":${bseq}}]`);
    }, cfg.bcastEvery * 1000);
    await sleep(cfg.bcastSeconds * 1000);
    clearInterval(timer);
    await sleep(Math.min(3000, cfg.bcastEvery * 1000));
    bcastMeasuring = false;
  }
  recording = false;
  const wall = (now() - t0) / 1000; const lc = cpu();
  await phase('measure_end', {}, true);
  // ping intervals over all three phases
  const intervals = new Samples(4_000_000);
  const setting = (cfg.pingInterval || 5) * 1000;
  let outside = 0; let count = 0;
  for (const a of pingTimes.values()) {
    for (let i = 1; i < a.length; i++) {
      const d = a[i] - a[i - 1];
      intervals.add(d); count++;
      if (Math.abs(d - setting) > 0.05 * setting) outside++;
    }
  }
  const alive = clients.filter((c) => c.connected).length;
  await closeAll(clients); await closeAll(echo); await closeAll(churned);
  return {
    clients: n, alive, connects_per_s: n / seconds, connect_seconds: seconds, connect_loadgen_cpu: connectCpu.cpu,
    seconds: wall, loadgen_cpu: lc.cpu,
    echo: { latency_ms: echoLat.summary(), errors: echoErrors, lost: echoLost,
      offered_per_s: (cfg.echoClients || 10) * (cfg.echoRate || 50), seconds: cfg.duration },
    churn: { connect_ms: churnLat.summary(), failed: churnFailed, skipped: churnSkipped,
      offered_per_s: cfg.churnRate || 0, seconds: cfg.churnSeconds || 0 },
    bcast: { latency_ms: bcastLat.summary(), rounds: bseq, seconds: cfg.bcastSeconds || 0 },
    ping_interval_ms: { ...intervals.summary(), setting_ms: setting, outside_5pct: outside, count },
  };
}

// ---------------------------------------------------------------- main
(async () => {
  let result;
  switch (cfg.scenario) {
    case 'echo': result = await echo(false); break;
    case 'echo_ack': result = await echo(true); break;
    case 'bcast': result = await bcast(); break;
    case 'idle': result = await idle(); break;
    case 'poll_echo': result = await pollEcho(); break;
    case 'soak': result = await soak(); break;
    default: fail(`unknown scenario ${cfg.scenario}`);
  }
  out({ result });
  clearTimeout(killer);
  process.exit(0);
})().catch((e) => fail(e && e.stack || e));
