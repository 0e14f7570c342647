// The demo page: every form emits one event to namespace /test; everything the
// server sends is shown as text (textContent), never parsed as HTML.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const MAX_LOG = 200;
  const PING_EVERY_MS = 2000;

  // Same origin as the page; WebSocket first, long-polling when it is missing or fails.
  // /?transport=sockjs: SockJS only (sockjs-client comes from the app's
  // sockjs_client_url setting); &sockjs=xhr-polling,... limits SockJS's own transports.
  const params = new URLSearchParams(location.search);
  const sockjsMode = params.get('transport') === 'sockjs';
  const options = {};
  if (sockjsMode) {
    options.transports = ['sockjs'];
    if (params.get('sockjs')) options.sockjs = {transports: params.get('sockjs').split(',')};
  }
  const socket = io(document.body.dataset.namespace || '/test', options);
  window.demoSocket = socket; // handy in the console (and for the browser tests)

  // ------------------------------------------------------------------ display

  function log(text, kind) {
    const item = document.createElement('li');
    item.textContent = text;
    if (kind) item.className = kind;
    const list = $('log');
    list.insertBefore(item, list.firstChild);
    while (list.children.length > MAX_LOG) list.removeChild(list.lastChild);
  }

  function asText(value) {
    if (typeof value === 'string') return value;
    try { return JSON.stringify(value); } catch (e) { return String(value); }
  }

  function setStatus(state, detail) {
    $('status').dataset.state = state;
    $('status').textContent = state;
    $('status-detail').textContent = detail ? '(' + detail + ')' : '';
    $('sid').textContent = socket.id || '\u2013';
    $('connect-button').hidden = state !== 'disconnected' || socket.active;
    $('disconnect-button').disabled = state !== 'connected';
  }

  function showTransport() {
    const engine = socket.io.engine;
    const transport = engine && engine.transport;
    $('transport').textContent = !transport ? '\u2013'
      : transport.name + (transport.subTransport ? ' (' + transport.subTransport + ')' : '');
  }

  // ------------------------------------------------------------------ connection events

  // One Engine per (re)connection: watch each for an upgrade (polling -> websocket).
  socket.io.on('open', () => {
    showTransport();
    socket.io.engine.on('upgrade', (transport) => {
      showTransport();
      log('Transport upgraded to ' + transport.name, 'info');
    });
  });

  socket.io.on('reconnect_attempt', (attempt) => setStatus('disconnected', 'reconnecting, attempt ' + attempt));

  socket.on('connect', () => {
    setStatus('connected');
    showTransport();
    log('Connected using ' + $('transport').textContent, 'info');
  });

  socket.on('disconnect', (reason) => {
    setStatus('disconnected', reason);
    log('Disconnected: ' + reason, 'info');
  });

  socket.on('connect_error', (err) => {
    const data = err.data === undefined ? '' : ' ' + asText(err.data);
    setStatus('disconnected', err.message);
    log('Connection failed: ' + err.message + data, 'error');
  });

  socket.on('my response', (msg, ack) => {
    const count = msg && msg.count !== undefined ? '#' + msg.count + ': ' : '';
    log('Received ' + count + asText(msg && msg.data !== undefined ? msg.data : msg));
    if (typeof ack === 'function') ack();
  });

  // ------------------------------------------------------------------ latency

  const samples = [];
  setInterval(() => {
    if (!socket.connected) return;
    const start = performance.now();
    socket.timeout(5000).emit('my ping', (err) => {
      if (err) return;
      samples.push(performance.now() - start);
      if (samples.length > 30) samples.shift();
      const avg = samples.reduce((a, b) => a + b, 0) / samples.length;
      $('latency').textContent = (Math.round(avg * 10) / 10).toFixed(1);
    });
  }, PING_EVERY_MS);

  // ------------------------------------------------------------------ forms

  function onSubmit(formId, send) {
    $(formId).addEventListener('submit', (event) => {
      event.preventDefault();
      send(event.target.elements);
    });
  }

  onSubmit('emit-form', (f) => socket.emit('my event', {data: f.data.value}));
  onSubmit('broadcast-form', (f) => socket.emit('my broadcast event', {data: f.data.value}));
  onSubmit('join-form', (f) => socket.emit('join', {room: f.room.value}));
  onSubmit('leave-form', (f) => socket.emit('leave', {room: f.room.value}));
  onSubmit('room-form', (f) => socket.emit('my room event', {room: f.room.value, data: f.data.value}));
  onSubmit('close-form', (f) => socket.emit('close room', {room: f.room.value}));
  onSubmit('disconnect-form', () => socket.emit('disconnect request'));
  $('connect-button').addEventListener('click', () => {
    setStatus('connecting');
    socket.connect();
  });

  if (sockjsMode) {
    $('mode').textContent = window.SockJS ? 'SockJS' : 'SockJS (sockjs-client is not loaded: set sockjs_client_url)';
    log('SockJS mode: Socket.IO over SockJS' + (params.get('sockjs') ? ' (' + params.get('sockjs') + ')' : ''), 'info');
  }
  setStatus('connecting');
})();
