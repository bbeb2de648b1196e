/**
 * One encoded copy of a large bulk reply, shared by every connection that sends it. Pipelined
 * reads of a large value (`GET big` a thousand times, on hundreds of connections) would otherwise
 * encode a fresh copy per reply: memory and CPU grow with the number of replies in flight instead
 * of the number of distinct values. The encoded bytes are never written to after encoding (the
 * connection writers only read them), so sharing them is safe.
 *
 * The cache holds the most recently encoded large values up to a byte budget (least recently used
 * first out); a dropped entry lives on for as long as some connection still has it queued.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import type { Reply } from "../core/types.ts";
import { encodeBulk, encodeReply } from "./resp.ts";
import { SHARED_BULK_CACHE_BYTES, SHARED_BULK_MIN_BYTES } from "../limits.ts";

/** Encodes replies, sharing the bytes of large bulk strings (see the module doc). */
export class SharedBulks {
  readonly #minBytes: number;
  readonly #budget: number;
  /** Value → its encoding, in least-recently-used order (Map keeps insertion order). */
  readonly #cache = new Map<ByteString, Uint8Array>();
  #bytes = 0;

  /**
   * @param minBytes bulk strings of at least this many bytes are shared
   * @param budget most encoded bytes kept in the cache
   */
  constructor(minBytes = SHARED_BULK_MIN_BYTES, budget = SHARED_BULK_CACHE_BYTES) {
    this.#minBytes = minBytes;
    this.#budget = budget;
  }

  /** Encoded bytes held by the cache (for tests and diagnostics). */
  get cachedBytes(): number {
    return this.#bytes;
  }

  /** The RESP2 bytes of `reply` (as `encodeReply`), large bulk strings shared. */
  encode(reply: Reply): Uint8Array {
    return encodeReply(reply, (s) => this.bulk(s));
  }

  /** The RESP2 bulk string of `s`; the same bytes for equal large values. */
  bulk(s: ByteString | null): Uint8Array {
    if (s === null || s.length < this.#minBytes) return encodeBulk(s);
    const hit = this.#cache.get(s);
    if (hit !== undefined) {
      this.#cache.delete(s);
      this.#cache.set(s, hit);
      return hit;
    }
    const bytes = encodeBulk(s);
    if (bytes.length > this.#budget) return bytes;
    this.#cache.set(s, bytes);
    this.#bytes += bytes.length;
    for (const [key, old] of this.#cache) {
      if (this.#bytes <= this.#budget) break;
      this.#cache.delete(key);
      this.#bytes -= old.length;
    }
    return bytes;
  }
}
