/**
 * A tiny in-process RESP server for client tests: listens on 127.0.0.1 (port 0), parses requests
 * with the real {@link RespRequestParser}, records every request, and answers each with whatever
 * a test-supplied handler returns. Requests of one connection are handled one at a time, in
 * order; reading continues while a handler waits, so tests can observe pipelining.
 *
 * `REPLICASET MEMBERS`, which the client library asks on every new connection, is answered by
 * the server itself from {@link FakeRespServer.members} (by default as a server without
 * membership changes answers it: an unknown-command error) and counted in
 * {@link FakeRespServer.membersAsked}, apart from {@link FakeRespServer.requests}; set `members`
 * to null to hand it to the handler like any request.
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import type { ClusterConfig } from "../../src/config/config.ts";
import {
  encodeArray,
  encodeBulk,
  encodeEmptyArray,
  encodeError,
  encodeInteger,
  encodeSimple,
  RespRequestParser,
} from "../../src/net/resp.ts";

/**
 * What a handler answers: reply bytes, `"close"` (close the connection without a reply) or
 * `"hang"` (never answer this request nor any later one on this connection, like a stopped
 * process; requests are still read and recorded).
 */
export type FakeReply = Uint8Array | "close" | "hang";

/** One request as the server saw it. */
export interface FakeRequest {
  /** Which connection (1, 2, ... in accept order). */
  conn: number;
  argv: ByteString[];
}

/** Answers one request. */
export type FakeHandler = (
  argv: ByteString[],
  request: FakeRequest,
) => FakeReply | Promise<FakeReply>;

/** One replica in a {@link membersReply}. */
export interface FakeMember {
  id: number;
  clientPort: number;
  /** Default `voter`. */
  role?: "voter" | "learner" | "catching-up" | "joining";
  /** Default 127.0.0.1. */
  host?: string;
  /** Default `in-view`. */
  state?: string;
}

/** A `REPLICASET MEMBERS` reply as a replica sends it, for `members`. */
export function membersReply(members: FakeMember[]): Uint8Array {
  return encodeArray(members.map((m) =>
    encodeArray([
      encodeBulk("id"),
      encodeInteger(m.id),
      encodeBulk("host"),
      encodeBulk(m.host ?? "127.0.0.1"),
      encodeBulk("client-port"),
      encodeInteger(m.clientPort),
      encodeBulk("peer-port"),
      encodeInteger(40000 + m.id),
      encodeBulk("http-port"),
      encodeBulk(null),
      encodeBulk("role"),
      encodeBulk(m.role ?? "voter"),
      encodeBulk("state"),
      encodeBulk(m.state ?? "in-view"),
    ])
  ));
}

/** What a server without membership changes answers to `REPLICASET MEMBERS`. */
export const NO_REPLICASET: Uint8Array = encodeError(
  "ERR unknown command 'REPLICASET', with args beginning with: 'MEMBERS' ",
);

/** Reply helpers. */
export const reply = {
  ok: (): Uint8Array => encodeSimple("OK"),
  bulk: (s: ByteString | null): Uint8Array => encodeBulk(s),
  int: (n: number): Uint8Array => encodeInteger(n),
  error: (message: string): Uint8Array => encodeError(message),
};

/**
 * A fake replica's handler over `map`: answers the client library's `REQ <client> <seq> PUT|GET|
 * DELETE|HAS ...` like a replica would, and INFO with `infoBody`.
 */
export function kvHandler(
  map: Map<ByteString, ByteString>,
  infoBody = "# lamportkv\r\nid:0\r\n",
): FakeHandler {
  return (argv) => {
    if (argv[0] === "INFO") return reply.bulk(infoBody);
    if (argv[0] !== "REQ" || argv.length < 4) return reply.error("ERR unexpected request");
    const [, , , cmd, ...args] = argv;
    switch (cmd) {
      case "PUT":
        map.set(args[0], args[1]);
        return reply.ok();
      case "GET":
        return reply.bulk(map.get(args[0]) ?? null);
      case "DELETE":
        return reply.int(map.delete(args[0]) ? 1 : 0);
      case "HAS":
        return reply.int(map.has(args[0]) ? 1 : 0);
      default:
        return reply.error(`ERR unknown command '${cmd}'`);
    }
  };
}

/**
 * A fake replica's handler over `map` answering a few commands as lamportkv does, for clients
 * that pass any command through: SET/PUT, GET, INCR, DEL/DELETE, EXISTS/HAS, MGET, KEYS (empty),
 * SCAN (every key), WATCH, LPUSH (always WRONGTYPE), PING, INFO (`infoBody`), with or without
 * their REQ wrapper, in any case; MULTI/EXEC per connection; other names are unknown commands
 * in Redis's words.
 */
