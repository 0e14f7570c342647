// TypeScript declarations for the tornado-sio browser client (tornado_sio.js).
//
// Written by hand after socket.io-client 4.8's own types, for the part of its API
// this client implements; tools/build_client.py copies this file into dist/.
//
// With the ES module build:
//     import { io, Socket } from "./tornado_sio.esm.js";
// With the classic script (window.io), add dist/tornado_sio.global.d.ts to the
// compilation, or declare it yourself:
//     declare const io: typeof import("./tornado_sio").io;
//
// Typed events work as in socket.io-client:
//     interface ServerToClient { "my response": (msg: { data: string; count: number }) => void }
//     interface ClientToServer { "my event": (msg: { data: string }) => void;
//                                "my ping": (ack: (reply: string) => void) => void }
//     const socket: Socket<ServerToClient, ClientToServer> = io("/test");

// ------------------------------------------------------------------ events

/** Event names to listener signatures. */
export interface EventsMap {
  [event: string]: any;
}

/** Any event name, any arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);

export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

export type ReservedOrUserEventNames<ReservedEventsMap extends EventsMap, UserEvents extends EventsMap> =
  | EventNames<ReservedEventsMap>
  | EventNames<UserEvents>;

type FallbackToUntypedListener<T> = [T] extends [never] ? (...args: any[]) => void | Promise<void> : T;

export type ReservedOrUserListener<
  ReservedEvents extends EventsMap,
  UserEvents extends EventsMap,
  Ev extends ReservedOrUserEventNames<ReservedEvents, UserEvents>,
> = FallbackToUntypedListener<
  Ev extends EventNames<ReservedEvents> ? ReservedEvents[Ev] : Ev extends EventNames<UserEvents> ? UserEvents[Ev] : never
>;

/** The event emitter every class here extends (socket.io's component-emitter API). */
export declare class Emitter<
  ListenEvents extends EventsMap,
  EmitEvents extends EventsMap,
  ReservedEvents extends EventsMap = {},
> {
  on<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  addEventListener<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  once<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  /** off(): every listener; off(ev): those of one event; off(ev, listener): one. */
  off<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev?: Ev,
    listener?: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  removeListener<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev?: Ev,
    listener?: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  removeEventListener<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev?: Ev,
    listener?: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  /** removeAllListeners(): every listener; removeAllListeners(ev): those of one event. */
  removeAllListeners<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(ev?: Ev): this;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): this;
  listeners<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    event: Ev,
  ): ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>[];
  hasListeners<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(event: Ev): boolean;
}

// ------------------------------------------------------------------ options

/** What the transports take (and, per transport, `transportOptions`). */
export interface TransportOptions {
  /** Mounted path of the Socket.IO endpoint. Default "/socket.io". */
  path: string;
  /** Added to the query string of every request. */
  query: { [key: string]: string };
  /** Send cookies on cross-origin long-polling requests. Default false. */
  withCredentials: boolean;
  /**
   * HTTP headers for the long-polling requests. A browser cannot set headers on a
   * WebSocket: they are not sent there (use `auth` or `query` for what the server
   * must see on every transport).
   */
  extraHeaders: { [header: string]: string };
  /** A WebSocket constructor to use instead of the global one. */
  WebSocket: any;
  /** The SockJS transport: path of the SockJS router. Default "/sockjs". */
  sockjsPath: string;
  /** The SockJS transport: options for the SockJS constructor. */
  sockjs: { [key: string]: any };
  /** The SockJS transport: the SockJS constructor (default window.SockJS). */
  SockJS: any;
}

export interface ManagerOptions extends TransportOptions {
  /** Transport names, in order of preference. Default ["websocket", "polling"]. */
  transports: string[];
  /** Try to upgrade from long-polling to a better transport. Default true. */
  upgrade: boolean;
  /** Options laid over the others for one transport, e.g. `{ polling: { extraHeaders } }`. */
  transportOptions: { [transport: string]: Partial<TransportOptions> };
  /** A new connection even if one to this server exists. */
  forceNew: boolean;
  /** Share one connection between namespaces of the same server. Default true. */
  multiplex: boolean;
  /** Reconnect after a lost connection. Default true. */
  reconnection: boolean;
  /** Attempts before giving up ("reconnect_failed"). Default Infinity. */
  reconnectionAttempts: number;
  /** First reconnection delay in ms, doubled at each attempt. Default 1000. */
  reconnectionDelay: number;
  /** Longest reconnection delay in ms. Default 5000. */
  reconnectionDelayMax: number;
  /** Jitter of each delay, 0 to 1. Default 0.5. */
  randomizationFactor: number;
  /** How long a connection attempt may take, in ms; false: forever. Default 20000. */
  timeout: number | false;
  /** Connect at once. Default true. */
  autoConnect: boolean;
}

