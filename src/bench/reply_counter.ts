/**
 * A cheap incremental RESP2 reply scanner for the load generator: it finds where each complete
 * reply ends without building values. Bulk payloads are skipped by length (never copied or
 * decoded, and a payload may contain `\r\n`); only error replies are decoded, to count them and
 * keep their text.
 *
 * It understands the replies a SET or GET can get: `+...` (e.g. `+OK`), `-...` (errors such as
 * `-ERR`, `-NOQUORUM`, `-UNKNOWN`), `:<n>`, `$<n>` + payload and `$-1`. Anything else (arrays,
 * a malformed length, an over-long line) is a protocol error: the connection cannot be read any
 * further.
 *
 * @module
 */

/**
 * What a complete reply was: `"ok"` (a simple string, integer or bulk string), `"nil"` (a null
 * bulk string: GET of a missing key) or `"error"` (an error reply; its text is passed along).
 */
export type ReplyKind = "ok" | "nil" | "error";

/** Called once per complete reply, in order. `error` is the text after `-` for errors. */
export type ReplyHandler = (kind: ReplyKind, error?: string) => void;

/** Thrown by {@link ReplyCounter.feed} on a reply it cannot parse. */
export class ReplyStreamError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ReplyStreamError";
  }
}

/** Longest header or simple/error line kept while waiting for its end. */
const MAX_LINE_BYTES = 64 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const decoder = new TextDecoder();

/** Scans reply bytes and reports each complete reply. */
export class ReplyCounter {
  /** Bulk payload bytes (plus its CRLF) still to skip. */
  #skip = 0;
  /** Bytes of a line whose end has not arrived yet. */
  #partial: Uint8Array = new Uint8Array(0);
  #partialLength = 0;
  #failed: ReplyStreamError | null = null;

  /**
   * Scans `chunk` (not kept) and calls `onReply` for every reply it completes.
   *
   * @throws {ReplyStreamError} on a malformed or unexpected reply (and on every later call).
   * @returns the number of replies completed
   */
  feed(chunk: Uint8Array, onReply: ReplyHandler): number {
    if (this.#failed) throw this.#failed;
    let completed = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, n - i);
        this.#skip -= take;
        i += take;
        if (this.#skip === 0) {
          onReply("ok");
          completed++;
        }
        continue;
      }
      // A line: find its LF.
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        this.#keep(chunk, i, n);
        return completed;
      }
      let line: Uint8Array;
      let end: number; // index of the LF within `line`
      if (this.#partialLength > 0) {
        this.#keep(chunk, i, lf + 1);
        line = this.#partial;
        end = this.#partialLength - 1;
        this.#partialLength = 0;
      } else {
        line = chunk;
        end = lf;
      }
      if (this.#line(line, line === chunk ? i : 0, end, onReply)) completed++;
      i = lf + 1;
    }
    return completed;
  }

  /**
   * Handles one line `line[from, lfAt)` (the LF at `lfAt`). Returns true when it completed a
   * reply, false when a bulk payload follows.
   */
  #line(line: Uint8Array, from: number, lfAt: number, onReply: ReplyHandler): boolean {
    if (lfAt - 1 < from || line[lfAt - 1] !== CR) this.#fail("line not ended by CRLF");
    const to = lfAt - 1; // CR
    const type = line[from];
    switch (type) {
      case 0x2b: // +
      case 0x3a: // :
        onReply("ok");
        return true;
      case 0x2d: // -
        onReply("error", decoder.decode(line.subarray(from + 1, to)));
        return true;
      case 0x24: { // $
        if (to - from === 3 && line[from + 1] === 0x2d && line[from + 2] === 0x31) {
          onReply("nil");
          return true;
        }
        let len = 0;
        if (to - from < 2 || to - from > 12) this.#fail("invalid bulk length");
        for (let k = from + 1; k < to; k++) {
          const c = line[k];
          if (c < 0x30 || c > 0x39) this.#fail("invalid bulk length");
          len = len * 10 + (c - 0x30);
        }
        this.#skip = len + 2;
        return false;
      }
      default:
        return this.#fail(
          `unexpected reply type byte 0x${(type ?? 0).toString(16).padStart(2, "0")}`,
        );
    }
  }

  /** Appends `chunk[from, to)` to the partial line. */
  #keep(chunk: Uint8Array, from: number, to: number): void {
    const need = this.#partialLength + (to - from);
    if (need > MAX_LINE_BYTES) this.#fail(`reply line longer than ${MAX_LINE_BYTES} bytes`);
    if (need > this.#partial.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#partial.length, 64));
      grown.set(this.#partial.subarray(0, this.#partialLength));
      this.#partial = grown;
    }
    this.#partial.set(chunk.subarray(from, to), this.#partialLength);
    this.#partialLength = need;
  }

  #fail(message: string): never {
    this.#failed = new ReplyStreamError(`unexpected reply stream: ${message}`);
    throw this.#failed;
  }
}
