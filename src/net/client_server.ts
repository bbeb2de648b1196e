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
 * @module
 */
import type { Command, Outcome, ReplicaStatus, Reply } from "../core/types.ts";
import { AcceptLoop } from "./accept_loop.ts";
import { Session, type SessionHost } from "./session.ts";
import type { ServerStats } from "./info.ts";
import { encodeReply } from "../kv/reply.ts";
import {
  DEFAULT_RESP_LIMITS,
  encodeError,
  type RequestItem,
  type RespLimits,
  RespRequestParser,
} from "./resp.ts";
import { concatBytes } from "../kv/bytes.ts";
import { ConnWriter, errorText } from "./conn_writer.ts";

/** What the client server needs from its replica. */
export interface ClientHandler {
  /**
   * Submits an operation. `respond` must be called exactly once with its outcome, at any later
   * time or synchronously; calls after the first, or after the connection closed, are ignored.
   */
  submit(cmd: Command, respond: (outcome: Outcome) => void): void;
  /** The replica's status, for INFO. */
  status(): ReplicaStatus;
  /** Wall-clock ms stamped on operations (default `Date.now()`; tests shift it). */
  now?(): number;
  /** Keys with an expiry time, for INFO's keyspace section. */
  expires?(): number;
  /** CONFIG GET's parameters (default: a few fixed ones). */
  config?(): Record<string, string>;
}

