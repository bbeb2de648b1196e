/**
 * The listener on a replica's client port, speaking RESP2. Each connection may pipeline many
 * requests; every request takes a reply slot in arrival order, slots are filled as replies arrive
 * (operations complete when the core delivers them, local commands at once), and the filled slots
 * at the head are flushed together in one write, so replies always go out in request order.
 *
 * Rules: a fatal protocol error is answered with its error and then the connection is closed
 * (after the replies before it); QUIT answers `+OK` and closes the same way; when the client ends
 * its side (EOF), the outstanding replies are still written, then the connection is closed; a
 * failed write closes the connection and replies that arrive later are dropped. A connection with
 * more than `maxInFlight` requests outstanding (or too many reply bytes unwritten) is not read
 * from until it drains. Nothing a client sends can throw out of this module.
 *
 * Limits (settings with Redis's names, defaults in `src/limits.ts`): beyond `maxClients`
 * connections a new one gets `-ERR max number of clients reached` and is closed; a connection is
 * closed when its partial request outgrows `queryBufferLimit`, when its unsent replies pass the
 * hard output limit or stay above the soft one for its seconds, when it stays idle (nothing in
 * flight, nothing received) for `idleTimeoutMs`, or when a request that started arriving is not
 * complete within `requestTimeoutMs`; and when all connections together buffer more than
 * `maxMemoryClients` bytes, the biggest ones are closed until they fit. Each closure by a limit is
 * logged as `client.limit` (warn), rate-limited per source host and limit (`Log.limited`).
 *
 * @module
 */
import type { ByteString, Command, Outcome, ReplicaStatus, Reply } from "../core/types.ts";
import { AcceptLoop } from "./accept_loop.ts";
import type { ByteTraffic } from "./traffic.ts";
import type { ByteConn } from "./listener.ts";
import { listenTls, type TlsServerConfig } from "./tls.ts";
import { type AclHost, Session, type SessionHost, type WriteMemory } from "./session.ts";
import { defaultTable, describeTable } from "../kv/acl.ts";
import { isBlockingCommand } from "../kv/commands/index.ts";
import type { ServerStats } from "./info.ts";
import { SharedBulks } from "./shared_bulks.ts";
import { ReadBuffer } from "./read_buffer.ts";
import {
  DEFAULT_RESP_LIMITS,
  encodeError,
  type RequestItem,
  type RespLimits,
  RespRequestParser,
} from "./resp.ts";
import { ConnWriter, errorText } from "./conn_writer.ts";
import type { Log } from "../log/logger.ts";
import { PubSubHub } from "./pubsub.ts";
import type { SlotRouting } from "./slot_routing.ts";
import {
  CLIENT_MAX_IN_FLIGHT,
  CLIENT_PAUSE_READ_UNWRITTEN_BYTES,
  CLIENT_READ_BYTES,
  DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
  DEFAULT_CLIENT_REQUEST_TIMEOUT_SECONDS,
  DEFAULT_MAXCLIENTS,
  DEFAULT_MAXMEMORY_CLIENTS,
  DEFAULT_PUBSUB_OUTPUT_BUFFER_LIMIT,
  IDLE_READ_BYTES,
  MAX_OUTSTANDING_OPS,
} from "../limits.ts";

/** What the client server needs from its replica. */
export interface ClientHandler {
  /**
   * Submits an operation. `respond` must be called exactly once with its outcome, at any later
   * time or synchronously; calls after the first, or after the connection closed, are ignored.
   * `gone` is aborted when the client closed its connection (blocked commands are cancelled).
   */
  submit(cmd: Command, respond: (outcome: Outcome) => void, gone?: AbortSignal): void;
  /** The replica's status, for INFO. */
  status(): ReplicaStatus;
  /** Wall-clock ms stamped on operations (default `Date.now()`; tests shift it). */
  now?(): number;
  /** Keys with an expiry time, for INFO's keyspace section. */
  expires?(): number;
  /** Clients of this replica blocked on keys now (BLPOP, ...), for INFO's clients section. */
  blockedClients?(): number;
  /** CONFIG GET's parameters (default: a few fixed ones). */
  config?(): Record<string, string>;
  /** The users (default: only `default`, nopass, every right; no aclfile). */
  acl?(): AclHost;
  /** `notify-keyspace-events` in force, as CONFIG GET prints it (default: ""). */
  notifyKeyspaceEvents?(): string;
  /** The `REPLICASET` command (absent: not served). */
  replicaSet?(): (argv: ByteString[], respond: (reply: Reply) => void) => void;
  /** The `CLUSTER` command (absent: not served). */
  cluster?(): (argv: ByteString[], respond: (reply: Reply) => void) => void;
  /** A sharded cluster's routing: MOVED / CROSSSLOT (absent: every key is served here). */
  routing?(): SlotRouting | undefined;
}

