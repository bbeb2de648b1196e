/**
 * Length-prefixed frames for peer connections: a 4-byte big-endian unsigned payload length, then
 * the payload. {@link FrameDecoder} reassembles frames from a byte stream split at arbitrary
 * points and refuses a declared length above its limit as soon as the 4 length bytes arrive,
 * without waiting for (or buffering) the payload.
 *
 * @module
 */

import { ByteQueue } from "./byte_queue.ts";
import { MAX_FRAME_BYTES } from "../limits.ts";

/** The largest payload a frame may carry by default: 64 MiB (from `src/limits.ts`). */
export { MAX_FRAME_BYTES };

/** Size of the length prefix in bytes. */
export const FRAME_HEADER_BYTES = 4;

/** A frame that breaks the framing rules (too large). The connection should be closed. */
export class FrameError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * Prefixes `payload` with its length.
 *
 * @throws {FrameError} if `payload` is larger than {@link MAX_FRAME_BYTES}, since no default
 * decoder would accept it.
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_BYTES) {
    throw new FrameError(
      `frame payload of ${payload.length} bytes exceeds the limit of ${MAX_FRAME_BYTES} bytes`,
    );
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Incremental frame decoder: {@link FrameDecoder.push} bytes as they arrive, then call
 * {@link FrameDecoder.next} until it returns null. Chunks may split frames anywhere and may hold
 * many frames; zero-length frames are allowed.
 *
 * Once a frame declares a length above the limit the decoder is broken: it drops its buffer,
 * ignores further input, and every `next()` throws the same {@link FrameError}.
 */
export class FrameDecoder {
  #max: number;
  readonly #q = new ByteQueue();
  #error: FrameError | null = null;

  /** Creates a decoder that refuses payloads longer than `maxFrameBytes`. */
  constructor(maxFrameBytes: number = MAX_FRAME_BYTES) {
    this.#max = checkedLimit(maxFrameBytes);
  }

  /**
   * The limit for the frames not yet returned by {@link FrameDecoder.next} (e.g. raised once a
   * peer's hello was accepted). The frame at the head is checked against it on the next `push`
   * or `next`.
   */
  set maxFrameBytes(maxFrameBytes: number) {
    this.#max = checkedLimit(maxFrameBytes);
  }

  /** Number of bytes received but not yet returned as part of a frame (0 after a FrameError). */
  get buffered(): number {
    return this.#q.available;
  }

  /** Appends received bytes. The chunk is copied; the caller may reuse it. Never throws. */
  push(chunk: Uint8Array): void {
    if (this.#error !== null) return;
    this.#q.append(chunk);
    this.#checkHeader();
  }

  /**
   * The next complete payload (a fresh copy), or null when more bytes are needed.
   *
   * @throws {FrameError} when the next frame declares a length above the limit.
   */
  next(): Uint8Array | null {
    this.#checkHeader();
    if (this.#error !== null) throw this.#error;
    const q = this.#q;
    if (q.available < FRAME_HEADER_BYTES) return null;
    const length = this.#readLength();
    if (q.available < FRAME_HEADER_BYTES + length) return null;
    const from = q.start + FRAME_HEADER_BYTES;
    const payload = q.buf.slice(from, from + length);
    q.start = from + length;
    q.resetIfEmpty();
    return payload;
  }

  #readLength(): number {
    const b = this.#q.buf;
    const i = this.#q.start;
    return ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
  }

  /** Breaks the decoder if the frame at the head declares an oversized length. */
  #checkHeader(): void {
    if (this.#error !== null || this.#q.available < FRAME_HEADER_BYTES) return;
    const length = this.#readLength();
    if (length > this.#max) {
      this.#error = new FrameError(
        `frame declares ${length} bytes, more than the limit of ${this.#max} bytes`,
      );
      this.#q.release();
    }
  }
}

function checkedLimit(maxFrameBytes: number): number {
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > 0xffffffff) {
    throw new RangeError(`invalid maxFrameBytes: ${maxFrameBytes}`);
  }
  return maxFrameBytes;
}
