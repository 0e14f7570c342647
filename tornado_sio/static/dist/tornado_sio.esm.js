/*! tornado-sio browser client, ES module (MIT) | source sha256 b7bfe0fa9f111d4b2731d650ab83f156286fdbdf8d3ef75ae70ea98654545d65 */
/*!
 * tornado-sio browser client: Engine.IO v4 / Socket.IO v5, no dependencies.
 *
 * Shaped like the official socket.io-client:
 *
 *   const socket = io('/test', {auth: {token: 'x'}});
 *   socket.on('connect', () => console.log(socket.id, socket.io.engine.transport.name));
 *   socket.emit('my event', {data: 'hi'}, (reply) => ...);
 *   const reply = await socket.timeout(2000).emitWithAck('my ping');
 *
 * Layers, bottom up: codecs (Engine.IO packets and payloads, Socket.IO packets with
 * binary attachments), transports (WebSocket, long-polling, plus any registered in
 * `io.transports`), Engine (one Engine.IO session: handshake, heartbeat, upgrade,
 * write buffer), Manager (`socket.io`: one Engine for many namespaces, reconnection
 * with backoff), Socket (one namespace: events, acks, buffering).
 *
 * ES2017, readable as it is: this file is the source. The served and shipped builds
 * (minified, pre-compressed, ES module, TypeScript declarations) are made from it by
 * tools/build_client.py into static/dist/; rebuild after any change. As a classic
 * script it sets `window.io` (and `module.exports` when present); the ES module
 * build exports `io` (also as `default` and `connect`), `Manager`, `Socket` and
 * `protocol` instead.
 */
