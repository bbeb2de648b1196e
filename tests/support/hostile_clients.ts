/**
 * A bounded hostile load against one replica: many connections at once, each slot playing one
 * kind of bad or greedy client, for tests that check a replica's memory stays bounded.
 *
 * - `pipeliner`: pipelines `GET <bigKey>` without ever reading a reply.
 * - `slowSender`: sends the first bytes of a request, then one more byte every second.
 * - `idle`: connects and sends nothing.
 * - `hugeBulk`: announces a bulk string of the largest size and sends part of it (64 KiB every
 *   500 ms), then stalls.
 * - `peerHalfFrame`: on the peer port, announces a frame and sends half of it, then stalls.
 *
 * Every slot keeps one connection open: when the replica closes it (a limit), the slot connects
 * again a moment later, until {@link HostileLoad.stop}. Everything is bounded: the number of connections, the
 * bytes each sends per connection, and the duration (the caller stops it). Connects are made a
 * few at a time so the listener's backlog is not overrun.
 *
 * ```ts
 * const load = HostileLoad.start({ clientPort, peerPort, bigKey: "big", mix: DEFAULT_HOSTILE_MIX });
 * await waitFor(() => load.open >= 1900);
 * const report = await load.stop();
 * ```
 *
 * @module
 */
import { encodeCommand } from "../../src/net/resp.ts";
import { writeAll } from "./fault_proxy.ts";
import { closeQuietly } from "./raw_conn.ts";

const LOOPBACK = "127.0.0.1";
/** A slot whose connection the replica closed connects again after this many ms. */
const RECONNECT_PAUSE_MS = 1000;
/** A huge-bulk sender sends a chunk of this many bytes every {@link HUGE_CHUNK_EVERY_MS}. */
const HUGE_CHUNK_BYTES = 64 * 1024;
/** See {@link HUGE_CHUNK_BYTES}: 1 MiB takes 8 s (within the 10 s request deadline). */
const HUGE_CHUNK_EVERY_MS = 500;

/** The kinds of hostile connection. */
export type HostileKind = "pipeliner" | "slowSender" | "idle" | "hugeBulk" | "peerHalfFrame";

/** How many connections of each kind. */
export type HostileMix = Record<HostileKind, number>;

/** 2,000 connections: the target. */
export const DEFAULT_HOSTILE_MIX: Readonly<HostileMix> = Object.freeze({
  pipeliner: 200,
  slowSender: 400,
  idle: 1000,
  hugeBulk: 200,
  peerHalfFrame: 200,
});

/** Options of {@link HostileLoad.start}. */
export interface HostileOptions {
  /** The replica's client (RESP) port. */
  clientPort: number;
  /** The replica's peer port. */
  peerPort: number;
  /** A key holding a large value, for the pipeliners. */
  bigKey: string;
  /** Connections per kind. */
  mix: Readonly<HostileMix>;
  /** The bulk length `hugeBulk` announces (default 8 MiB, the default `proto-max-bulk-len`). */
  hugeBulkLength?: number;
  /** Bytes of the announced bulk `hugeBulk` sends before stalling (default 1 MiB). */
  hugeBulkSent?: number;
  /** Bytes of `GET` requests a pipeliner writes per connection at most (default 64 MiB). */
  pipelineBytes?: number;
  /** Connects in progress at once (default 64). */
  connectConcurrency?: number;
}

/** What happened, per kind. */
export interface HostileCounts {
  /** Connections opened. */
  opened: number;
  /** Connections the replica closed (EOF, reset, or a failed write). */
  closedByServer: number;
  /** Connect attempts that failed. */
  connectFailures: number;
  /** Bytes written. */
  bytesSent: number;
}

/** A running hostile load. */
export class HostileLoad {
  readonly #opts: Required<HostileOptions>;
  readonly #counts = new Map<HostileKind, HostileCounts>();
  readonly #live = new Set<Deno.Conn>();
  readonly #loops: Promise<void>[] = [];
  #stopped = false;
  #slotsConnected = 0;
  #connecting = 0;
  readonly #connectWaiters: (() => void)[] = [];
  readonly #stopWaiters = new Set<() => void>();

