/**
 * The buffer a connection's read loop reads into: small while the connection is idle or sends
 * little, large while reads fill it. Thousands of idle connections then hold a small buffer each,
 * not a large one, and a busy connection still reads in large chunks.
 *
 * @module
 */

/** Picks the buffer of each read (see the module doc). */
export class ReadBuffer {
  readonly #idleBytes: number;
  readonly #busyBytes: number;
  #buf: Uint8Array;

  /**
   * @param idleBytes size while reads return fewer bytes than this
   * @param busyBytes size after a read filled the buffer
   */
  constructor(idleBytes: number, busyBytes: number) {
    this.#idleBytes = Math.min(idleBytes, busyBytes);
    this.#busyBytes = busyBytes;
    this.#buf = new Uint8Array(this.#idleBytes);
  }

  /** The buffer to read into next. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /**
   * The `n` bytes the last read put in {@link ReadBuffer.buffer} (valid until the next read), and
   * picks the buffer of the next read: the large one after a full read, the small one after a
   * short read.
   */
  filled(n: number): Uint8Array {
    const data = this.#buf.subarray(0, n);
    if (n === this.#buf.length && this.#buf.length < this.#busyBytes) {
      this.#buf = new Uint8Array(this.#busyBytes);
    } else if (n < this.#idleBytes && this.#buf.length > this.#idleBytes) {
      this.#buf = new Uint8Array(this.#idleBytes);
    }
    return data;
  }
}
