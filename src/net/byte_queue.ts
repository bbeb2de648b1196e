/**
 * A growable byte queue for incremental decoders (RESP requests and replies, peer frames): bytes
 * are appended at the end and consumed from the front by advancing `start`.
 *
 * @module
 */

/** Smallest capacity a queue grows to when bytes first arrive. */
const INITIAL_BUFFER_BYTES = 1024;
/** An emptied queue larger than this drops its buffer (an idle connection holds none). */
const KEEP_EMPTY_BYTES = 4 * 1024;
/** No buffer yet: a queue allocates on its first append. */
const NO_BYTES = new Uint8Array(0);

/**
 * A growable byte queue: bytes are appended at the end and consumed from the front. The buffer is
 * allocated on the first append and dropped when the queue empties while large, so thousands of
 * idle connections hold no buffer; it grows by half its size (at least the bytes appended), so a
 * large request being received holds at most about 1.5 times its size.
 */
export class ByteQueue {
  buf: Uint8Array = NO_BYTES;
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

  /** Bytes of the buffer (allocated, used or not). */
  get capacity(): number {
    return this.buf.length;
  }

  /** Call when the consumer has taken everything: rewinds, and drops a big buffer. */
  resetIfEmpty(): void {
    if (this.start !== this.end) return;
    this.start = 0;
    this.end = 0;
    if (this.buf.length > KEEP_EMPTY_BYTES) this.buf = NO_BYTES;
  }

  /** Drops the buffer (nothing more will be read). */
  release(): void {
    this.buf = NO_BYTES;
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
      const grown = new Uint8Array(
        Math.max(need, this.buf.length + (this.buf.length >>> 1), INITIAL_BUFFER_BYTES),
      );
      grown.set(this.buf.subarray(this.start, this.end));
      this.buf = grown;
    }
    this.start = 0;
    this.end = live;
  }
}
