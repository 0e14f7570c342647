// Benchmark server: Node socket.io 4.8 (same behaviour as tornado_sio_server.py).
//   node bench/servers/node_server.js --port 8000 [--redis redis://127.0.0.1:6379/0] [--ping-interval S]
// Modules are looked up in NODE_PATH (bench/run.py sets it to the npm cache).
'use strict';
const http = require('http');
const { Server } = require('socket.io');

const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
const port = Number(opt('--port'));
const redisUrl = opt('--redis');
const pingInterval = opt('--ping-interval');

async function main() {
  const httpServer = http.createServer();
  const options = { cors: { origin: '*' }, serveClient: false };
  if (pingInterval) options.pingInterval = Math.round(Number(pingInterval) * 1000);
  const io = new Server(httpServer, options);
  if (redisUrl) {
    const { createAdapter } = require('@socket.io/redis-adapter');
    const { createClient } = require('redis');
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  io.on('connection', (socket) => {
    socket.on('echo', (...a) => socket.emit('echo', ...a));
    socket.on('echo_ack', (...a) => {
      const cb = a.length && typeof a[a.length - 1] === 'function' ? a.pop() : null;
      if (cb) cb(...a);
    });
    socket.on('bcast', (...a) => io.emit('bcast', ...a));
  });
  httpServer.listen(port, '127.0.0.1', 2048, () => console.log(`READY ${port}`));
  process.on('SIGTERM', () => process.exit(0));
}
main().catch((e) => { console.error(e); process.exit(1); });
