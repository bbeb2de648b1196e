/**
 * The replicated state machine: a byte-string map, its digest, and the exactly-once client table.
 * Every replica applies the same commands in the same order and so reaches the same state;
 * nothing here may depend on anything but the commands (no clocks, no randomness).
 *
 * @module
 */
import type { Command, OpResult } from "../core/types.ts";
import type { StateMachine } from "../core/replica.ts";
import { MapDigest } from "./digest.ts";

/** How many clients the exactly-once table remembers (least recently used are forgotten). */
const DEFAULT_CLIENT_TABLE_SIZE = 65_536;

/** The snapshot form of a {@link KvStore}. */
export interface KvSnapshot {
  map: [string, string][];
  clients: [string, number, OpResult][];
}

interface ClientRecord {
  seq: number;
  result: OpResult;
}

/**
 * The key-value map. A tagged write (`cmd.tag`) whose `seq` is not above the client's last one is
 * a retry: it is not applied again and returns the recorded result. Reads are always executed
 * (re-executing a read at its later position in the order is still linearizable). Exactly-once
 * holds for clients with at most one tagged write outstanding at a time.
 */
export class KvStore implements StateMachine {
  readonly #map = new Map<string, string>();
  readonly #clients = new Map<string, ClientRecord>();
  #digest = new MapDigest();
  readonly #clientTableSize: number;

  /** `clientTableSize` bounds the exactly-once table. */
  constructor(clientTableSize = DEFAULT_CLIENT_TABLE_SIZE) {
    this.#clientTableSize = clientTableSize;
  }

  /** Number of keys. */
  get size(): number {
    return this.#map.size;
  }

  /** Hash of the map's contents (see {@link MapDigest}). */
  digest(): string {
    return this.#digest.toString();
  }

  /** The whole state (map and client table), JSON-compatible, for snapshots. */
  snapshot(): KvSnapshot {
    return {
      map: [...this.#map],
      clients: [...this.#clients].map(([client, r]) => [client, r.seq, r.result]),
    };
  }

  /** Replaces the whole state with a {@link snapshot}. Throws on a malformed one. */
  restore(state: unknown): void {
    const snap = state as KvSnapshot;
    if (!snap || !Array.isArray(snap.map) || !Array.isArray(snap.clients)) {
      throw new TypeError("malformed KV snapshot");
    }
    this.#map.clear();
    this.#clients.clear();
    this.#digest = new MapDigest();
    for (const [key, value] of snap.map) {
      if (typeof key !== "string" || typeof value !== "string") {
        throw new TypeError("malformed KV snapshot entry");
      }
      this.#map.set(key, value);
      this.#digest.add(key, value);
    }
    for (const [client, seq, result] of snap.clients) this.#clients.set(client, { seq, result });
  }

  /** Why `state` could not be {@link restore}d, or null when it can (a dry run). */
  checkState(state: unknown): string | null {
    try {
      new KvStore(this.#clientTableSize).restore(state);
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Reads a key without going through the order (for tests and tools only). */
  peek(key: string): string | undefined {
    return this.#map.get(key);
  }

  /** Applies one delivered command. */
  apply(cmd: Command): OpResult {
    const { op, tag } = cmd;
    if (op.kind === "get") return { kind: "value", value: this.#map.get(op.key) ?? null };
    if (op.kind === "has") return { kind: "int", value: this.#map.has(op.key) ? 1 : 0 };
    if (tag) {
      const seen = this.#clients.get(tag.client);
      if (seen && tag.seq <= seen.seq) return seen.result;
    }
    const result = this.#write(cmd);
    if (tag) this.#remember(tag.client, { seq: tag.seq, result });
    return result;
  }

  #write({ op }: Command): OpResult {
    const old = this.#map.get(op.key);
    if (op.kind === "put") {
      if (old !== undefined) this.#digest.remove(op.key, old);
      this.#map.set(op.key, op.value);
      this.#digest.add(op.key, op.value);
      return { kind: "ok" };
    }
    if (old === undefined) return { kind: "int", value: 0 };
    this.#digest.remove(op.key, old);
    this.#map.delete(op.key);
    return { kind: "int", value: 1 };
  }

  #remember(client: string, record: ClientRecord): void {
    this.#clients.delete(client); // re-insert: Map order is recency order
    this.#clients.set(client, record);
    if (this.#clients.size > this.#clientTableSize) {
      const oldest = this.#clients.keys().next().value;
      if (oldest !== undefined) this.#clients.delete(oldest);
    }
  }
}