export interface SocketOptions {
  /** Sent with the namespace's CONNECT packet (the server's connect handler gets it). */
  auth: { [key: string]: any } | ((cb: (data: object) => void) => void);
  /** Resend each emit until the server acknowledges it, up to this many more times. */
  retries: number;
  /** Default timeout of acknowledgements, in ms: ack callbacks then get (err, ...args). */
  ackTimeout: number;
}

// ------------------------------------------------------------------ Engine.IO

export type DisconnectDescription = Error | { description: string; context?: unknown };

/** A transport moves Engine.IO packets; subclass it and register it in `io.transports`. */
export interface Packet {
  type: "open" | "close" | "ping" | "pong" | "message" | "upgrade" | "noop";
  data?: any;
}

export interface TransportReservedEvents {
  open: () => void;
  packet: (packet: Packet) => void;
  drain: () => void;
  error: (err: Error) => void;
  close: (reason: string) => void;
}

export declare abstract class Transport extends Emitter<{}, {}, TransportReservedEvents> {
  constructor(opts: Partial<TransportOptions> & { [key: string]: any });
  /** The name it is registered under in `io.transports`. */
  abstract get name(): string;
  /** The transport a SockJS connection settled on (xhr-streaming, ...). */
  subTransport?: string;
  opts: Partial<TransportOptions> & { [key: string]: any };
  /** The query string: EIO, transport, sid once known, and the user's. */
  query: { [key: string]: any };
  readyState: "opening" | "open" | "pausing" | "paused" | "closed";
  writable: boolean;
  open(): this;
  close(): this;
  send(packets: Packet[]): void;
  /** The endpoint URL with this transport's query string. */
  uri(scheme: string): string;
  protected abstract doOpen(): void;
  protected abstract write(packets: Packet[]): void;
  protected abstract doClose(): void;
  protected onOpen(): void;
  protected onPacket(packet: Packet): void;
  protected onError(message: string, cause?: unknown): void;
  protected onDrain(): void;
  protected onClose(reason?: string): void;
}

export interface TransportConstructor {
  new (opts: Partial<TransportOptions> & { [key: string]: any }): Transport;
  /** False makes the Engine skip the transport. */
  isSupported?(opts: Partial<TransportOptions> & { [key: string]: any }): boolean;
}

export interface EngineReservedEvents {
  open: () => void;
  close: (reason: string, description?: DisconnectDescription) => void;
  error: (err: Error) => void;
  packet: (packet: Packet) => void;
  data: (data: string | ArrayBuffer) => void;
  ping: () => void;
  upgrading: (transport: Transport) => void;
  upgrade: (transport: Transport) => void;
  upgradeError: (err: Error) => void;
}

/** One Engine.IO session (`socket.io.engine`): handshake, heartbeat, upgrade. */
export declare class Engine extends Emitter<{}, {}, EngineReservedEvents> {
  /** The Engine.IO session id, once the handshake is done. */
  readonly id: string | null;
  readonly transport: Transport;
  readonly readyState: "opening" | "open" | "closing" | "closed";
  readonly upgrades: string[];
  readonly pingInterval: number;
  readonly pingTimeout: number;
  readonly maxPayload: number;
}

// ------------------------------------------------------------------ Manager

export interface ManagerReservedEvents {
  open: () => void;
  error: (err: Error) => void;
  ping: () => void;
  close: (reason: string, description?: DisconnectDescription) => void;
  reconnect_failed: () => void;
  reconnect_attempt: (attempt: number) => void;
  reconnect_error: (err: Error) => void;
  reconnect: (attempt: number) => void;
}

/** One connection to a server (`socket.io`), shared by the sockets of its namespaces. */
export declare class Manager<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
> extends Emitter<{}, {}, ManagerReservedEvents> {
  /** The Engine.IO session of the current connection attempt (null before the first). */
  engine: Engine | null;
  /** Read at each connection attempt: a change applies from the next reconnection on. */
  opts: Partial<ManagerOptions>;
  constructor(opts?: Partial<ManagerOptions & SocketOptions>);
  constructor(uri?: string, opts?: Partial<ManagerOptions & SocketOptions>);
  reconnection(v: boolean): this;
  reconnection(): boolean;
  reconnectionAttempts(v: number): this;
  reconnectionAttempts(): number;
  reconnectionDelay(v: number): this;
  reconnectionDelay(): number;
  reconnectionDelayMax(v: number): this;
  reconnectionDelayMax(): number;
  randomizationFactor(v: number): this;
  randomizationFactor(): number;
  timeout(v: number | false): this;
  timeout(): number | false;
  /** Open the connection; fn(err?) when it is open or has failed. */
  open(fn?: (err?: Error) => void): this;
  connect(fn?: (err?: Error) => void): this;
  /** The socket of a namespace (one per namespace and Manager). */
  socket(nsp: string, opts?: Partial<SocketOptions>): Socket<ListenEvents, EmitEvents>;
  /** Close the connection of every namespace, without reconnecting. */
  disconnect(): void;
}

