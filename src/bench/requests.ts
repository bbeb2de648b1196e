/**
 * Pre-encoded benchmark requests. Keys are fixed-width (a prefix such as `key:` and a zero-padded
 * index, e.g. `key:0042` for a 10,000-key space), so every request of one operation (a row of
 * {@link OPS}) has the same length and is the same bytes as every other but for the key digits:
 * a request is written into a batch buffer by copying the operation's template and patching the
 * digits of each key in place. The bytes are exactly those of `encodeCommand` of each of the
 * operation's commands, one after the other (e.g. `encodeCommand(["SET", key, value])`).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { encodeCommand } from "../net/resp.ts";
import { type ArgTemplate, KEY_SPACE_PREFIX, opCode, OPS } from "./ops.ts";

/** Prefix of every benchmark key written by SET and read by GET. */
export const KEY_PREFIX = KEY_SPACE_PREFIX.key;

/** The value every PUT writes: `size` bytes of printable ASCII (`a`..`z` cycling). */
export function benchValue(size: number): ByteString {
  return "abcdefghijklmnopqrstuvwxyz".repeat(Math.ceil(size / 26)).slice(0, size);
}

const PUT = opCode("put");
const GET = opCode("get");

/** A compiled operation: its bytes and where each key's digits go. */
interface Template {
  bytes: Uint8Array;
  /** Offsets of the first digit of each key in `bytes`. */
  digitsAt: Int32Array;
  /** Key slot of each entry of `digitsAt`. */
  slotOf: Uint8Array;
}

/**
 * Builds the requests of every operation of {@link OPS} for key indexes `0..keys-1` into
 * caller-provided buffers.
 */
export class RequestEncoder {
  /** Size of the key space (of each key space). */
  readonly keys: number;
  /** Digits of a key index. */
  readonly keyWidth: number;
  /** Bytes of one encoded `SET`. */
  readonly putBytes: number;
  /** Bytes of one encoded `GET`. */
  readonly getBytes: number;
  /** Bytes of one request of each operation, by operation code. */
  readonly opBytes: Int32Array;
  readonly #templates: Template[];
  readonly #one = new Float64Array(1);
  readonly #value: ByteString;

  /**
   * Templates for a key space of `keys` keys and values of `valueSize` bytes.
   * @param keys number of distinct keys (at least 1)
   * @param valueSize bytes per written value
   */
  constructor(keys: number, valueSize: number) {
    if (!Number.isSafeInteger(keys) || keys < 1) throw new RangeError(`bad key count ${keys}`);
    this.keys = keys;
    this.keyWidth = String(keys - 1).length;
    this.#value = benchValue(valueSize);
    this.#templates = OPS.map((kind) => this.#compile(kind.commands, this.#value));
    this.opBytes = Int32Array.from(this.#templates, (t) => t.bytes.length);
    this.putBytes = this.opBytes[PUT];
    this.getBytes = this.opBytes[GET];
  }

  /** The key with index `index` (0-based) of the `key` space, e.g. `key:0042`. */
  keyName(index: number, prefix: string = KEY_PREFIX): ByteString {
    return prefix + String(index).padStart(this.keyWidth, "0");
  }

  /**
   * The commands one request of operation `code` sends, with key slot `s` at index `keys[s]`
   * (what {@link RequestEncoder.writeOp} writes, as argument vectors; not for the hot path).
   */
  commandsOf(code: number, keys: ArrayLike<number>): ByteString[][] {
    const value = this.#value;
    return OPS[code].commands.map((command) =>
      command.map((arg) =>
        typeof arg === "string"
          ? arg
          : "value" in arg
          ? value
          : this.keyName(keys[arg.key], KEY_SPACE_PREFIX[arg.space])
      )
    );
  }

  /**
   * Writes one request of operation `code` (an index into {@link OPS}) into `out` at `offset`,
   * key slot `s` getting key index `keys[s]`; returns the offset after it.
   */
  writeOp(out: Uint8Array, offset: number, code: number, keys: ArrayLike<number>): number {
    const t = this.#templates[code];
    out.set(t.bytes, offset);
    const at = t.digitsAt;
    for (let i = 0; i < at.length; i++) this.#digits(out, offset + at[i], keys[t.slotOf[i]]);
    return offset + t.bytes.length;
  }

  /** Writes `SET <key index> <value>` into `out` at `offset`; returns the offset after it. */
  writePut(out: Uint8Array, offset: number, index: number): number {
    this.#one[0] = index;
    return this.writeOp(out, offset, PUT, this.#one);
  }

  /** Writes `GET <key index>` into `out` at `offset`; returns the offset after it. */
  writeGet(out: Uint8Array, offset: number, index: number): number {
    this.#one[0] = index;
    return this.writeOp(out, offset, GET, this.#one);
  }

  /** Encodes `commands` with every key at index 0, noting where each key's digits are. */
  #compile(commands: readonly (readonly ArgTemplate[])[], value: ByteString): Template {
    const parts: Uint8Array[] = [];
    const digitsAt: number[] = [];
    const slotOf: number[] = [];
    let base = 0;
    for (const command of commands) {
      const argv: ByteString[] = [];
      // Walk the encoding as encodeCommand lays it out: "*<n>\r\n", then "$<len>\r\n<arg>\r\n".
      let at = base + `*${command.length}\r\n`.length;
      for (const arg of command) {
        let text: ByteString;
        if (typeof arg === "string") text = arg;
        else if ("value" in arg) text = value;
        else {
          const prefix = KEY_SPACE_PREFIX[arg.space];
          text = this.keyName(0, prefix);
          digitsAt.push(at + `$${text.length}\r\n`.length + prefix.length);
          slotOf.push(arg.key);
        }
        argv.push(text);
        at += `$${text.length}\r\n`.length + text.length + 2;
      }
      const encoded = encodeCommand(argv);
      if (base + encoded.length !== at) throw new Error("request template layout mismatch");
      parts.push(encoded);
      base = at;
    }
    const bytes = new Uint8Array(base);
    let offset = 0;
    for (const p of parts) {
      bytes.set(p, offset);
      offset += p.length;
    }
    return { bytes, digitsAt: Int32Array.from(digitsAt), slotOf: Uint8Array.from(slotOf) };
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