/** The users of a server without security settings. */
function openAcl(): AclHost {
  const table = defaultTable();
  return {
    table: () => table,
    initialised: () => false,
    initArgv: () => ["__ACL", "INIT", ...describeTable(table)],
  };
}

/** Options of a {@link ClientServer}. */
export interface ClientServerOptions {
  /** Address to listen on (port 0 picks a free port). */
  hostname: string;
  port: number;
  handler: ClientHandler;
  /** Events that matter (limits hit, failed logins, accept failures); connections if verbose. */
  log: Log;
  /** Log every connection opened, closed or refused for a protocol error. */
  verbose?: boolean;
  /** RESP parser limits (default {@link DEFAULT_RESP_LIMITS}). */
  limits?: RespLimits;
  /** Stop reading a connection with more requests than this outstanding (default 128). */
  maxInFlight?: number;
  /** Stop reading a connection with more reply bytes than this unwritten (default 4 MiB). */
  maxUnwrittenBytes?: number;
  /**
   * Stop reading every connection while this many operations of all connections together wait
   * for their outcome (default 10,000): memory stays bounded however many clients push.
   */
  maxOutstandingOps?: number;
  /** Most connections open at once (`maxclients`, default 10,000). */
  maxClients?: number;
  /** Most bytes of one connection's partial request (`client-query-buffer-limit`, 16 MiB). */
  queryBufferLimit?: number;
  /** `client-output-buffer-limit normal`: unsent reply bytes; 0 disables (default: none). */
  outputBufferLimit?: { hard: number; soft: number; softSeconds: number };
  /**
   * `client-output-buffer-limit pubsub`, for connections in subscribed mode (default Redis's
   * 32mb 8mb 60): a subscriber that does not read its messages is disconnected.
   */
  pubsubOutputBufferLimit?: { hard: number; soft: number; softSeconds: number };
  /** Close a connection idle this long (`timeout`; 0, the default: never). */
  idleTimeoutMs?: number;
  /** Close a connection whose started request is not complete this long (default 10 s; 0: never). */
  requestTimeoutMs?: number;
  /** Bytes buffered for all connections together (`maxmemory-clients`, 128 MiB; 0: no limit). */
  maxMemoryClients?: number;
  /**
   * When writes that may add data are refused with `OOM` (`maxmemory`, see
   * `src/runtime/memory_guard.ts`). Default: never.
   */
  memory?: WriteMemory;
  /** Speak TLS (`tls-cert-file`...): then bind with {@link ClientServer.open}. Default: plain TCP. */
  tls?: TlsServerConfig;
  /** Counts the bytes of every client connection (metrics). Default: not counted. */
  traffic?: ByteTraffic;
}

/** How {@link ClientServer.execute} runs a command. */
export interface ExecuteOptions {
  /** The client's address, `host:port` (CLIENT INFO of the transient session). */
  remote: string;
  /** The address the client reached, `host:port`. */
  local?: string;
  /** Log in first with `AUTH <user> <password>`; without it the session is `default`'s. */
  login?: { user: ByteString; password: ByteString };
}

/** How often the limits that depend on time are checked, in ms. */
const LIMITS_CHECK_MS = 100;

/**
 * A reply slot: `bytes` is null until its reply arrives; a `lazy` slot is computed when it reaches
 * the head (INFO reports the state after every earlier request on the connection).
 */
interface Slot {
  bytes: Uint8Array | null;
  lazy?: () => Uint8Array;
}

