/**
 * A workload client for end-to-end tests under faults: one connection at a time (one command in
 * flight, like a Redis client without pipelining), to one of the replicas; on a timeout, a lost
 * or refused connection, or an `UNKNOWN`/`NOQUORUM`/`REFUSED` reply it drops the connection and
 * moves on to the next replica. Dropping the connection also drops the session (WATCH, MULTI), so
 * a caller in the middle of a transaction starts it again.
 *
 * Every {@link FailoverClient.call} says what became of the command:
 * - `reply`: the server answered (any reply but the three error codes above, errors included);
 * - `unknown`: the command may have been applied or not (timeout or lost connection after it was
 *   sent, `UNKNOWN`);
 * - `failed`: the command was definitely not applied (could not connect, `NOQUORUM`, `REFUSED`).
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { describeError, RespTestClient } from "./cluster.ts";
import { errorOutcome, isConnectionTrouble } from "./history.ts";

/** The outcome of one {@link FailoverClient.call}, with its invocation and response times. */
export type CallOutcome =
  | { kind: "reply"; reply: RespValue; call: number; ret: number }
  | { kind: "unknown"; why: string; call: number }
  | { kind: "failed"; why: string; call: number };

/** Options of a {@link FailoverClient}. */
export interface FailoverClientOptions {
  /** Client ports of the replicas, in the order the client moves through them. */
  ports: readonly number[];
  /** Index in `ports` of the first replica. */
  start: number;
  /** A reply later than this makes the command unknown (default 3000 ms). */
  timeoutMs?: number;
  /** Where to log connection trouble (e.g. `cluster.note`). */
  note?: (line: string) => void;
  /** A name for the log lines. */
  name: string;
}

/** A client that fails over to the next replica; see the module doc. Always {@link close} it. */
export class FailoverClient {
  readonly #ports: readonly number[];
  readonly #timeoutMs: number;
  readonly #note: (line: string) => void;
  readonly #name: string;
  #at: number;
  #conn: RespTestClient | null = null;
  /** Connections dropped so far (a changed value means the session state is gone). */
  failovers = 0;

  /** A client; it connects lazily, on its first call. */
  constructor(options: FailoverClientOptions) {
    this.#ports = options.ports;
    this.#at = options.start % options.ports.length;
    this.#timeoutMs = options.timeoutMs ?? 3000;
    this.#note = options.note ?? (() => {});
    this.#name = options.name;
  }

  /** Index in `ports` of the replica this client talks to now. */
  get at(): number {
    return this.#at;
  }

  async #moveOn(why: string): Promise<void> {
    const conn = this.#conn;
    this.#conn = null;
    await conn?.close();
    this.failovers++;
    this.#at = (this.#at + 1) % this.#ports.length;
    this.#note(`${this.#name}: ${why}; moving to the replica on port ${this.#ports[this.#at]}`);
  }

  /** Sends `argv` and waits (bounded) for its reply; see {@link CallOutcome}. */
  async call(argv: ByteString[]): Promise<CallOutcome> {
    const call = performance.now();
    if (this.#conn === null) {
      try {
        this.#conn = await RespTestClient.connect(this.#ports[this.#at]);
      } catch (err) {
        if (!isConnectionTrouble(err)) throw err;
        await this.#moveOn(`connect: ${describeError(err)}`);
        return { kind: "failed", why: describeError(err), call };
      }
    }
    let reply: RespValue;
    try {
      reply = await this.#conn.call(argv, this.#timeoutMs);
    } catch (err) {
      if (!isConnectionTrouble(err)) throw err;
      await this.#moveOn(`${argv[0]}: ${describeError(err)}`);
      return { kind: "unknown", why: describeError(err), call };
    }
    const ret = performance.now();
    if (reply instanceof RespError) {
      const outcome = errorOutcome(reply);
      if (outcome !== null) {
        await this.#moveOn(`${argv[0]}: -${reply.message}`);
        return { kind: outcome, why: reply.message, call };
      }
    }
    return { kind: "reply", reply, call, ret };
  }

  /** Closes the connection (if any). */
  async close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = null;
    await conn?.close();
  }
}

/** A short text for a reply, for failure messages. */
export function showReply(reply: RespValue): string {
  return reply instanceof RespError ? `-${reply.message}` : JSON.stringify(reply);
}