/** Options of a {@link ClientServer}. */
export interface ClientServerOptions {
  /** Address to listen on (port 0 picks a free port). */
  hostname: string;
  port: number;
  handler: ClientHandler;
  /** One log line per event that matters (accept failures); per-connection lines only if verbose. */
  log: (line: string) => void;
  /** Log every connection opened, closed or refused for a protocol error. */
  verbose?: boolean;
  /** RESP parser limits (default {@link DEFAULT_RESP_LIMITS}). */
  limits?: RespLimits;
  /** Stop reading a connection with more requests than this outstanding (default 1024). */
  maxInFlight?: number;
  /** Stop reading a connection with more reply bytes than this unwritten (default 64 MiB). */
  maxUnwrittenBytes?: number;
  /**
   * Stop reading every connection while this many operations of all connections together wait
   * for their outcome (default 10,000): memory stays bounded however many clients push.
   */
  maxOutstandingOps?: number;
}

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
  readonly conn: Deno.TcpConn;
  readonly remote: string;
  session!: Session;
  readonly writer: ConnWriter;
  /** Reply slots in request order; `head` is the first not yet flushed. */
  slots: Slot[] = [];
  head = 0;
  /** No more requests will be read (QUIT, fatal error, EOF or close). */
  readingDone = false;
  closed = false;
  flushScheduled = false;
  /** Wakes the read loop waiting for the connection to drain or close. */
  wake: (() => void) | undefined;

  constructor(conn: Deno.TcpConn, onWriteError: (err: unknown) => void) {
    this.conn = conn;
    const addr = conn.remoteAddr;
    this.remote = `${addr.hostname}:${addr.port}`;
    this.writer = new ConnWriter(conn, onWriteError);
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
  readonly #stats = { startedAt: Date.now(), totalConnections: 0, totalCommands: 0, rejected: 0 };

  /** Creates the server; nothing listens until {@link ClientServer.listen}. */
  constructor(options: ClientServerOptions) {
    this.#opts = options;
    this.#limits = options.limits ?? DEFAULT_RESP_LIMITS;
    this.#maxInFlight = options.maxInFlight ?? 1024;
    this.#maxUnwritten = options.maxUnwrittenBytes ?? 64 * 1024 * 1024;
    this.#maxOutstanding = options.maxOutstandingOps ?? 10_000;
    const handler = options.handler;
    const now = handler.now ? () => handler.now!() : () => Date.now();
    this.#sessionHost = {
      submit: (cmd, respond) => this.#submit(cmd, respond),
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
        expires: handler.expires?.() ?? 0,
      }),
      config: () =>
        handler.config?.() ?? {
          databases: "1",
          save: "",
          appendonly: "no",
          maxmemory: "0",
          "maxmemory-policy": "noeviction",
          timeout: "0",
          "notify-keyspace-events": "",
        },
    };
  }

  /** Submits an operation to the replica, counting it against the global cap. */
  #submit(cmd: Command, respond: (outcome: Outcome) => void): void {
    this.#outstanding += 1;
    let answered = false;
    this.#opts.handler.submit(cmd, (outcome) => {
      if (answered) return; // a second answer is ignored, and does not free a second slot
      answered = true;
      this.#outstanding -= 1;
      if (this.#globalWaiters.size > 0 && this.#outstanding < this.#maxOutstanding) {
        const waiters = [...this.#globalWaiters.values()];
        this.#globalWaiters.clear();
        for (const wake of waiters) wake();
      }
      respond(outcome);
    });
  }

  /** Operations waiting for their outcome, over all connections. */
  get outstandingOps(): number {
    return this.#outstanding;
  }

  /**
   * Binds the listener and starts accepting. Returns the bound address.
   *
   * @throws the `Deno.listen` error (e.g. `Deno.errors.AddrInUse`).
   */
  listen(): Deno.NetAddr {
    const { hostname, port, log } = this.#opts;
    this.#acceptor ??= new AcceptLoop(
      { hostname, port },
      (c) => this.#serve(c),
      log,
      "client port",
    );
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
    await this.#acceptor?.close(() => {
      for (const c of this.#conns) this.#closeConn(c);
    });
  }

  #closeConn(c: ClientConn): void {
    if (c.closed) return;
    c.closed = true;
    c.readingDone = true;
    c.writer.discard();
    c.slots = [];
    c.head = 0;
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
      this.#scheduleFlush(c);
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
    }
    if (c.head === c.slots.length) {
      c.slots = [];
      c.head = 0;
    } else if (c.head > 1024 && c.head * 2 > c.slots.length) {
      c.slots = c.slots.slice(c.head);
      c.head = 0;
    }
    if (ready.length > 0) c.writer.write(ready.length === 1 ? ready[0] : concatBytes(ready));
    this.#wake(c);
  }

  #verbose(line: string): void {
    if (this.#opts.verbose) this.#opts.log(line);
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const c: ClientConn = new ClientConn(conn, (err) => {
      this.#verbose(`client ${c.remote}: write failed, closing: ${errorText(err)}`);
      this.#closeConn(c);
    });
    const local = conn.localAddr;
    c.session = new Session(
      this.#sessionHost,
      this.#nextClientId++,
      c.remote,
      `${local.hostname}:${local.port}`,
    );
    c.session.kill = () => this.#closeConn(c);
    this.#stats.totalConnections++;
    this.#conns.add(c);
    try {
      conn.setNoDelay(true);
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
    const parser = new RespRequestParser(this.#limits);
    const buf = new Uint8Array(64 * 1024);
    while (!c.readingDone) {
      await this.#drain(c);
      if (c.closed) return;
      let n: number | null;
      try {
        n = await c.conn.read(buf);
      } catch (err) {
        if (!c.closed) this.#verbose(`client ${c.remote}: read failed: ${errorText(err)}`);
        this.#closeConn(c);
        return;
      }
      if (n === null) {
        c.readingDone = true; // EOF: outstanding replies still go out
        return;
      }
      try {
        parser.push(buf.slice(0, n));
      } catch (err) {
        this.#fatal(c, `ERR Protocol error: ${errorText(err)}`);
        return;
      }
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
        if (item === null) break;
        this.#dispatch(c, item);
      }
    }
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
      return encodeReply(reply);
    } catch (err) {
      return encodeError(`ERR cannot encode reply: ${errorText(err)}`);
    }
  }
}