/** One client connection. */
class ClientConn {
  readonly conn: ByteConn;
  readonly remote: string;
  session!: Session;
  /** The remote host, which limit log lines are counted for. */
  readonly source: string;
  readonly writer: ConnWriter;
  readonly parser: RespRequestParser;
  /** Bytes of filled reply slots not yet handed to the writer. */
  slotBytes = 0;
  /** When bytes last arrived (performance.now()). */
  lastRead = performance.now();
  /** Since when a request has been partially received (undefined: none is). */
  partialSince: number | undefined;
  /** Since when the unsent replies are above the soft output limit. */
  softSince: number | undefined;
  /** Reply slots in request order; `head` is the first not yet flushed. */
  slots: Slot[] = [];
  head = 0;
  /** No more requests will be read (QUIT, fatal error, EOF or close). */
  readingDone = false;
  closed = false;
  flushScheduled = false;
  /** Wakes the read loop waiting for the connection to drain or close. */
  wake: (() => void) | undefined;

  constructor(
    conn: ByteConn,
    limits: RespLimits,
    onWriteError: (err: unknown) => void,
    traffic: ByteTraffic | undefined,
  ) {
    this.conn = conn;
    const addr = conn.remoteAddr;
    this.remote = `${addr.hostname}:${addr.port}`;
    this.source = addr.hostname;
    this.writer = new ConnWriter(conn, onWriteError, traffic);
    this.parser = new RespRequestParser(limits);
  }

  /** Bytes buffered for this connection: its request buffer and its unsent replies. */
  get memory(): number {
    return this.parser.heldBytes + this.slotBytes + this.writer.queuedBytes;
  }

  /** Unsent reply bytes. */
  get unsent(): number {
    return this.slotBytes + this.writer.queuedBytes;
  }

  /** Requests whose replies have not been flushed yet. */
  get inFlight(): number {
    return this.slots.length - this.head;
  }
}