const io = (function (root) {
  'use strict';

  const LOG_PREFIX = '[tornado-sio]';

  // ---------------------------------------------------------------- emitter

  /** Minimal event emitter, with the method names of socket.io's component-emitter
   *  (on/addEventListener, off/removeListener/removeAllListeners/removeEventListener,
   *  once, emit, listeners, hasListeners). A listener that throws does not break the
   *  caller's state machine: the error is re-thrown asynchronously, so it still shows
   *  up in the console as an uncaught error of *that listener*. */
  class Emitter {
    on(event, fn) {
      const map = this._callbacks || (this._callbacks = new Map());
      if (!map.has(event)) map.set(event, []);
      map.get(event).push(fn);
      return this;
    }
    once(event, fn) {
      const wrapper = (...args) => { this.off(event, wrapper); fn.apply(this, args); };
      wrapper.fn = fn;
      return this.on(event, wrapper);
    }
    /** off() removes every listener, off(event) those of one event, off(event, fn) one. */
    off(event, fn) {
      if (!this._callbacks) return this;
      if (event === undefined) { this._callbacks.clear(); return this; }
      const list = this._callbacks.get(event);
      if (!list) return this;
      if (fn === undefined) { this._callbacks.delete(event); return this; }
      const i = list.findIndex((l) => l === fn || l.fn === fn);
      if (i !== -1) list.splice(i, 1);
      if (!list.length) this._callbacks.delete(event);
      return this;
    }
    emit(event, ...args) {
      for (const fn of this.listeners(event)) {
        try { fn.apply(this, args); } catch (err) { setTimeout(() => { throw err; }); }
      }
      return this;
    }
    /** A copy of the listeners of one event. */
    listeners(event) { return ((this._callbacks && this._callbacks.get(event)) || []).slice(); }
    hasListeners(event) { return this.listeners(event).length > 0; }
  }
  const emitterProto = Emitter.prototype;
  emitterProto.addEventListener = emitterProto.on;
  emitterProto.removeListener = emitterProto.removeAllListeners = emitterProto.removeEventListener = emitterProto.off;

  /** Subscribe and return the function that unsubscribes. */
  function sub(emitter, event, fn) {
    emitter.on(event, fn);
    return () => emitter.off(event, fn);
  }

  /** Thrown (and caught inside the client) for input that breaks the protocol. */
  class ProtocolError extends Error {
    constructor(message) { super(message); this.name = 'ProtocolError'; }
  }

  // ---------------------------------------------------------------- binary helpers

  const isBinary = (obj) => obj instanceof ArrayBuffer || ArrayBuffer.isView(obj);
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  /** A copy of a plain object with fn applied to each value. */
  const mapValues = (obj, fn) => Object.keys(obj).reduce((out, k) => { out[k] = fn(obj[k]); return out; }, {});

  /** The bytes of an ArrayBuffer or view, as a Uint8Array over the same memory. */
  function toBytes(obj) {
    return obj instanceof ArrayBuffer ? new Uint8Array(obj) : new Uint8Array(obj.buffer, obj.byteOffset, obj.byteLength);
  }

  function base64Encode(obj) {
    const bytes = toBytes(obj);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  function base64Decode(text) {
    let s;
    try { s = atob(text); } catch (e) { throw new ProtocolError('invalid base64 in binary packet'); }
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return bytes.buffer;
  }

  const utf8Length = (s) => new TextEncoder().encode(s).length;

  // ---------------------------------------------------------------- Engine.IO v4 codec

  const EIO_TYPES = ['open', 'close', 'ping', 'pong', 'message', 'upgrade', 'noop'];
  const SEPARATOR = '\x1e';

  /** Encode a packet {type, data} for a WebSocket frame: a string, or the raw bytes
   *  of a binary message. */
  function encodePacket(packet) {
    if (packet.type === 'message' && isBinary(packet.data)) return packet.data;
    return EIO_TYPES.indexOf(packet.type) + (packet.data === undefined ? '' : packet.data);
  }

  /** Decode one frame (string, or ArrayBuffer for a binary message). */
  function decodePacket(frame) {
    if (typeof frame !== 'string') return {type: 'message', data: frame}; // binary frames are messages
    const type = /^[0-6]/.test(frame) && EIO_TYPES[frame.charAt(0)];
    if (!type) throw new ProtocolError('unknown Engine.IO packet ' + JSON.stringify(frame.slice(0, 10)));
    return frame.length > 1 ? {type, data: frame.slice(1)} : {type};
  }

  /** Long-polling body: packets joined by \x1e, binary ones as "b" + base64. */
  function encodePayload(packets) {
    return packets.map((p) => (p.type === 'message' && isBinary(p.data) ? 'b' + base64Encode(p.data) : encodePacket(p))).join(SEPARATOR);
  }

  function decodePayload(body) {
    return body.split(SEPARATOR).map((item) => (item.charAt(0) === 'b' ? {type: 'message', data: base64Decode(item.slice(1))} : decodePacket(item)));
  }

  // ---------------------------------------------------------------- Socket.IO v5 codec

  const SIO = {CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6};

  function hasBinary(obj, depth) {
    if (depth > 64 || !obj || typeof obj !== 'object') return false;
    if (isBinary(obj)) return true;
    if (Array.isArray(obj)) return obj.some((v) => hasBinary(v, depth + 1));
    if (typeof obj.toJSON === 'function') return false;
    return Object.keys(obj).some((k) => hasBinary(obj[k], depth + 1));
  }

  /** Replace every binary value by a placeholder; collect the buffers. */
  function deconstruct(obj, buffers) {
    if (isBinary(obj)) return {_placeholder: true, num: buffers.push(obj) - 1};
    if (Array.isArray(obj)) return obj.map((v) => deconstruct(v, buffers));
    if (isObject(obj) && typeof obj.toJSON !== 'function') return mapValues(obj, (v) => deconstruct(v, buffers));
    return obj;
  }

  function reconstruct(obj, buffers) {
    if (Array.isArray(obj)) return obj.map((v) => reconstruct(v, buffers));
    if (!isObject(obj)) return obj;
    if (obj._placeholder !== true) return mapValues(obj, (v) => reconstruct(v, buffers));
    if (!(obj.num >= 0 && obj.num < buffers.length)) throw new ProtocolError('invalid attachment placeholder');
    return buffers[obj.num];
  }

  /** Encode {type, nsp, data, id} into [text, ...binaryAttachments]. */
  function encodeSio(packet) {
    let type = packet.type;
    let data = packet.data;
    const buffers = [];
    if ((type === SIO.EVENT || type === SIO.ACK) && hasBinary(data, 0)) {
      type = type === SIO.EVENT ? SIO.BINARY_EVENT : SIO.BINARY_ACK;
      data = deconstruct(data, buffers);
    }
    let s = String(type);
    if (type === SIO.BINARY_EVENT || type === SIO.BINARY_ACK) s += buffers.length + '-';
    if (packet.nsp && packet.nsp !== '/') s += packet.nsp + ',';
    if (packet.id !== undefined && packet.id !== null) s += packet.id;
    if (data !== undefined) s += JSON.stringify(data);
    return [s].concat(buffers);
  }

  const isEvent = (d) => Array.isArray(d) && (typeof d[0] === 'string' || typeof d[0] === 'number');
  /** What each packet type may carry (by type number). */
  const PAYLOAD_CHECKS = [
    (d) => d === undefined || isObject(d), (d) => d === undefined, isEvent, Array.isArray,
    (d) => isObject(d) || typeof d === 'string', isEvent, Array.isArray,
  ];

  /** Parse the text part of a Socket.IO packet. Throws ProtocolError. */
  function decodeSioText(str) {
    const m = /^([0-6])(?:(\d+)-)?(\/[^,]*(?:,|$))?(\d+)?([\s\S]*)$/.exec(str);
    if (!m) throw new ProtocolError('malformed Socket.IO packet ' + JSON.stringify(str.slice(0, 20)));
    const packet = {type: Number(m[1]), nsp: '/'};
    const binary = packet.type === SIO.BINARY_EVENT || packet.type === SIO.BINARY_ACK;
    if (binary !== (m[2] !== undefined)) throw new ProtocolError('bad attachment count');
    if (binary) packet.attachments = Number(m[2]);
    if (packet.attachments > 1000) throw new ProtocolError('too many attachments');
    if (m[3]) packet.nsp = m[3].replace(/,$/, '');
    if (m[4] !== undefined) packet.id = Number(m[4]);
    if (m[5]) {
      try { packet.data = JSON.parse(m[5]); } catch (e) { throw new ProtocolError('invalid JSON in Socket.IO packet'); }
    }
    if (!PAYLOAD_CHECKS[packet.type](packet.data)) throw new ProtocolError('invalid payload for packet type ' + packet.type);
    return packet;
  }

  /** Stateful decoder: text packets come out at once, binary ones once all their
   *  attachments (the following binary frames) have arrived. */
  class SioDecoder {
    constructor() { this.pending = null; }
    /** Feed one Engine.IO message; return a complete packet or null. Throws ProtocolError. */
    add(data) {
      if (typeof data === 'string') {
        if (this.pending) throw new ProtocolError('text packet while waiting for binary attachments');
        const packet = decodeSioText(data);
        if (packet.attachments === 0) packet.data = reconstruct(packet.data, []); // checks placeholders
        if (!packet.attachments) return packet;
        this.pending = {packet, buffers: []};
        return null;
      }
      if (!this.pending) throw new ProtocolError('unexpected binary frame');
      const pending = this.pending;
      pending.buffers.push(data);
      if (pending.buffers.length < pending.packet.attachments) return null;
      this.pending = null;
      pending.packet.data = reconstruct(pending.packet.data, pending.buffers);
      return pending.packet;
    }
    reset() { this.pending = null; }
  }

  // ---------------------------------------------------------------- transports
  //
  // A transport moves Engine.IO packets ({type, data}) between the Engine and the
  // server. To add one, subclass io.Transport and register it by name:
  //
  //     io.transports.sockjs = class extends io.Transport { ... };
  //     io('/chat', {transports: ['sockjs']});
  //
  // This is the slot the SockJS transport fills. A subclass implements:
  //   get name()               the name it is registered under
  //   static isSupported(opts) optional; false makes the Engine skip it
  //   doOpen()                 start connecting; call this.onOpen() once connected
  //   write(packets)           send packets (an array); set this.writable = false while
  //                            busy and call this.onDrain() when it can take more
  //   doClose()                release the connection (close() then reports 'forced close')
  //   pause(cb), resume()      only for a transport the Engine upgrades *away* from
  // and calls this.onPacket(packet), this.onError(message, cause) and
  // this.onClose(reason) as things happen on the wire. `this.query` holds the query
  // string (EIO, transport, and sid once known) and `this.uri(scheme)` builds the
  // endpoint URL. A transport without Engine.IO framing on the wire (SockJS) maps
  // its frames to packets itself: once connected it calls
  //   this.onPacket({type: 'open', data: JSON.stringify({sid, upgrades: [], pingInterval: 0, pingTimeout: 0, maxPayload})})
  // (pingInterval 0 turns the Engine's heartbeat check off; SockJS has its own),
  // then turns each received frame into {type: 'message', data} and each written
  // 'message' packet into a frame.

  class Transport extends Emitter {
    constructor(opts) {
      super();
      this.opts = opts;
      this.query = Object.assign({}, opts.query);
      this.readyState = 'closed';
      this.writable = false;
    }
    open() { this.readyState = 'opening'; this.doOpen(); return this; }
    close() { if (this.readyState !== 'closed') { this.doClose(); this.onClose('forced close'); } return this; }
    send(packets) { if (this.readyState === 'open') this.write(packets); }
    onOpen() { this.readyState = 'open'; this.writable = true; this.emit('open'); }
    onPacket(packet) { this.emit('packet', packet); }
    onError(message, cause) { this.emit('error', Object.assign(new Error(message), {type: 'TransportError', description: cause})); }
    onDrain() { this.writable = true; this.emit('drain'); }
    onClose(reason) {
      if (this.readyState === 'closed') return;
      this.readyState = 'closed';
      this.writable = false;
      this.emit('close', reason || 'transport close');
    }
    /** The endpoint URL with this transport's query string. */
    uri(scheme) {
      const o = this.opts;
      const port = o.port && Number(o.port) !== (o.secure ? 443 : 80) ? ':' + o.port : '';
      const host = o.hostname.indexOf(':') !== -1 ? '[' + o.hostname + ']' : o.hostname; // IPv6
      const qs = Object.keys(this.query).filter((k) => this.query[k] !== undefined && this.query[k] !== null)
        .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(this.query[k])).join('&');
      return scheme + '://' + host + port + o.path + (qs ? '?' + qs : '');
    }
  }

  /** opts.WebSocket (e.g. node's `ws`), else the global one. Looked up at each use:
   *  a page may add or restore window.WebSocket after this script ran. */
  const getWebSocket = (opts) => (opts && opts.WebSocket) || (typeof WebSocket === 'function' ? WebSocket : undefined);

  class WebSocketTransport extends Transport {
    get name() { return 'websocket'; }
    static isSupported(opts) { return !!getWebSocket(opts); }
    doOpen() {
      const WS = getWebSocket(this.opts);
      try { this.ws = new WS(this.uri(this.opts.secure ? 'wss' : 'ws')); } catch (err) {
        return setTimeout(() => { this.onError('websocket error', err); this.onClose('transport error'); });
      }
      this.ws.binaryType = 'arraybuffer';
      this.ws.onopen = () => this.onOpen();
      this.ws.onclose = (ev) => this.onClose('transport close', ev);
      this.ws.onerror = (ev) => this.onError('websocket error', ev);
      this.ws.onmessage = (ev) => {
        let packet;
        try { packet = decodePacket(ev.data); } catch (err) { return this.emit('parseError', err); }
        this.onPacket(packet);
      };
    }
    write(packets) {
      for (const p of packets) {
        try { this.ws.send(encodePacket(p)); } catch (err) { return this.onError('websocket error', err); }
      }
    }
    doClose() {
      if (!this.ws) return;
      this.ws.onopen = this.ws.onclose = this.ws.onerror = this.ws.onmessage = null;
      try { this.ws.close(); } catch (e) { /* already closed */ }
    }
  }

  let cacheBuster = 0;

  class PollingTransport extends Transport {
    get name() { return 'polling'; }
    static isSupported() { return typeof XMLHttpRequest === 'function'; }
    constructor(opts) { super(opts); this.polling = false; this.requests = new Set(); }
    doOpen() { this.poll(); }
    /** One XHR; cb(err, responseText). */
    request(method, body, cb) {
      this.query.t = Date.now().toString(36) + '.' + (cacheBuster++).toString(36);
      const xhr = new XMLHttpRequest();
      this.requests.add(xhr);
      xhr.open(method, this.uri(this.opts.secure ? 'https' : 'http'), true);
      xhr.withCredentials = !!this.opts.withCredentials;
      const headers = this.opts.extraHeaders || {};
      for (const name of Object.keys(headers)) {
        try { xhr.setRequestHeader(name, headers[name]); } catch (err) {
          console.warn(LOG_PREFIX, 'extraHeaders: cannot set ' + JSON.stringify(name) + ':', err.message);
        }
      }
      if (body !== null) xhr.setRequestHeader('Content-Type', 'text/plain;charset=UTF-8');
      xhr.onreadystatechange = () => {
        if (xhr.readyState !== 4) return;
        this.requests.delete(xhr);
        if (xhr.status === 200) cb(null, xhr.responseText);
        else cb(new Error('HTTP ' + xhr.status + (xhr.responseText ? ': ' + xhr.responseText.slice(0, 200) : '')));
      };
      xhr.send(body);
    }
    poll() {
      this.polling = true;
      this.request('GET', null, (err, text) => {
        if (this.readyState === 'closed') return;
        if (err) { this.onError('xhr poll error', err); return this.onClose('transport error'); }
        this.onPollData(text);
      });
    }
    onPollData(text) {
      let packets;
      try { packets = decodePayload(text); } catch (err) { return this.emit('parseError', err); }
      for (const packet of packets) {
        if (this.readyState === 'opening' && packet.type === 'open') this.onOpen();
        if (packet.type === 'close') return this.onClose('transport close');
        this.onPacket(packet);
        if (this.readyState === 'closed') return;
      }
      this.polling = false;
      if (this.readyState === 'pausing') this.emit('pollComplete');
      else if (this.readyState === 'open' || this.readyState === 'opening') this.poll();
    }
    write(packets) {
      // Stay under the server's maxPayload: send in sequential POSTs.
      const limit = this.opts.maxPayload || 1e6;
      let size = 0;
      let n = 0;
      for (; n < packets.length; n++) {
        const d = packets[n].data;
        size += 2 + (isBinary(d) ? Math.ceil(toBytes(d).length / 3) * 4 : utf8Length(d === undefined ? '' : String(d)));
        if (n > 0 && size > limit) break;
      }
      const batch = packets.slice(0, n);
      const rest = packets.slice(n);
      this.writable = false;
      this.request('POST', encodePayload(batch), (err) => {
        if (this.readyState === 'closed') return;
        if (err) { this.onError('xhr post error', err); return this.onClose('transport error'); }
        if (rest.length) this.write(rest);
        else this.onDrain();
      });
    }
    /** Stop polling, then cb() once no GET or POST is in flight (used for the upgrade). */
    pause(cb) {
      this.readyState = 'pausing';
      let waiting = 0;
      const done = () => { if (--waiting <= 0) { this.readyState = 'paused'; cb(); } };
      if (this.polling) { waiting++; this.once('pollComplete', done); }
      if (!this.writable) { waiting++; this.once('drain', done); }
      if (!waiting) { waiting = 1; done(); }
    }
    /** Undo pause() after a failed upgrade. */
    resume() {
      if (this.readyState !== 'pausing' && this.readyState !== 'paused') return;
      this.readyState = 'open';
      if (!this.polling) this.poll();
    }
    doClose() {
      // Drop the pending poll, then tell the server (it ends the session at once).
      for (const xhr of this.requests) { xhr.onreadystatechange = null; xhr.abort(); }
      this.requests.clear();
      if (this.query.sid && this.readyState !== 'opening') {
        this.request('POST', encodePayload([{type: 'close'}]), () => {});
      }
    }
  }

  /** opts.SockJS, else window.SockJS (sockjs-client 1.x), looked up at each use. */
  const getSockJS = (opts) => (opts && opts.SockJS) || (root && typeof root.SockJS === 'function' ? root.SockJS : undefined);

  /**
   * The SockJS fallback (server: tornado_sio/transports/sockjs.py, docs/sockjs.md),
   * for networks where neither WebSocket nor long-polling gets through. It needs
   * sockjs-client on the page; without it the Engine skips this transport.
   * Options: sockjsPath ('/sockjs'), sockjs (passed to the SockJS constructor, e.g.
   * {transports: ['xhr-streaming', 'xhr-polling']}), SockJS (the constructor).
   *
   * On the wire each SockJS message is one Socket.IO packet's text (what follows the
   * "4" of an Engine.IO message); a binary attachment is its own message, "b" + base64.
   * There is no Engine.IO handshake or ping: SockJS has its own heartbeat, so the
   * open packet is made here with pingInterval 0. `subTransport` is the transport
   * SockJS chose (xhr-streaming, xhr-polling, ...).
   */
  class SockJSTransport extends Transport {
    get name() { return 'sockjs'; }
    static isSupported(opts) { return !!getSockJS(opts); }
    /** The router URL: sockjsPath on the endpoint's host, with the user's query. */
    sockjsUrl() {
      const query = Object.assign({}, this.query);
      for (const k of ['EIO', 'transport', 'sid', 't']) delete query[k];
      const opts = Object.assign({}, this.opts, {path: (this.opts.sockjsPath || '/sockjs').replace(/\/$/, '')});
      return Transport.prototype.uri.call({opts, query}, this.opts.secure ? 'https' : 'http');
    }
    doOpen() {
      const SockJS = getSockJS(this.opts);
      try { this.sock = new SockJS(this.sockjsUrl(), null, Object.assign({}, this.opts.sockjs)); } catch (err) {
        return setTimeout(() => { this.onError('sockjs error', err); this.onClose('transport error'); });
      }
      let opened = false;
      this.sock.onopen = () => {
        opened = true;
        this.subTransport = this.sock.transport;
        this.onOpen();
        const sid = 'sockjs-' + Math.random().toString(36).slice(2, 12);
        this.onPacket({type: 'open', data: JSON.stringify(
          {sid, upgrades: [], pingInterval: 0, pingTimeout: 0, maxPayload: this.opts.maxPayload || 1e6})});
      };
      this.sock.onmessage = (ev) => {
        const text = ev.data;
        if (typeof text !== 'string') return this.emit('parseError', new ProtocolError('non-text SockJS message'));
        let data = text;
        if (text.charAt(0) === 'b') {
          try { data = base64Decode(text.slice(1)); } catch (err) { return this.emit('parseError', err); }
        }
        this.onPacket({type: 'message', data});
      };
      this.sock.onclose = (ev) => {
        if (!opened) this.onError('sockjs error', ev); // before the open: the Engine may fall back
        this.onClose(opened ? 'transport close' : 'transport error');
      };
    }
    /** Whether sockjs-client still holds or is posting messages (its xhr/jsonp sender;
     *  sockjs-client 1.x internals, absent on its WebSocket, which flushes on close). */
    sending() {
      const t = this.sock && this.sock._transport;
      return !!(t && ((t.sendBuffer && t.sendBuffer.length) || t.sendStop));
    }
    write(packets) {
      for (const p of packets) {
        if (p.type !== 'message') continue; // ping, pong, close: SockJS has its own
        this.sock.send(isBinary(p.data) ? 'b' + base64Encode(p.data) : String(p.data));
      }
      if (!this.sending()) return;
      // Report drain once sockjs-client has posted everything, so a close right after
      // a write (socket.disconnect()) does not abort the last messages.
      this.writable = false;
      const check = () => {
        if (this.readyState !== 'open') return;
        if (this.sending()) this.drainTimer = setTimeout(check, 20);
        else this.onDrain();
      };
      this.drainTimer = setTimeout(check, 20);
    }
    doClose() {
      clearTimeout(this.drainTimer);
      if (!this.sock) return;
      this.sock.onopen = this.sock.onmessage = this.sock.onclose = null;
      try { this.sock.close(); } catch (e) { /* already closed */ }
    }
  }

  /** Registered transports by name (another can be added: io.transports.NAME = class ...). */
  const transports = {websocket: WebSocketTransport, polling: PollingTransport, sockjs: SockJSTransport};

  // ---------------------------------------------------------------- engine (one Engine.IO session)

  class Engine extends Emitter {
    /** opts: hostname, port, secure, path, query, transports, upgrade, withCredentials (from io()) */
    constructor(opts) {
      super();
      Object.assign(this, {opts, readyState: 'closed', id: null, transport: null, writeBuffer: [], upgrading: false,
        upgrades: [], pingInterval: 0, pingTimeout: 0, maxPayload: 0, probed: new Set()});
    }

    open() {
      this.readyState = 'opening';
      this.candidates = this.opts.transports.filter((name) => this.supported(name));
      if (this.candidates.length) this.tryTransport(0);
      else setTimeout(() => this.onError(new Error('No transports available')));
      return this;
    }

    /** The options of transport `name`: the Engine's, with opts.transportOptions[name]
     *  laid over them (a shallow merge, as in socket.io-client: its extraHeaders replace
     *  the top-level ones; its query is added to the top-level query). */
    transportOpts(name) {
      const own = (this.opts.transportOptions && this.opts.transportOptions[name]) || {};
      return Object.assign({}, this.opts, own, {query: Object.assign({}, this.opts.query, own.query)});
    }

    supported(name) {
      const T = transports[name];
      return !!T && (typeof T.isSupported !== 'function' || T.isSupported(this.transportOpts(name)));
    }

    createTransport(name, sid) {
      const opts = this.transportOpts(name);
      Object.assign(opts.query, {EIO: 4, transport: name});
      if (sid) opts.query.sid = sid;
      opts.maxPayload = this.maxPayload;
      return new transports[name](opts);
    }

    tryTransport(index) {
      const name = this.candidates[index];
      const transport = this.createTransport(name);
      this.setTransport(transport);
      // Before the handshake, a failing transport hands over to the next candidate
      // (WebSocket blocked by a proxy -> long-polling). onHandshake() clears this.
      transport.fallback = (err) => {
        if (this.transport !== transport || this.readyState !== 'opening' || index + 1 >= this.candidates.length) return false;
        console.info(LOG_PREFIX, name + ' failed, trying ' + this.candidates[index + 1], err || '');
        this.probed.add(name); // and do not probe it again in this session
        transport.off().close();
        this.tryTransport(index + 1);
        return true;
      };
      transport.open();
    }

    setTransport(transport) {
      if (this.transport) this.transport.off();
      this.transport = transport;
      const fellBack = (err) => !!(transport.fallback && transport.fallback(err));
      transport.on('drain', () => this.flush()).on('packet', (p) => this.onPacket(p))
        .on('parseError', (err) => this.onParseError(err))
        .on('error', (err) => { if (!fellBack(err)) this.onError(err); })
        .on('close', (reason) => { if (!fellBack()) this.onClose(reason); });
    }

    onPacket(packet) {
      if (this.readyState === 'closed') return;
      this.emit('packet', packet);
      switch (packet.type) {
        case 'open': return this.onHandshake(packet.data);
        case 'ping':
          this.resetPingTimeout();
          this.sendPacket({type: 'pong'});
          this.emit('ping');
          return this.maybeUpgrade();
        case 'message': return this.emit('data', packet.data);
        case 'close': return this.onClose('transport close');
        default: // pong, noop, upgrade: nothing to do
      }
    }

    onHandshake(text) {
      let data;
      try { data = JSON.parse(text); } catch (e) { data = null; }
      if (!isObject(data) || typeof data.sid !== 'string' || this.readyState !== 'opening') {
        return this.onParseError(new ProtocolError('invalid handshake'));
      }
      this.transport.fallback = null;
      this.id = data.sid;
      this.transport.query.sid = data.sid;
      this.upgrades = Array.isArray(data.upgrades) ? data.upgrades.filter((u) => this.opts.transports.indexOf(u) !== -1) : [];
      this.pingInterval = Number(data.pingInterval) || 0;
      this.pingTimeout = Number(data.pingTimeout) || 0;
      this.maxPayload = Number(data.maxPayload) || 0;
      this.transport.opts.maxPayload = this.maxPayload;
      this.readyState = 'open';
      this.emit('open');
      if (this.readyState !== 'open') return;
      this.flush();
      this.resetPingTimeout();
      this.maybeUpgrade();
    }

    resetPingTimeout() {
      clearTimeout(this.pingTimer);
      if (this.pingInterval > 0) this.pingTimer = setTimeout(() => this.onClose('ping timeout'), this.pingInterval + this.pingTimeout);
    }

    /** Probe a better transport if we run on polling and one is now available.
     *  Checked at the handshake and on every ping, so a WebSocket that appears late
     *  (a restored or polyfilled window.WebSocket) is still picked up. */
    maybeUpgrade() {
      if (this.opts.upgrade === false || this.upgrading || this.readyState !== 'open' || this.transport.name !== 'polling') return;
      const name = this.upgrades.find((n) => n !== 'polling' && !this.probed.has(n) && this.supported(n));
      if (name) { this.probed.add(name); this.probe(name); }
    }

    /** Engine.IO v4 upgrade: open the new transport with our sid, "2probe" ->
     *  "3probe", pause polling, send "5", switch. */
    probe(name) {
      const transport = this.createTransport(name, this.id);
      const fail = (reason) => {
        if (this.probeTransport !== transport) return;
        cleanup();
        this.upgrading = false;
        transport.close();
        if (this.transport.resume) this.transport.resume(); // polling may already be paused
        this.emit('upgradeError', new Error('probe error: ' + reason));
        this.flush();
      };
      const onOpen = () => transport.send([{type: 'ping', data: 'probe'}]);
      const onPacket = (packet) => {
        if (packet.type !== 'pong' || packet.data !== 'probe') return fail('unexpected ' + packet.type);
        transport.off('packet', onPacket);
        this.upgrading = true;
        this.emit('upgrading', transport);
        this.transport.pause(() => {
          if (this.probeTransport !== transport || this.readyState !== 'open') return;
          cleanup();
          const old = this.transport;
          this.setTransport(transport);
          transport.send([{type: 'upgrade'}]);
          old.off();
          old.readyState = 'closed'; // the server has moved the session; nothing to send on it
          this.upgrading = false;
          this.emit('upgrade', transport);
          this.flush();
        });
      };
      const onError = () => fail('transport error');
      const cleanup = () => {
        this.probeTransport = null;
        transport.off('open', onOpen).off('packet', onPacket).off('error', onError).off('close', onError);
      };
      this.probeTransport = transport;
      transport.on('open', onOpen).on('packet', onPacket).on('error', onError).on('close', onError);
      transport.open();
    }

    write(data) { this.sendPacket({type: 'message', data}); return this; }

    sendPacket(packet) {
      if (this.readyState !== 'opening' && this.readyState !== 'open') return;
      this.writeBuffer.push(packet);
      this.flush();
    }

    flush() {
      if (this.readyState === 'closed' || this.upgrading || !this.transport.writable || !this.writeBuffer.length) return;
      const batch = this.writeBuffer;
      this.writeBuffer = [];
      this.transport.send(batch);
    }

    /** Close from our side, after what is already written has gone out. */
    close() {
      if (this.readyState === 'opening') this.onClose('forced close');
      if (this.readyState !== 'open') return this;
      this.readyState = 'closing';
      const finish = () => { clearTimeout(guard); this.onClose('forced close'); };
      const guard = setTimeout(finish, 1000);
      if (this.writeBuffer.length && !this.upgrading && this.transport.writable) this.flush();
      if (this.writeBuffer.length || !this.transport.writable) this.transport.once('drain', finish);
      else finish();
      return this;
    }

    onParseError(err) {
      console.warn(LOG_PREFIX, 'closing after a malformed packet:', err.message);
      this.onClose('parse error', err);
    }

    onError(err) { this.emit('error', err); this.onClose('transport error', err); }

    onClose(reason, description) {
      if (this.readyState === 'closed') return;
      const wasOpen = this.readyState !== 'opening';
      clearTimeout(this.pingTimer);
      if (this.probeTransport) { const p = this.probeTransport; this.probeTransport = null; p.off(); p.close(); }
      if (this.transport) { this.transport.off(); this.transport.close(); } // none: no transport was available
      this.readyState = 'closed';
      this.id = null;
      this.writeBuffer = [];
      this.upgrading = false;
      if (wasOpen || reason !== 'transport error') this.emit('close', reason, description);
    }
  }

  // ---------------------------------------------------------------- manager (socket.io)

  /** The absolute URL of io()'s or new Manager()'s uri (the page's own by default). */
  function parseUri(uri) {
    const base = typeof location !== 'undefined' ? location.href : 'http://localhost/';
    return new URL(uri === undefined || uri === null ? '/' : uri, base);
  }

  /** The Manager's options: the user's, plus where to connect (from the URL) and defaults. */
  function managerOptions(url, opts) {
    const secure = url.protocol === 'https:' || url.protocol === 'wss:';
    const query = {};
    const add = (v, k) => { query[k] = v; };
    if (typeof opts.query === 'string') new URLSearchParams(opts.query).forEach(add);
    else Object.assign(query, opts.query);
    url.searchParams.forEach(add);
    return Object.assign({}, opts, {
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (secure ? 443 : 80),
      secure,
      path: (opts.path || '/socket.io').replace(/\/$/, '') + '/',
      query,
      transports: (opts.transports || ['websocket', 'polling']).slice(),
    });
  }

  class Manager extends Emitter {
    /** new Manager(uri?, opts?): one connection to the server of `uri` (its path is not
     *  used: namespaces are opened with manager.socket(nsp)). io() makes these. */
    constructor(uri, opts) {
      super();
      if (typeof uri === 'object' && uri !== null) { opts = uri; uri = undefined; }
      const url = parseUri(uri);
      opts = managerOptions(url, Object.assign({}, opts));
      uri = url.href;
      const opt = (name, fallback) => (opts[name] === undefined ? fallback : opts[name]);
      Object.assign(this, {uri, opts, nsps: {}, subs: [], engine: null, decoder: new SioDecoder(),
        _readyState: 'closed', _reconnecting: false, skipReconnect: false, attempts: 0,
        _reconnection: opts.reconnection !== false, _reconnectionAttempts: opt('reconnectionAttempts', Infinity),
        _reconnectionDelay: opt('reconnectionDelay', 1000), _reconnectionDelayMax: opt('reconnectionDelayMax', 5000),
        _randomizationFactor: opt('randomizationFactor', 0.5), _timeout: opt('timeout', 20000),
        _autoConnect: opts.autoConnect !== false});
      if (this._autoConnect) this.open();
    }

    // Getters with no argument, chainable setters with one (socket.io-client's Manager
    // API). A new value applies from the next connection attempt on.

    /** Whether to reconnect after a lost connection; false also stops a reconnection under way. */
    reconnection(v) {
      if (!arguments.length) return this._reconnection;
      this._reconnection = !!v;
      if (!v) this.skipReconnect = true;
      return this;
    }
    /** How many reconnection attempts before 'reconnect_failed' (Infinity by default). */
    reconnectionAttempts(v) { return this._option('_reconnectionAttempts', v); }
    /** The first reconnection delay in ms (doubled at each attempt). */
    reconnectionDelay(v) { return this._option('_reconnectionDelay', v); }
    /** The longest reconnection delay in ms. */
    reconnectionDelayMax(v) { return this._option('_reconnectionDelayMax', v); }
    /** The jitter of each delay, 0 to 1: a delay d becomes d +/- d * factor * random. */
    randomizationFactor(v) { return this._option('_randomizationFactor', v); }
    /** How long a connection attempt may take, in ms (false: forever). */
    timeout(v) { if (!arguments.length) return this._timeout; this._timeout = v; return this; }
    _option(name, v) { if (v === undefined) return this[name]; this[name] = v; return this; }

    /** The next reconnection delay: reconnectionDelay * 2^attempts with jitter, capped
     *  at reconnectionDelayMax (the formula of socket.io-client's backoff). */
    backoffDelay() {
      let ms = this._reconnectionDelay * Math.pow(2, this.attempts++);
      const jitter = this._randomizationFactor > 0 && this._randomizationFactor <= 1 ? this._randomizationFactor : 0;
      if (jitter) {
        const rand = Math.random();
        const deviation = Math.floor(rand * jitter * ms);
        ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
      }
      return Math.min(ms, this._reconnectionDelayMax) | 0;
    }

    /** Open the Engine.IO session. fn(err) when done (used by reconnect()). */
    open(fn) {
      if (this._readyState === 'open' || this._readyState === 'opening') return this;
      const engine = new Engine(this.opts);
      this.engine = engine;
      this._readyState = 'opening';
      this.skipReconnect = false;
      const onError = (err) => {
        if (this.engine !== engine || this._readyState !== 'opening') return;
        this.cleanup();
        this._readyState = 'closed';
        engine.close();
        this.emit('error', err);
        if (fn) fn(err);
        else this.maybeReconnectOnOpen();
      };
      this.subs.push(
        sub(engine, 'open', () => { this.onopen(); if (fn) fn(); }),
        sub(engine, 'error', onError),
        // A first transport that dies before the handshake may close without an error.
        sub(engine, 'close', (reason) => onError(new Error(reason))),
      );
      if (this._timeout !== false) {
        const timer = setTimeout(() => onError(new Error('timeout')), this._timeout);
        this.subs.push(() => clearTimeout(timer));
      }
      engine.open();
      return this;
    }
    connect(fn) { return this.open(fn); }

    onopen() {
      this.cleanup();
      this._readyState = 'open';
      this.decoder.reset();
      this.emit('open');
      const engine = this.engine;
      this.subs.push(
        sub(engine, 'ping', () => this.emit('ping')),
        sub(engine, 'data', (data) => this.ondata(data)),
        sub(engine, 'error', (err) => this.emit('error', err)),
        sub(engine, 'close', (reason, desc) => this.onclose(reason, desc)),
      );
    }

    ondata(data) {
      let packet;
      try { packet = this.decoder.add(data); } catch (err) {
        console.warn(LOG_PREFIX, 'closing after a malformed Socket.IO packet:', err.message);
        return this.onclose('parse error', err);
      }
      if (packet) this.emit('packet', packet);
    }

    /** Send a Socket.IO packet. */
    packet(packet) {
      if (this._readyState !== 'open') return;
      for (const part of encodeSio(packet)) this.engine.write(part);
    }

    /** The Socket for a namespace (created on first use; one per namespace). */
    socket(nsp, opts) {
      const socket = this.nsps[nsp];
      if (!socket) return (this.nsps[nsp] = new Socket(this, nsp, opts || {}));
      if (this._autoConnect && !socket.active) socket.connect();
      return socket;
    }

    /** A socket went inactive; close the session when none is left. */
    _destroy() {
      for (const nsp of Object.keys(this.nsps)) if (this.nsps[nsp].active) return;
      this._close();
    }

    _close() {
      this.skipReconnect = true;
      this._reconnecting = false;
      clearTimeout(this.reconnectTimer);
      this.onclose('forced close');
    }
    /** Close the connection for every namespace, without reconnecting. */
    disconnect() { return this._close(); }

    cleanup() {
      this.subs.forEach((off) => off());
      this.subs = [];
      this.decoder.reset();
    }

    onclose(reason, description) {
      this.cleanup();
      if (this.engine) this.engine.close();
      this.attempts = 0;
      const wasOpen = this._readyState === 'open';
      this._readyState = 'closed';
      if (wasOpen) this.emit('close', reason, description);
      if (this._reconnection && !this.skipReconnect) this.reconnect();
    }

    maybeReconnectOnOpen() {
      if (!this._reconnecting && this._reconnection && this.attempts === 0) this.reconnect();
    }

    reconnect() {
      if (this._reconnecting || this.skipReconnect) return;
      if (this.attempts >= this._reconnectionAttempts) { this.attempts = 0; this.emit('reconnect_failed'); return; }
      const delay = this.backoffDelay();
      this._reconnecting = true;
      this.reconnectTimer = setTimeout(() => {
        if (this.skipReconnect) return;
        this.emit('reconnect_attempt', this.attempts);
        if (this.skipReconnect) return;
        this.open((err) => {
          const attempts = this.attempts;
          this._reconnecting = false;
          if (err) { this.reconnect(); this.emit('reconnect_error', err); return; }
          this.attempts = 0;
          this.emit('reconnect', attempts);
        });
      }, delay);
    }
  }

  // ---------------------------------------------------------------- socket (one namespace)

  const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

  /** Call each listener with args; one that throws is reported asynchronously (see Emitter). */
  function callEach(listeners, self, args) {
    for (const fn of listeners.slice()) {
      try { fn.apply(self, args); } catch (err) { setTimeout(() => { throw err; }); }
    }
  }

  /** The list `name` of `self`, created empty on first use (for the catch-all listeners). */
  const listOf = (self, name) => self[name] || (self[name] = []);

  /** Remove fn from a list, or empty the list when fn is not given. */
  function removeFrom(list, fn) {
    if (!list) return;
    if (fn === undefined) { list.length = 0; return; }
    const i = list.indexOf(fn);
    if (i !== -1) list.splice(i, 1);
  }

  class Socket extends Emitter {
    /** opts: auth, ackTimeout, retries (the Socket's part of io()'s options). */
    constructor(manager, nsp, opts) {
      super();
      // recovered, _pid, _lastOffset: connection state recovery, as socket.io-client >= 4.6
      Object.assign(this, {io: manager, nsp, id: undefined, connected: false, recovered: false, auth: opts.auth,
        _pid: undefined, _lastOffset: undefined,
        _opts: Object.assign({}, opts), ids: 0, acks: {}, flags: {}, sendBuffer: [], receiveBuffer: [], subs: null,
        _queue: [], _queueSeq: 0, _anyListeners: [], _anyOutgoingListeners: []});
      if (manager._autoConnect) this.open();
    }

    get disconnected() { return !this.connected; }
    /** True while the socket wants to be connected (it reconnects by itself). */
    get active() { return !!this.subs; }
    /** The next emit is dropped, not buffered, when the socket is not connected. */
    get volatile() { this.flags.volatile = true; return this; }

    subEvents() {
      if (this.subs) return;
      const io = this.io;
      this.subs = [
        sub(io, 'open', () => this.onopen()),
        sub(io, 'packet', (p) => this.onpacket(p)),
        sub(io, 'error', (err) => { if (!this.connected) this.emitReserved('connect_error', err); }),
        sub(io, 'close', (reason, desc) => this.onclose(reason, desc)),
      ];
    }

    connect() {
      if (this.connected) return this;
      this.subEvents();
      if (!this.io._reconnecting) this.io.open();
      if (this.io._readyState === 'open') this.onopen();
      return this;
    }
    open() { return this.connect(); }

    onopen() {
      // With a pid from the server (recovery on), ask for the session back with the last offset seen.
      const sendConnect = (data) => this.packet({type: SIO.CONNECT,
        data: this._pid ? Object.assign({pid: this._pid, offset: this._lastOffset}, data) : data});
      if (typeof this.auth === 'function') this.auth(sendConnect);
      else sendConnect(this.auth);
    }

    /**
     * Send an event; a function as last argument gets the server's acknowledgement.
     * Sent at once when connected, else buffered until the (re)connection (dropped
     * instead with `volatile`). With the `retries` option the event goes through the
     * retry queue: one event in flight at a time, in order, each resent until the
     * server acknowledges it (see _addToQueue).
     */
    emit(event, ...args) {
      if (RESERVED_EVENTS.has(event)) throw new Error('"' + event + '" is a reserved event name');
      args.unshift(event);
      if (this._opts.retries && !this.flags.fromQueue && !this.flags.volatile) {
        this._addToQueue(args);
        this.flags = {};
        return this;
      }
      // options.compress is kept as socket.io-client keeps it; browsers choose
      // WebSocket compression themselves, so it changes nothing on the wire.
      const packet = {type: SIO.EVENT, data: args, options: {compress: this.flags.compress !== false}};
      if (typeof args[args.length - 1] === 'function') {
        const id = this.ids++;
        this.registerAck(id, args.pop());
        packet.id = id;
      }
      if (this.connected) {
        this.notifyOutgoingListeners(packet);
        this.packet(packet);
      } else if (!this.flags.volatile) {
        this.sendBuffer.push(packet); // sent on (re)connect
      }
      this.flags = {};
      return this;
    }

    /** emit() whose returned promise resolves with the server's acknowledgement
     *  (its first argument), and rejects on a timeout or a disconnection. */
    emitWithAck(event, ...args) {
      return new Promise((resolve, reject) => {
        const fn = (err, value) => (err ? reject(err) : resolve(value));
        fn.withError = true;
        args.push(fn);
        this.emit(event, ...args);
      });
    }

    /** The next emit's ack callback gets (err, ...args), err set after `ms` without reply. */
    timeout(ms) { this.flags.timeout = ms; return this; }

    /** The compress flag of the next emit (socket.io-client's API; no effect in a browser). */
    compress(compress) { this.flags.compress = compress; return this; }

    send(...args) { return this.emit('message', ...args); }

    /**
     * Keep the ack callback for packet `id`. A callback marked `withError` (and every
     * callback once a timeout applies: timeout() or the ackTimeout option) is called
     * as (err, ...serverArgs): err is null, or an Error after the timeout or a
     * disconnection. A plain callback gets the server's arguments only.
     */
    registerAck(id, fn) {
      const ms = this.flags.timeout != null ? this.flags.timeout : this._opts.ackTimeout;
      if (ms == null) { this.acks[id] = fn; return; }
      const timer = setTimeout(() => {
        delete this.acks[id];
        this.sendBuffer = this.sendBuffer.filter((p) => p.id !== id);
        fn.call(this, new Error('operation has timed out'));
      }, ms);
      const wrapped = (...args) => { clearTimeout(timer); fn.apply(this, args); };
      wrapped.withError = true;
      this.acks[id] = wrapped;
    }

    /**
     * The retry queue (the `retries` option, socket.io-client 4.6+): the event gets
     * an ack callback of the queue's own, and is sent once it is first in the queue
     * and the socket is connected. A timeout (ackTimeout, or timeout() before the
     * emit) or a disconnection counts as a failed try: the event is sent again,
     * until it has been tried retries + 1 times; then the caller's callback, if
     * any, gets the error. The server may thus get an event more than once.
     *
     * Unlike socket.io-client 4.8, a server acknowledging with no arguments (or
     * with a first argument that is not null) is a success, also without ackTimeout.
     */
    _addToQueue(args) {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      const packet = {id: this._queueSeq++, tryCount: 0, pending: false, args,
        flags: Object.assign({fromQueue: true}, this.flags)};
      const done = (err, ...responseArgs) => {
        if (packet !== this._queue[0]) return; // a late answer to a try already given up
        packet.pending = false;
        if (!err) {
          this._queue.shift();
          if (ack) ack.call(this, null, ...responseArgs);
        } else if (packet.tryCount > this._opts.retries) {
          this._queue.shift();
          if (ack) ack.call(this, err);
        }
        this._drainQueue();
      };
      done.withError = true;
      args.push(done);
      this._queue.push(packet);
      this._drainQueue();
    }

    /** Send the first queued event unless it is waiting for its ack (force: resend it). */
    _drainQueue(force) {
      if (!this.connected || !this._queue.length) return;
      const packet = this._queue[0];
      if (packet.pending && !force) return;
      packet.pending = true;
      packet.tryCount++;
      this.flags = Object.assign({}, packet.flags);
      this.emit(...packet.args);
    }

    packet(packet) { packet.nsp = this.nsp; this.io.packet(packet); }

    onpacket(packet) {
      if (packet.nsp !== this.nsp) return;
      switch (packet.type) {
        case SIO.CONNECT:
          if (packet.data && typeof packet.data.sid === 'string') this.onconnect(packet.data.sid, packet.data.pid);
          else this.emitReserved('connect_error', new Error('invalid CONNECT reply (is this a Socket.IO v5 server?)'));
          break;
        case SIO.EVENT: case SIO.BINARY_EVENT:
          this.onevent(packet);
          break;
        case SIO.ACK: case SIO.BINARY_ACK:
          this.onack(packet);
          break;
        case SIO.DISCONNECT:
          this.destroy();
          this.onclose('io server disconnect');
          break;
        case SIO.CONNECT_ERROR: { // refused: no automatic retry (socket.active is false)
          this.destroy();
          const d = isObject(packet.data) ? packet.data : {message: packet.data};
          this.emitReserved('connect_error', Object.assign(new Error(String(d.message)), {data: d.data}));
          break;
        }
        default:
      }
    }

    onevent(packet) {
      const args = packet.data.slice();
      if (packet.id !== undefined) args.push(this.ack(packet.id));
      if (this.connected) this.emitEvent(args);
      else this.receiveBuffer.push(args);
    }

    onack(packet) {
      const fn = this.acks[packet.id];
      if (typeof fn !== 'function') return;
      delete this.acks[packet.id];
      fn.apply(this, fn.withError ? [null].concat(packet.data) : packet.data);
    }

    /** An incoming event: the catch-all listeners first, then the event's own. With recovery
     *  on, the server's last argument is the event's offset: it is remembered (and, as in
     *  socket.io-client, left in the arguments). */
    emitEvent(args) {
      callEach(this._anyListeners, this, args);
      Emitter.prototype.emit.apply(this, args);
      if (this._pid && args.length && typeof args[args.length - 1] === 'string') {
        this._lastOffset = args[args.length - 1];
      }
    }

    emitReserved(event, ...args) { return Emitter.prototype.emit.call(this, event, ...args); }

    /** The callback handed to a listener for an event the server wants acknowledged. */
    ack(id) {
      let sent = false;
      return (...args) => { if (!sent) { sent = true; this.packet({type: SIO.ACK, id, data: args}); } };
    }

    onconnect(id, pid) {
      this.id = id;
      this.recovered = !!pid && this._pid === pid; // the missed events follow, in order
      this._pid = pid; // set only when the server has connection state recovery on
      this.connected = true;
      this.receiveBuffer.splice(0).forEach((args) => this.emitEvent(args));
      this.sendBuffer.splice(0).forEach((packet) => {
        this.notifyOutgoingListeners(packet);
        this.packet(packet);
      });
      this._drainQueue(true);
      this.emitReserved('connect');
    }

    onclose(reason, description) {
      if (!this.connected && reason !== 'io server disconnect' && reason !== 'io client disconnect') {
        return; // never connected in this round: connect_error already told the story
      }
      this.connected = false;
      this.id = undefined;
      this.emitReserved('disconnect', reason, description);
      this._clearAcks();
    }

    /** No ack can come for a packet sent on the lost connection: drop its callback,
     *  and call it with an error if it takes one. Buffered packets keep theirs. */
    _clearAcks() {
      for (const id of Object.keys(this.acks)) {
        if (this.sendBuffer.some((p) => String(p.id) === id)) continue;
        const fn = this.acks[id];
        delete this.acks[id];
        if (fn.withError) fn.call(this, new Error('socket has been disconnected'));
      }
    }

    destroy() {
      if (this.subs) { this.subs.forEach((off) => off()); this.subs = null; }
      this.io._destroy(this);
    }

    /** Leave the namespace (and close the connection if no other namespace uses it). */
    disconnect() {
      const wasConnected = this.connected;
      if (wasConnected) this.packet({type: SIO.DISCONNECT});
      this.destroy();
      if (wasConnected) this.onclose('io client disconnect');
      return this;
    }
    close() { return this.disconnect(); }

    // -- catch-all listeners (socket.io-client's onAny family)

    /** listener(event, ...args) for every event received (before the event's own listeners). */
    onAny(listener) { listOf(this, '_anyListeners').push(listener); return this; }
    /** onAny(), but called before the catch-all listeners already added. */
    prependAny(listener) { listOf(this, '_anyListeners').unshift(listener); return this; }
    /** Remove one catch-all listener, or all of them when none is given. */
    offAny(listener) { removeFrom(this._anyListeners, listener); return this; }
    /** The catch-all listeners (the array itself, as in socket.io-client). */
    listenersAny() { return listOf(this, '_anyListeners'); }

    /** listener(event, ...args) for every event sent (when it goes out; acks not included). */
    onAnyOutgoing(listener) { listOf(this, '_anyOutgoingListeners').push(listener); return this; }
    prependAnyOutgoing(listener) { listOf(this, '_anyOutgoingListeners').unshift(listener); return this; }
    offAnyOutgoing(listener) { removeFrom(this._anyOutgoingListeners, listener); return this; }
    listenersAnyOutgoing() { return listOf(this, '_anyOutgoingListeners'); }

    notifyOutgoingListeners(packet) { callEach(this._anyOutgoingListeners, this, packet.data); }
  }

  // ---------------------------------------------------------------- io()

  const cache = {};

  /**
   * io(url?, opts?) -> Socket. The URL's path is the namespace ('/' by default):
   * io('/test') connects to namespace /test on this page's server. Sockets for
   * the same server share one connection (a Manager, `socket.io`) unless
   * opts.forceNew is set or the namespace is already in use there.
   *
   * opts, as in socket.io-client:
   *   connection: transports (['websocket', 'polling']), path ('/socket.io'), query,
   *     upgrade (true), withCredentials (false), forceNew, multiplex, autoConnect (true),
   *     timeout (20000 ms for a connection attempt)
   *   reconnection (true), reconnectionAttempts (Infinity), reconnectionDelay (1000),
   *     reconnectionDelayMax (5000), randomizationFactor (0.5); each also a getter and
   *     setter on the Manager: socket.io.reconnectionDelay(500)
   *   the socket: auth (object or function(cb)), ackTimeout (ms: every ack callback
   *     then gets (err, ...args)), retries (resend each emit until acknowledged, up to
   *     this many more times, one at a time and in order)
   *   extraHeaders: HTTP headers for the long-polling requests. A browser cannot set
   *     headers on a WebSocket, so they are not sent there (use auth or query for
   *     what the server must see on every transport).
   *   transportOptions: options for one transport by name, laid over the others,
   *     e.g. {polling: {extraHeaders: {'X-Token': t}}}
   *   the 'sockjs' transport: sockjsPath ('/sockjs'), sockjs (SockJS constructor
   *     options), SockJS (the constructor)
   * socket.io.opts is read at each connection attempt: a change to it (say, new
   * extraHeaders) applies from the next reconnection on.
   */
  function io(uri, opts) {
    if (typeof uri === 'object' && uri !== null) { opts = uri; uri = undefined; }
    opts = Object.assign({}, opts);
    const url = parseUri(uri);
    const nsp = url.pathname || '/';
    const id = url.protocol + '//' + url.host + managerOptions(url, opts).path;
    const sameNamespace = cache[id] && nsp in cache[id].nsps;
    let manager;
    if (opts.forceNew || opts['force new connection'] || opts.multiplex === false || sameNamespace) {
      manager = new Manager(url.href, opts);
    } else {
      manager = cache[id] = cache[id] || new Manager(url.href, opts);
    }
    return manager.socket(nsp, opts);
  }

  return Object.assign(io, {
    connect: io,
    io,
    protocol: 5,
    Manager,
    Socket,
    Engine,
    Transport,
    transports,
    parser: {encodeSio, SioDecoder, encodePacket, decodePacket, encodePayload, decodePayload, base64Encode, base64Decode,
      SIO, ProtocolError},
  });
})(typeof window !== 'undefined' ? window : typeof self !== 'undefined' ? self : undefined);

const {Manager, Socket, protocol} = io;
export {io, io as connect, io as default, Manager, Socket, protocol};
