/**
 * Large peer messages as `part` frames: {@link splitParts} cuts the payload of a `msgs` frame that
 * is larger than a part into consecutive part frames, and {@link PartAssembler} puts them back
 * together on the receiving side, refusing anything that is not exactly that.
 *
 * A link is one FIFO connection and a sender writes the parts of one payload back to back, so a
 * receiver has at most one payload in progress: a part out of order, a changed total, a missing
 * or early final flag, a declared total above the bound, or any other frame between the parts is
 * refused ({@link CodecError}), and the connection is closed like for any other bad input. A
 * declared total above the bound is refused on the first part, before anything is buffered; the
 * assembler never holds more than the bytes actually received, at most the bound.
 *
 * @module
 */
import { CodecError, type PartFrame } from "./peer_codec.ts";
import { concatBytes } from "../kv/bytes.ts";
import { MAX_PEER_MESSAGE_BYTES, PEER_PART_BYTES } from "../limits.ts";

/**
 * The part frames of `payload`, in order, each with at most `partBytes` bytes of data (views of
 * `payload`, not copies). Yields them lazily: a sender encodes each one when it is its turn.
 *
 * @throws {RangeError} for an empty payload or a part size below 1.
 */
export function* splitParts(
  payload: Uint8Array,
  partBytes: number = PEER_PART_BYTES,
): Generator<PartFrame> {
  if (!Number.isSafeInteger(partBytes) || partBytes < 1) {
    throw new RangeError(`invalid part size ${partBytes}`);
  }
  if (payload.length === 0) throw new RangeError("an empty payload has no parts");
  const total = payload.length;
  for (let seq = 0, at = 0; at < total; seq++, at += partBytes) {
    const end = Math.min(at + partBytes, total);
    yield { kind: "part", seq, total, final: end === total, data: payload.subarray(at, end) };
  }
}

/** Reassembles the part frames of one connection, one payload at a time. */
export class PartAssembler {
  readonly #max: number;
  #chunks: Uint8Array[] = [];
  #received = 0;
  /** Total of the payload in progress, or 0 when none is. */
  #total = 0;
  #nextSeq = 0;

  /** An assembler that refuses payloads declared larger than `maxBytes` (default 480 MiB). */
  constructor(maxBytes: number = MAX_PEER_MESSAGE_BYTES) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new RangeError(`invalid maxBytes: ${maxBytes}`);
    }
    this.#max = maxBytes;
  }

  /** True while some parts of a payload were received but not its final one. */
  get inProgress(): boolean {
    return this.#total !== 0;
  }

  /** Bytes of the payload in progress received so far. */
  get buffered(): number {
    return this.#received;
  }

  /**
   * Takes the next part: returns the whole payload after its final part, else null.
   *
   * @throws {CodecError} when the part does not continue the payload in progress exactly (or
   * does not start a new one at seq 0), or declares a total above the bound. The assembler then
   * drops what it held; the connection should be closed.
   */
  push(part: PartFrame): Uint8Array | null {
    try {
      return this.#push(part);
    } catch (err) {
      this.#reset();
      throw err;
    }
  }

  #push({ seq, total, final, data }: PartFrame): Uint8Array | null {
    if (data.length === 0) throw new CodecError("part frame: empty data");
    if (this.#total === 0) {
      if (seq !== 0) throw new CodecError(`part ${seq} without a part 0 before it`);
      if (total > this.#max) {
        throw new CodecError(
          `part frame declares a message of ${total} bytes, more than the limit of ${this.#max}`,
        );
      }
      this.#total = total;
    } else {
      if (seq !== this.#nextSeq) {
        throw new CodecError(`part ${seq} where part ${this.#nextSeq} was expected`);
      }
      if (total !== this.#total) {
        throw new CodecError(
          `part ${seq} declares a total of ${total}, its first part ${this.#total}`,
        );
      }
    }
    const received = this.#received + data.length;
    if (received > this.#total) {
      throw new CodecError(`part ${seq} brings ${received} bytes, more than the total of ${total}`);
    }
    if (final !== (received === this.#total)) {
      throw new CodecError(
        final
          ? `part ${seq} is marked final after ${received} of ${total} bytes`
          : `part ${seq} completes the ${total} bytes but is not marked final`,
      );
    }
    this.#chunks.push(data);
    this.#received = received;
    this.#nextSeq = seq + 1;
    if (!final) return null;
    const whole = this.#chunks.length === 1 ? this.#chunks[0] : concatBytes(this.#chunks);
    this.#reset();
    return whole;
  }

  #reset(): void {
    this.#chunks = [];
    this.#received = 0;
    this.#total = 0;
    this.#nextSeq = 0;
  }
}
