/**
 * Pre-encoded benchmark requests. Keys are fixed-width (`key:` and a zero-padded index, e.g.
 * `key:0042` for a 10,000-key space), so every `SET key value` has the same length and is the
 * same bytes as every other but for the digits: a request is written into a batch buffer by
 * copying a template and patching the digits in place. The bytes are exactly those of
 * `encodeCommand(["SET", key, value])` and `encodeCommand(["GET", key])`.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { encodeCommand } from "../net/resp.ts";

/** Prefix of every benchmark key. */
export const KEY_PREFIX = "key:";

/** The value every PUT writes: `size` bytes of printable ASCII (`a`..`z` cycling). */
export function benchValue(size: number): ByteString {
  return "abcdefghijklmnopqrstuvwxyz".repeat(Math.ceil(size / 26)).slice(0, size);
}

/** Builds PUT and GET requests for key indexes `0..keys-1` into caller-provided buffers. */
export class RequestEncoder {
  /** Size of the key space. */
  readonly keys: number;
  /** Digits of a key index. */
  readonly keyWidth: number;
  /** Bytes of one encoded `SET`. */
  readonly putBytes: number;
  /** Bytes of one encoded `GET`. */
  readonly getBytes: number;
  readonly #put: Uint8Array;
  readonly #get: Uint8Array;
  readonly #putDigitsAt: number;
  readonly #getDigitsAt: number;

  /**
   * Templates for a key space of `keys` keys and values of `valueSize` bytes.
   * @param keys number of distinct keys (at least 1)
   * @param valueSize bytes per PUT value
   */
  constructor(keys: number, valueSize: number) {
    if (!Number.isSafeInteger(keys) || keys < 1) throw new RangeError(`bad key count ${keys}`);
    this.keys = keys;
    this.keyWidth = String(keys - 1).length;
    const key0 = this.keyName(0);
    this.#put = encodeCommand(["SET", key0, benchValue(valueSize)]);
    this.#get = encodeCommand(["GET", key0]);
    this.putBytes = this.#put.length;
    this.getBytes = this.#get.length;
    // "*3\r\n$3\r\nSET\r\n$<len>\r\n" + "key:" then the digits; likewise "*2 ... GET".
    const keyHeader = `$${key0.length}\r\n`.length;
    this.#putDigitsAt = "*3\r\n$3\r\nSET\r\n".length + keyHeader + KEY_PREFIX.length;
    this.#getDigitsAt = "*2\r\n$3\r\nGET\r\n".length + keyHeader + KEY_PREFIX.length;
  }

  /** The key with index `index` (0-based), e.g. `key:0042`. */
  keyName(index: number): ByteString {
    return KEY_PREFIX + String(index).padStart(this.keyWidth, "0");
  }

  /** Writes `SET <key index> <value>` into `out` at `offset`; returns the offset after it. */
  writePut(out: Uint8Array, offset: number, index: number): number {
    out.set(this.#put, offset);
    this.#digits(out, offset + this.#putDigitsAt, index);
    return offset + this.putBytes;
  }

  /** Writes `GET <key index>` into `out` at `offset`; returns the offset after it. */
  writeGet(out: Uint8Array, offset: number, index: number): number {
    out.set(this.#get, offset);
    this.#digits(out, offset + this.#getDigitsAt, index);
    return offset + this.getBytes;
  }

  #digits(out: Uint8Array, at: number, index: number): void {
    if (!(index >= 0 && index < this.keys)) throw new RangeError(`key index ${index} out of range`);
    let n = index;
    for (let d = this.keyWidth - 1; d >= 0; d--) {
      out[at + d] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
  }
}
