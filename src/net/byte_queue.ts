/**
 * A growable byte queue for incremental decoders (RESP requests and replies, peer frames): bytes
 * are appended at the end and consumed from the front by advancing `start`.
 *
 * @module
 */

/** Initial capacity of a queue. */
const INITIAL_BUFFER_BYTES = 16 * 1024;
/** An emptied queue larger than this is replaced by a small one (frees big values). */
const SHRINK_ABOVE_BYTES = 256 * 1024;

/** A growable byte queue: bytes are appended at the end and consumed from the front. */
export class ByteQueue {
  buf: Uint8Array = new Uint8Array(INITIAL_BUFFER_BYTES);
  start = 0;
  end = 0;

  /** Bytes appended and not yet consumed (`buf[start, end)`). */
  get available(): number {
    return this.end - this.start;
  }

  /** Appends a copy of `chunk`. */
  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) this.#makeRoom(chunk.length);
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Call when the consumer has taken everything: rewinds, and drops a big buffer. */
  resetIfEmpty(): void {
    if (this.start !== this.end) return;
    this.start = 0;
    this.end = 0;
    if (this.buf.length > SHRINK_ABOVE_BYTES) this.buf = new Uint8Array(INITIAL_BUFFER_BYTES);
  }

  /** Drops the buffer (nothing more will be read). */
  release(): void {
    this.buf = new Uint8Array(0);
    this.start = 0;
    this.end = 0;
  }

  #makeRoom(extra: number): void {
    const live = this.end - this.start;
    const need = live + extra;
    if (need <= this.buf.length >>> 1) {
      // Plenty of room once the consumed prefix is dropped: slide the live bytes down.
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      const grown = new Uint8Array(Math.max(need, this.buf.length * 2, INITIAL_BUFFER_BYTES));
      grown.set(this.buf.subarray(this.start, this.end));
      this.buf = grown;
    }
    this.start = 0;
    this.end = live;
  }
}