/** Accepts RESP client connections and serves them through a {@link ClientHandler}. */
export class ClientServer {
  readonly #opts: ClientServerOptions;
  readonly #limits: RespLimits;
  readonly #maxInFlight: number;
  readonly #maxUnwritten: number;
  readonly #maxOutstanding: number;
  /** Operations submitted to the handler and not yet answered, over all connections. */
  #outstanding = 0;
  /** Read loops waiting for {@link #outstanding} to drop below the cap. */
  /** Read loops parked on the global cap, each with its wake-up. */
  readonly #globalWaiters = new Map<ClientConn, () => void>();
  #acceptor: AcceptLoop | undefined;
  /** Set by close(): nothing new is started. */
  readonly #conns = new Set<ClientConn>();
  readonly #sessionHost: SessionHost;
  #nextClientId = 1;
  readonly #stats = {
    startedAt: Date.now(),
    totalConnections: 0,
    totalCommands: 0,
    rejected: 0,
    denied: { auth: 0, cmd: 0, key: 0, channel: 0 },
  };
  readonly #maxClients: number;
  readonly #queryBufferLimit: number;
  readonly #output: { hard: number; soft: number; softMs: number };
  readonly #pubsubOutput: { hard: number; soft: number; softMs: number };
  /** This replica's subscriptions. */
  readonly #hub = new PubSubHub();
  readonly #idleMs: number;
  readonly #requestMs: number;
  readonly #maxMemory: number;
  readonly #writeMemory: WriteMemory | undefined;
  /** Bytes buffered by all connections, as of the last count plus growth since (never less). */
  #memory = 0;
  /** Encodes replies; a large value read by many requests is encoded once. */
  readonly #bulks = new SharedBulks();
  #limitsTimer: ReturnType<typeof setInterval> | undefined;

  /** Creates the server; nothing listens until {@link ClientServer.listen}. */
  constructor(options: ClientServerOptions) {
    this.#opts = options;
    this.#limits = options.limits ?? DEFAULT_RESP_LIMITS;
    this.#maxInFlight = options.maxInFlight ?? CLIENT_MAX_IN_FLIGHT;
    this.#maxUnwritten = options.maxUnwrittenBytes ?? CLIENT_PAUSE_READ_UNWRITTEN_BYTES;
    this.#maxOutstanding = options.maxOutstandingOps ?? MAX_OUTSTANDING_OPS;
    this.#maxClients = options.maxClients ?? DEFAULT_MAXCLIENTS;
    this.#queryBufferLimit = options.queryBufferLimit ?? DEFAULT_CLIENT_QUERY_BUFFER_LIMIT;
    const out = options.outputBufferLimit ?? { hard: 0, soft: 0, softSeconds: 0 };
    this.#output = { hard: out.hard, soft: out.soft, softMs: out.softSeconds * 1000 };
    const ps = options.pubsubOutputBufferLimit ?? DEFAULT_PUBSUB_OUTPUT_BUFFER_LIMIT;
    this.#pubsubOutput = { hard: ps.hard, soft: ps.soft, softMs: ps.softSeconds * 1000 };
    this.#idleMs = options.idleTimeoutMs ?? 0;
    this.#requestMs = options.requestTimeoutMs ?? DEFAULT_CLIENT_REQUEST_TIMEOUT_SECONDS * 1000;
    this.#maxMemory = options.maxMemoryClients ?? DEFAULT_MAXMEMORY_CLIENTS;
    this.#writeMemory = options.memory;
    const handler = options.handler;
    const now = handler.now ? () => handler.now!() : () => Date.now();
    const open = handler.acl === undefined ? openAcl() : undefined;
    this.#sessionHost = {
      submit: (cmd, respond, gone) => this.#submit(cmd, respond, gone),
      status: () => handler.status(),
      now,
      sessions: () => [...this.#conns].map((c) => c.session),
      stats: (): ServerStats => ({
        startedAt: this.#stats.startedAt,
        tcpPort: this.#acceptor?.addr.port ?? 0,
        connectedClients: this.#conns.size,
        totalConnections: this.#stats.totalConnections,
        totalCommands: this.#stats.totalCommands,
        rejectedConnections: this.#stats.rejected,
        aclDeniedAuth: this.#stats.denied.auth,
        aclDeniedCmd: this.#stats.denied.cmd,
        aclDeniedKey: this.#stats.denied.key,
        aclDeniedChannel: this.#stats.denied.channel,
        pubsubChannels: this.#hub.channels().length,
        pubsubPatterns: this.#hub.numpat(),
        expires: handler.expires?.() ?? 0,
        blockedClients: handler.blockedClients?.() ?? 0,
        maxmemory: this.#writeMemory?.maxmemory ?? 0,
        memoryLimit: this.#writeMemory?.limit,
      }),
      memory: this.#writeMemory,
      acl: () => open ?? handler.acl!(),
      noteDenied: (kind, login) => {
        this.#stats.denied[kind]++;
        if (login === undefined) return;
        const { remote, user } = login;
        this.#opts.log.limited(
          "warn",
          "client.auth_failed",
          remote.replace(/:\d+$/, ""),
          `client ${remote}: authentication failed for user ${JSON.stringify(user)}`,
          { remote, user },
        );
      },
      pubsub: () => this.#hub,
      replicaSet: handler.replicaSet === undefined ? undefined : () => handler.replicaSet!(),
      cluster: handler.cluster === undefined ? undefined : () => handler.cluster!(),
      routing: handler.routing === undefined ? undefined : () => handler.routing!(),
      config: () =>
        handler.config?.() ?? {
          databases: "1",
          save: "",
          appendonly: "no",
          maxmemory: String(this.#writeMemory?.maxmemory ?? 0),
          "maxmemory-policy": "noeviction",
          timeout: String(this.#idleMs / 1000),
          maxclients: String(this.#maxClients),
          "proto-max-bulk-len": String(this.#limits.maxBulkBytes),
          "client-query-buffer-limit": String(this.#queryBufferLimit),
          "maxmemory-clients": String(this.#maxMemory),
          "notify-keyspace-events": handler.notifyKeyspaceEvents?.() ?? "",
        },
    };
  }

  /**
   * Submits an operation to the replica, counting it against the global cap (a blocking command
   * is not counted: blocked clients may wait as long as they like without stopping the others).
   */
  #submit(cmd: Command, respond: (outcome: Outcome) => void, gone?: AbortSignal): void {
    const counted = !isBlockingCommand(cmd.op.argv);
    if (counted) this.#outstanding += 1;
    let answered = false;
    this.#opts.handler.submit(cmd, (outcome) => {
      if (answered) return; // a second answer is ignored, and does not free a second slot
      answered = true;
      if (counted) this.#outstanding -= 1;
      if (this.#globalWaiters.size > 0 && this.#outstanding < this.#maxOutstanding) {
        const waiters = [...this.#globalWaiters.values()];
        this.#globalWaiters.clear();
        for (const wake of waiters) wake();
      }
      respond(outcome);
    }, gone);
  }

  /**
   * Publishes `message` on `channel` to this replica's subscribers (called as the state machine
   * applies PUBLISH and keyspace notifications); returns how many received it.
   */
  publish(channel: ByteString, message: ByteString): number {
    return this.#hub.publish(channel, message);
  }

  /** The largest bulk string a request may carry (`proto-max-bulk-len`). */
  get maxBulkBytes(): number {
    return this.#limits.maxBulkBytes;
  }

  /**
   * Runs one command as a RESP client would, in a transient session of its own (a new client id;
   * not listed by CLIENT LIST): the same ACL checks, outcomes and error replies, and it counts
   * against the outstanding-operations cap (beyond it the reply is a REFUSED error: nothing was
   * applied). With `login`, the session first runs `AUTH <user> <password>`; when that answers an
   * error (WRONGPASS, counted in INFO as on a connection), that error is the reply and `argv` is
   * not run. Never rejects.
   */
  async execute(argv: ByteString[], options: ExecuteOptions): Promise<Reply> {
    if (this.#outstanding >= this.#maxOutstanding) {
      return { err: "REFUSED too many operations outstanding on this replica; retry later" };
    }
    const session = new Session(
      this.#sessionHost,
      this.#nextClientId++,
      options.remote,
      options.local ?? "",
    );
    const run = (args: ByteString[]) =>
      new Promise<Reply>((resolve) => {
        this.#stats.totalCommands++;
        try {
          session.run(args, resolve);
        } catch (err) {
          resolve({ err: `ERR ${errorText(err)}` });
        }
      });
    if (options.login !== undefined) {
      const auth = await run(["AUTH", options.login.user, options.login.password]);
      if (auth !== null && typeof auth === "object" && "err" in auth) return auth;
    }
    return run(argv);
  }

  /** Operations waiting for their outcome, over all connections. */
  get outstandingOps(): number {
    return this.#outstanding;
  }

  /**
   * Binds the plain TCP listener and starts accepting. Returns the bound address. (With TLS, use
   * {@link ClientServer.open}.)
   *
   * @throws the `Deno.listen` error (e.g. `Deno.errors.AddrInUse`).
   */
  listen(): Deno.NetAddr {
    if (this.#opts.tls !== undefined) throw new Error("a TLS client server is bound by open()");
    const { hostname, port, log } = this.#opts;
    this.#acceptor ??= new AcceptLoop(
      { hostname, port },
      (c) => this.#serve(c),
      log,
      "client port",
    );
    this.#limitsTimer ??= setInterval(() => this.#checkLimits(), LIMITS_CHECK_MS);
    return this.addr;
  }

  /**
   * Binds the listener (TLS when configured, else as {@link ClientServer.listen}) and starts
   * accepting. Resolves with the bound address.
   *
   * @throws (as a rejection) the listen error (e.g. `Deno.errors.AddrInUse`).
   */
  async open(): Promise<Deno.NetAddr> {
    const { hostname, port, log, tls } = this.#opts;
    if (tls === undefined) return this.listen();
    if (this.#acceptor === undefined) {
      const listener = await listenTls({ hostname, port }, tls, log, "client port");
      this.#acceptor = new AcceptLoop(
        listener,
        (c) => this.#serve(c),
        log,
        "client port",
      );
      this.#limitsTimer ??= setInterval(() => this.#checkLimits(), LIMITS_CHECK_MS);
    }
    return this.addr;
  }

  /** The bound address (after {@link ClientServer.listen}). */
  get addr(): Deno.NetAddr {
    if (this.#acceptor === undefined) throw new Error("client server is not listening");
    return this.#acceptor.addr;
  }

  /** Number of open client connections. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Stops listening, closes every connection, resolves when all their ops have ended. */
  async close(): Promise<void> {
    if (this.#limitsTimer !== undefined) clearInterval(this.#limitsTimer);
    await this.#acceptor?.close(() => {
      for (const c of this.#conns) this.#closeConn(c);
    });
  }

  #closeConn(c: ClientConn): void {
    if (c.closed) return;
    c.closed = true;
    c.session?.closed();
    c.readingDone = true;
    c.session?.close();
    c.writer.discard();
    c.slots = [];
    c.head = 0;
    c.slotBytes = 0;
    try {
      c.conn.close();
    } catch {
      // already closed
    }
    this.#wake(c);
  }

  #wake(c: ClientConn): void {
    const wake = c.wake;
    c.wake = undefined;
    wake?.();
    if (c.closed) {
      // Its loop may be parked on the global cap: let it see the close (only this one).
      this.#globalWaiters.get(c)?.();
      this.#globalWaiters.delete(c);
    }
  }

  /** True when the read loop must wait before taking more requests from `c`. */
  #saturated(c: ClientConn): boolean {
    return c.inFlight > this.#maxInFlight || c.writer.queuedBytes > this.#maxUnwritten ||
      this.#outstanding >= this.#maxOutstanding;
  }

  /** Waits until `c` is below its limits, or closed. */
  async #drain(c: ClientConn): Promise<void> {
    while (!c.closed && this.#saturated(c)) {
      if (this.#outstanding >= this.#maxOutstanding) {
        await new Promise<void>((resolve) => this.#globalWaiters.set(c, resolve));
      } else if (c.inFlight > this.#maxInFlight) {
        await new Promise<void>((resolve) => (c.wake = resolve));
      } else {
        await c.writer.idle(); // also resolves when the connection fails or closes
      }
    }
  }

  /** Takes the next reply slot of `c`; the returned function fills it (once). */
  #reserve(c: ClientConn): (bytes: Uint8Array) => void {
    const slot: Slot = { bytes: null };
    c.slots.push(slot);
    return (bytes) => {
      if (c.closed || slot.bytes !== null) return;
      slot.bytes = bytes;
      c.slotBytes += bytes.length;
      this.#scheduleFlush(c);
      this.#grew(bytes.length);
      this.#checkOutput(c);
    };
  }

  /** Reserves a slot and fills it at once (local replies keep their place in the order). */
  #local(c: ClientConn, bytes: Uint8Array): void {
    this.#reserve(c)(bytes);
  }

  #scheduleFlush(c: ClientConn): void {
    if (c.flushScheduled) return;
    c.flushScheduled = true;
    queueMicrotask(() => {
      c.flushScheduled = false;
      this.#flush(c);
    });
  }

  /** Writes the contiguous filled slots at the head as one chunk. */
  #flush(c: ClientConn): void {
    if (c.closed) return;
    const ready: Uint8Array[] = [];
    while (c.head < c.slots.length) {
      const slot = c.slots[c.head];
      if (slot.bytes === null && slot.lazy !== undefined) {
        try {
          slot.bytes = slot.lazy();
        } catch (err) {
          slot.bytes = encodeError(`ERR ${errorText(err)}`);
        }
      }
      if (slot.bytes === null) break;
      ready.push(slot.bytes);
      c.head++;
      if (slot.lazy === undefined) c.slotBytes -= slot.bytes.length;
    }
    if (c.head === c.slots.length) {
      c.slots = [];
      c.head = 0;
    } else if (c.head > 1024 && c.head * 2 > c.slots.length) {
      c.slots = c.slots.slice(c.head);
      c.head = 0;
    }
    // The writer joins the chunks of one turn itself; joining them here would copy them twice.
    for (const bytes of ready) c.writer.write(bytes);
    this.#wake(c);
  }

  #verbose(line: string): void {
    if (this.#opts.verbose) this.#opts.log.debug("client.connection", line);
  }

  async #serve(conn: ByteConn): Promise<void> {
    const c: ClientConn = new ClientConn(conn, this.#limits, (err) => {
      this.#verbose(`client ${c.remote}: write failed, closing: ${errorText(err)}`);
      this.#closeConn(c);
    }, this.#opts.traffic);
    if (this.#conns.size >= this.#maxClients) {
      this.#opts.log.limited(
        "warn",
        "client.limit",
        c.source,
        `client ${c.remote}: refused, ${this.#maxClients} clients connected (maxclients)`,
        { limit: "maxclients", remote: c.remote },
      );
      c.writer.write(encodeError("ERR max number of clients reached"));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([c.writer.idle(), new Promise((r) => timer = setTimeout(r, 1000))]);
      clearTimeout(timer);
      this.#stats.rejected++;
      this.#closeConn(c);
      return;
    }
    const local = conn.localAddr;
    c.session = new Session(
      this.#sessionHost,
      this.#nextClientId++,
      c.remote,
      `${local.hostname}:${local.port}`,
    );
    c.session.kill = () => this.#closeConn(c);
    c.session.push = (reply) => {
      if (!c.closed) this.#local(c, this.#encode(reply));
    };
    this.#stats.totalConnections++;
    this.#conns.add(c);
    try {
      conn.setNoDelay?.(true);
    } catch {
      // best effort
    }
    this.#verbose(`client ${c.remote} connected`);
    try {
      await this.#readRequests(c);
      // No more requests: let the outstanding replies out, then close.
      while (!c.closed && c.inFlight > 0) {
        await new Promise<void>((resolve) => (c.wake = resolve));
      }
      await c.writer.idle();
    } finally {
      this.#closeConn(c);
      await c.writer.idle();
      this.#conns.delete(c);
      this.#verbose(`client ${c.remote} closed`);
    }
  }

  /** Reads and dispatches requests until QUIT, a fatal error, EOF, or the connection closes. */
  async #readRequests(c: ClientConn): Promise<void> {
    const parser = c.parser;
    const reads = new ReadBuffer(IDLE_READ_BYTES, CLIENT_READ_BYTES);
    while (!c.readingDone) {
      await this.#drain(c);
      if (c.closed) return;
      let n: number | null;
      try {
        n = await c.conn.read(reads.buffer);
        if (n !== null && this.#opts.traffic !== undefined) this.#opts.traffic.bytesIn += n;
      } catch (err) {
        if (!c.closed) this.#verbose(`client ${c.remote}: read failed: ${errorText(err)}`);
        this.#closeConn(c);
        return;
      }
      if (n === null) {
        c.readingDone = true; // EOF: outstanding replies still go out
        c.session.closed(); // and blocked commands end
        return;
      }
      try {
        parser.push(reads.filled(n));
      } catch (err) {
        this.#fatal(c, `ERR Protocol error: ${errorText(err)}`);
        return;
      }
      c.lastRead = performance.now();
      if (parser.pendingBytes > this.#queryBufferLimit) {
        this.#closeForLimit(
          c,
          "query-buffer",
          `query buffer of ${parser.pendingBytes} bytes is above client-query-buffer-limit ` +
            `(${this.#queryBufferLimit})`,
        );
        return;
      }
      this.#grew(n);
      while (!c.readingDone) {
        // Re-check after every wait: other connections may have taken the room meanwhile. (Not
        // awaited unless saturated: a request already read is dispatched in the same turn.)
        while (!c.closed && this.#saturated(c)) await this.#drain(c);
        if (c.closed) return;
        let item: RequestItem | null;
        try {
          item = parser.next();
        } catch (err) {
          this.#fatal(c, `ERR Protocol error: ${errorText(err)}`);
          return;
        }
        if (item === null) {
          if (!parser.partial) c.partialSince = undefined;
          else c.partialSince ??= performance.now();
          break;
        }
        c.partialSince = undefined;
        this.#dispatch(c, item);
      }
    }
  }

  /** Closes `c` because it broke a limit; logged at most once per source and interval. */
  #closeForLimit(c: ClientConn, limit: string, why: string): void {
    if (c.closed) return;
    this.#opts.log.limited(
      "warn",
      "client.limit",
      c.source,
      `client ${c.remote}: ${why}; closing the connection`,
      { limit, remote: c.remote },
    );
    this.#closeConn(c);
  }

  /** Closes `c` when its unsent replies break the output buffer limits. */
  #checkOutput(c: ClientConn, now?: number): void {
    const pubsub = c.session?.subscribed ?? false;
    const { hard, soft, softMs } = pubsub ? this.#pubsubOutput : this.#output;
    const limit = pubsub ? "client-output-buffer-limit pubsub" : "client-output-buffer-limit";
    if (hard === 0 && soft === 0) return;
    const unsent = c.unsent;
    if (hard > 0 && unsent > hard) {
      this.#closeForLimit(
        c,
        "output-buffer",
        `${unsent} bytes of replies unsent, above the hard ${limit} (${hard})`,
      );
      return;
    }
    if (soft === 0 || unsent <= soft) {
      c.softSince = undefined;
      return;
    }
    const t = now ?? performance.now();
    c.softSince ??= t;
    if (t - c.softSince >= softMs) {
      this.#closeForLimit(
        c,
        "output-buffer",
        `${unsent} bytes of replies unsent, above the soft ${limit} (${soft}) ` +
          `for ${Math.round((t - c.softSince) / 1000)} s`,
      );
    }
  }

  /** Notes `bytes` more buffered; past `maxMemoryClients`, counts exactly and evicts. */
  #grew(bytes: number): void {
    this.#memory += bytes;
    if (this.#maxMemory > 0 && this.#memory > this.#maxMemory) this.#enforceMemory();
  }

  /** Counts the bytes of all connections; closes the biggest while they are above the limit. */
  #enforceMemory(): void {
    let total = 0;
    for (const c of this.#conns) if (!c.closed) total += c.memory;
    this.#memory = total;
    if (this.#maxMemory === 0 || total <= this.#maxMemory) return;
    const biggest = [...this.#conns].filter((c) => !c.closed)
      .map((c) => ({ c, bytes: c.memory }))
      .sort((a, b) => b.bytes - a.bytes);
    for (const { c, bytes } of biggest) {
      if (total <= this.#maxMemory) break;
      total -= bytes;
      this.#closeForLimit(
        c,
        "maxmemory-clients",
        `clients buffer more than maxmemory-clients (${this.#maxMemory} bytes); this one ` +
          `${bytes}, the most`,
      );
    }
    this.#memory = total;
  }

  /** The limits that depend on time, and an exact count of the memory (every 100 ms). */
  #checkLimits(): void {
    const now = performance.now();
    for (const c of this.#conns) {
      if (c.closed) continue;
      if (c.partialSince !== undefined && this.#requestMs > 0) {
        if (now - c.partialSince > this.#requestMs) {
          this.#closeForLimit(
            c,
            "request-timeout",
            `request not complete within ${this.#requestMs / 1000} s (client-request-timeout)`,
          );
          continue;
        }
      }
      if (this.#idleMs > 0 && c.inFlight === 0 && !c.readingDone && !c.session.subscribed) {
        if (now - c.lastRead > this.#idleMs) {
          this.#closeForLimit(c, "timeout", `idle for ${this.#idleMs / 1000} s (timeout)`);
          continue;
        }
      }
      this.#checkOutput(c, now);
    }
    this.#enforceMemory();
  }

  /** Answers `message` (a RESP error without the leading "-"), then closes after the replies. */
  #fatal(c: ClientConn, message: string): void {
    this.#verbose(`client ${c.remote}: ${message}; closing`);
    this.#local(c, encodeError(message));
    c.readingDone = true;
  }

  #dispatch(c: ClientConn, item: RequestItem): void {
    if ("error" in item) {
      if (item.fatal) this.#fatal(c, item.error);
      else this.#local(c, encodeError(item.error));
      return;
    }
    this.#stats.totalCommands++;
    const fill = this.#reserve(c);
    let after;
    try {
      after = c.session.run(item.argv, (reply) => {
        if (!c.closed) fill(this.#encode(reply));
      });
    } catch (err) {
      fill(encodeError(`ERR ${errorText(err)}`));
    }
    if (after === "close") c.readingDone = true;
  }

  #encode(reply: Reply): Uint8Array {
    try {
      return this.#bulks.encode(reply);
    } catch (err) {
      return encodeError(`ERR cannot encode reply: ${errorText(err)}`);
    }
  }
}