// ------------------------------------------------------------------ Socket

export interface ExtendedError extends Error {
  /** The `data` of the server's refusal (ConnectionRefusedError). */
  data?: any;
}

export interface SocketReservedEvents {
  connect: () => void;
  connect_error: (err: ExtendedError) => void;
  disconnect: (reason: Socket.DisconnectReason, description?: DisconnectDescription) => void;
}

type PrependTimeoutError<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer Params) => infer Result ? (err: Error, ...args: Params) => Result : T[K];
};

/** The events of `socket.timeout(ms)`: each ack callback gets an error first. */
export type DecorateAcknowledgements<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result ? (...args: PrependTimeoutError<Params>) => Result : E[K];
};

export type Last<T extends any[]> = T extends [...infer H, infer L] ? L : any;
export type AllButLast<T extends any[]> = T extends [...infer H, infer L] ? H : any[];
export type FirstArg<T> = T extends (arg: infer Param) => infer Result ? Param : any;

/** One namespace of a connection: events, acknowledgements, buffering. */
export declare class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
> extends Emitter<ListenEvents, EmitEvents, SocketReservedEvents> {
  readonly io: Manager<ListenEvents, EmitEvents>;
  /** The session id in this namespace while connected. */
  id: string | undefined;
  connected: boolean;
  /**
   * Whether the last (re)connection restored the session (connection state
   * recovery on the server): same id, same rooms, and the missed events follow.
   */
  recovered: boolean;
  auth: { [key: string]: any } | ((cb: (data: object) => void) => void);
  constructor(io: Manager, nsp: string, opts?: Partial<SocketOptions>);
  get disconnected(): boolean;
  /** True while the socket wants to be connected (it reconnects by itself). */
  get active(): boolean;
  connect(): this;
  open(): this;
  /** emit("message", ...args). */
  send(...args: any[]): this;
  /** Send an event; a function as last argument gets the server's acknowledgement. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): this;
  /** Send an event; the promise resolves with the server's acknowledgement. */
  emitWithAck<Ev extends EventNames<EmitEvents>>(
    ev: Ev,
    ...args: AllButLast<EventParams<EmitEvents, Ev>>
  ): Promise<FirstArg<Last<EventParams<EmitEvents, Ev>>>>;
  disconnect(): this;
  close(): this;
  /** The compress flag of the next emit (kept for compatibility; no effect in a browser). */
  compress(compress: boolean): this;
  /** The next emit is dropped, not buffered, when the socket is not connected. */
  get volatile(): this;
  /** The next emit's ack callback gets (err, ...args), err set after `timeout` ms without reply. */
  timeout(timeout: number): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>>;
  /** listener(event, ...args) for every event received, before the event's own listeners. */
  onAny(listener: (...args: any[]) => void): this;
  prependAny(listener: (...args: any[]) => void): this;
  /** Remove one catch-all listener, or all of them. */
  offAny(listener?: (...args: any[]) => void): this;
  listenersAny(): ((...args: any[]) => void)[];
  /** listener(event, ...args) for every event sent (acknowledgements not included). */
  onAnyOutgoing(listener: (...args: any[]) => void): this;
  prependAnyOutgoing(listener: (...args: any[]) => void): this;
  offAnyOutgoing(listener?: (...args: any[]) => void): this;
  listenersAnyOutgoing(): ((...args: any[]) => void)[];
}

export declare namespace Socket {
  type DisconnectReason =
    | "io server disconnect"
    | "io client disconnect"
    | "ping timeout"
    | "transport close"
    | "transport error"
    | "parse error";
}

// ------------------------------------------------------------------ io()

/** io(uri?, opts?): the socket of the namespace in uri's path ("/" by default). */
export interface Lookup {
  (opts?: Partial<ManagerOptions & SocketOptions>): Socket;
  (uri?: string, opts?: Partial<ManagerOptions & SocketOptions>): Socket;
  io: Lookup;
  connect: Lookup;
  /** The Socket.IO protocol revision (5). */
  protocol: number;
  Manager: typeof Manager;
  Socket: typeof Socket;
  Engine: typeof Engine;
  Transport: typeof Transport;
  /** The transports by name; register one with `io.transports.name = class extends io.Transport {...}`. */
  transports: { [name: string]: TransportConstructor };
}

export declare const io: Lookup;
/** The Socket.IO protocol revision (5). */
export declare const protocol: number;
export { io as connect, io as default };