export function lamportLikeHandler(
  map: Map<ByteString, ByteString>,
  infoBody = "# lamportkv\r\ndelivered:1\r\ndigest:d\r\n",
): FakeHandler {
  const transactions = new Map<number, ByteString[][]>();
  const run = (cmd: ByteString[]): Uint8Array => {
    const [name, ...args] = cmd;
    switch (name.toLowerCase()) {
      case "put":
      case "set":
        map.set(args[0], args[1]);
        return reply.ok();
      case "get":
        if (args.length !== 1) {
          return reply.error("ERR wrong number of arguments for 'get' command");
        }
        return reply.bulk(map.get(args[0]) ?? null);
      case "incr": {
        const n = Number(map.get(args[0]) ?? "0") + 1;
        map.set(args[0], String(n));
        return reply.int(n);
      }
      case "del":
      case "delete":
        return reply.int(map.delete(args[0]) ? 1 : 0);
      case "exists":
      case "has":
        return reply.int(map.has(args[0]) ? 1 : 0);
      case "lpush":
        return reply.error("WRONGTYPE Operation against a key holding the wrong kind of value");
      case "scan":
        return encodeArray([encodeBulk("0"), encodeArray([...map.keys()].sort().map(encodeBulk))]);
      case "mget":
        return encodeArray(args.map((k) => encodeBulk(map.get(k) ?? null)));
      case "keys":
        return encodeEmptyArray();
      case "ping":
        return encodeSimple("PONG");
      case "watch":
        return reply.ok();
      case "info":
        return reply.bulk(infoBody);
      default:
        return reply.error(
          `ERR unknown command '${name}', with args beginning with: ` +
            args.map((a) => `'${a}' `).join(""),
        );
    }
  };
  return (argv, { conn }) => {
    const cmd = argv[0] === "REQ" ? argv.slice(3) : argv;
    const queue = transactions.get(conn);
    switch (cmd[0].toLowerCase()) {
      case "multi":
        transactions.set(conn, []);
        return reply.ok();
      case "exec":
        if (!queue) return reply.error("ERR EXEC without MULTI");
        transactions.delete(conn);
        return encodeArray(queue.map(run));
    }
    if (queue) {
      queue.push(cmd);
      return encodeSimple("QUEUED");
    }
    return run(cmd);
  };
}

/** Waits until `condition()` holds, polling every few ms; throws after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A fake RESP server. Create with {@link FakeRespServer.start}, always {@link close}. */
export class FakeRespServer {
  /** Every request received, in arrival order. */
  readonly requests: FakeRequest[] = [];
  /** Number of connections accepted so far. */
  connections = 0;
  /** The handler (may be replaced between requests). */
  handler: FakeHandler;
  /**
   * The answer to `REPLICASET MEMBERS` (see the module documentation; null: the handler
   * answers it). May be replaced at any time.
   */
  members: FakeReply | null = NO_REPLICASET;
  /** How many `REPLICASET MEMBERS` the server answered itself. */
  membersAsked = 0;

  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #tasks = new Set<Promise<void>>();
  #closed = false;

  private constructor(listener: Deno.TcpListener, handler: FakeHandler) {
    this.#listener = listener;
    this.handler = handler;
    this.#track(this.#accept());
  }

  /** Starts a server on 127.0.0.1 with a free port. */
  static start(handler: FakeHandler): FakeRespServer {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new FakeRespServer(listener, handler);
  }

  /** The port it listens on. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** The argv of every request, in arrival order. */
  get argvs(): ByteString[][] {
    return this.requests.map((r) => r.argv);
  }

  /** Closes the listener and every connection, and waits for all of its tasks to end. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#listener.close();
      } catch {
        // already closed
      }
      for (const conn of this.#conns) closeQuietly(conn);
    }
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
  }

  /** Closes every open connection (the listener stays open). */
  dropConnections(): void {
    for (const conn of this.#conns) closeQuietly(conn);
  }

  #isMembers(argv: ByteString[]): boolean {
    return this.members !== null && argv.length === 2 &&
      argv[0].toUpperCase() === "REPLICASET" && argv[1].toUpperCase() === "MEMBERS";
  }

  #track(task: Promise<void>): void {
    const tracked = task.finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closed) {
          closeQuietly(conn);
          break;
        }
        this.#conns.add(conn);
        this.#track(this.#serve(conn, ++this.connections));
      }
    } catch {
      // listener closed
    }
  }

  async #serve(conn: Deno.TcpConn, id: number): Promise<void> {
    const parser = new RespRequestParser();
    const queue: FakeRequest[] = [];
    const signal: { wake: (() => void) | null } = { wake: null };
    let eof = false;
    const reader = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          parser.push(buf.slice(0, n));
          for (let item = parser.next(); item !== null; item = parser.next()) {
            if (!("argv" in item)) throw new Error(`fake server: bad request: ${item.error}`);
            const request = { conn: id, argv: item.argv };
            if (!this.#isMembers(item.argv)) this.requests.push(request);
            queue.push(request);
          }
          signal.wake?.();
        }
      } catch {
        // connection closed
      } finally {
        eof = true;
        signal.wake?.();
      }
    })();
    let hung = false;
    try {
      while (true) {
        const request = hung ? undefined : queue.shift();
        if (!request) {
          if (eof) break;
          await new Promise<void>((resolve) => (signal.wake = resolve));
          signal.wake = null;
          continue;
        }
        const members = this.#isMembers(request.argv) ? this.members : null;
        if (members !== null) this.membersAsked++;
        const answer = members ?? await this.handler(request.argv, request);
        if (answer === "hang") {
          hung = true;
          continue;
        }
        if (answer === "close") break;
        let written = 0;
        while (written < answer.length) written += await conn.write(answer.subarray(written));
      }
    } catch {
      // connection closed while writing
    } finally {
      this.#conns.delete(conn);
      closeQuietly(conn);
      await reader;
    }
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound then released). */
export function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * A cluster config whose replicas 1, 2, ... have the given client ports on 127.0.0.1 (for
 * clients pointed at fake servers; the peer ports are never used).
 */
export function configOf(clientPorts: number[]): ClusterConfig {
  return {
    path: "test.conf",
    replicas: clientPorts.map((clientPort, i) => ({
      id: i + 1,
      host: "127.0.0.1",
      clientPort,
      peerPort: 40000 + i,
    })),
  };
}