  private constructor(opts: HostileOptions) {
    this.#opts = {
      hugeBulkLength: 8 * 1024 * 1024,
      hugeBulkSent: 1024 * 1024,
      pipelineBytes: 64 * 1024 * 1024,
      connectConcurrency: 64,
      ...opts,
    };
  }

  /** Starts every slot of `opts.mix`; connections open over the next moments. */
  static start(opts: HostileOptions): HostileLoad {
    const load = new HostileLoad(opts);
    const kinds = Object.keys(opts.mix) as HostileKind[];
    for (const kind of kinds) {
      load.#counts.set(kind, { opened: 0, closedByServer: 0, connectFailures: 0, bytesSent: 0 });
    }
    // Round-robin over the kinds, so that every kind ramps up at the same pace.
    const most = Math.max(0, ...kinds.map((k) => opts.mix[k]));
    for (let i = 0; i < most; i++) {
      for (const kind of kinds) if (i < opts.mix[kind]) load.#loops.push(load.#slot(kind));
    }
    return load;
  }

  /** Slots that have connected at least once (all of them: the whole mix was open at once). */
  get slotsConnected(): number {
    return this.#slotsConnected;
  }

  /** Connections open right now. */
  get open(): number {
    return this.#live.size;
  }

  /** The counts so far, per kind. */
  counts(): Record<HostileKind, HostileCounts> {
    return Object.fromEntries(
      [...this.#counts].map(([k, c]) => [k, { ...c }]),
    ) as Record<HostileKind, HostileCounts>;
  }

  /** Closes every connection, waits for every slot to end, and returns the counts. */
  async stop(): Promise<Record<HostileKind, HostileCounts>> {
    this.#stopped = true;
    for (const wake of this.#stopWaiters) wake();
    this.#stopWaiters.clear();
    for (const wake of this.#connectWaiters.splice(0)) wake();
    for (const conn of this.#live) closeQuietly(conn);
    await Promise.all(this.#loops);
    return this.counts();
  }

  /** One slot: connect, misbehave until the replica closes the connection, again, until stopped. */
  async #slot(kind: HostileKind): Promise<void> {
    const counts = this.#counts.get(kind)!;
    const port = kind === "peerHalfFrame" ? this.#opts.peerPort : this.#opts.clientPort;
    let connected = false;
    while (!this.#stopped) {
      const conn = await this.#connect(port);
      if (conn === undefined) {
        if (this.#stopped) return;
        counts.connectFailures++;
        await this.#pause(100);
        continue;
      }
      counts.opened++;
      if (!connected) {
        connected = true;
        this.#slotsConnected++;
      }
      this.#live.add(conn);
      // A pipeliner must not read (its replies stay unread): it learns of the close from a write.
      const closedByServer = kind === "pipeliner" ? this.#pause(Infinity) : this.#watchClose(conn);
      try {
        await this.#misbehave(kind, conn, counts, closedByServer);
        await Promise.race([closedByServer, this.#pause(Infinity)]);
      } catch {
        // a failed write: the replica closed the connection
      } finally {
        this.#live.delete(conn);
        closeQuietly(conn);
      }
      if (this.#stopped) return;
      counts.closedByServer++;
      await this.#pause(RECONNECT_PAUSE_MS);
    }
  }

  /** Connects with at most `connectConcurrency` connects in progress; undefined on failure. */
  async #connect(port: number): Promise<Deno.Conn | undefined> {
    while (this.#connecting >= this.#opts.connectConcurrency && !this.#stopped) {
      await new Promise<void>((resolve) => this.#connectWaiters.push(resolve));
    }
    if (this.#stopped) return undefined;
    this.#connecting++;
    try {
      const conn = await Deno.connect({ hostname: LOOPBACK, port });
      if (this.#stopped) {
        closeQuietly(conn);
        return undefined;
      }
      return conn;
    } catch {
      return undefined;
    } finally {
      this.#connecting--;
      this.#connectWaiters.shift()?.();
    }
  }

  /** Resolves when the replica closes `conn` (EOF or an error), or when it is closed here. */
  async #watchClose(conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(256);
    try {
      while ((await conn.read(buf)) !== null) {
        // an error reply before the close (e.g. a protocol error): keep reading to the end
      }
    } catch {
      // reset, or closed here
    }
  }

  async #misbehave(
    kind: HostileKind,
    conn: Deno.Conn,
    counts: HostileCounts,
    closed: Promise<void>,
  ): Promise<void> {
    const send = async (bytes: Uint8Array) => {
      await writeAll(conn, bytes);
      counts.bytesSent += bytes.length;
    };
    switch (kind) {
      case "pipeliner": {
        const one = encodeCommand(["GET", this.#opts.bigKey]);
        const batch = new Uint8Array(one.length * 512);
        for (let i = 0; i < 512; i++) batch.set(one, i * one.length);
        for (let sent = 0; sent < this.#opts.pipelineBytes && !this.#stopped;) {
          await send(batch);
          sent += batch.length;
        }
        return;
      }
      case "slowSender": {
        const bytes = encodeCommand(["SET", "slow", "z".repeat(1000)]);
        await send(bytes.subarray(0, 20));
        for (let i = 20; i < bytes.length - 1 && !this.#stopped; i++) {
          if (await this.#raceClose(closed, 1000)) return;
          await send(bytes.subarray(i, i + 1));
        }
        return;
      }
      case "idle":
        return;
      case "hugeBulk": {
        await send(
          new TextEncoder().encode(
            `*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$${this.#opts.hugeBulkLength}\r\n`,
          ),
        );
        const chunk = new Uint8Array(HUGE_CHUNK_BYTES).fill(0x68);
        for (let sent = 0; sent < this.#opts.hugeBulkSent && !this.#stopped;) {
          const n = Math.min(chunk.length, this.#opts.hugeBulkSent - sent);
          await send(chunk.subarray(0, n));
          sent += n;
          if (await this.#raceClose(closed, HUGE_CHUNK_EVERY_MS)) return;
        }
        return;
      }
      case "peerHalfFrame": {
        // A frame of 4,000 bytes (within the pre-hello limit) of which half is sent.
        const frame = new Uint8Array(4 + 2000);
        new DataView(frame.buffer).setUint32(0, 4000, false);
        frame.fill(0x7b, 4);
        await send(frame);
        return;
      }
    }
  }

  /** True when `closed` resolved first; false after `ms` (or when stopped). */
  async #raceClose(closed: Promise<void>, ms: number): Promise<boolean> {
    let done = false;
    await Promise.race([closed.then(() => done = true), this.#pause(ms)]);
    return done;
  }

  /** Waits `ms` (Infinity: until stopped); ends early when the load stops. */
  #pause(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#stopWaiters.delete(done);
        resolve();
      };
      if (ms !== Infinity) timer = setTimeout(done, ms);
      this.#stopWaiters.add(done);
    });
  }
}
