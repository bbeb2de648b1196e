/**
 * A cheap incremental RESP2 reply scanner for the load generator: it finds where each complete
 * reply ends without building values. Bulk payloads are skipped by length (never copied or
 * decoded, and a payload may contain `\r\n`); only error replies are decoded, to count them and
 * keep their text.
 *
 * It understands the replies the benchmark's operations can get: `+...` (e.g. `+OK`,
 * `+QUEUED`), `-...` (errors such as `-ERR`, `-NOQUORUM`, `-UNKNOWN`), `:<n>`, `$<n>` + payload,
 * `$-1`, and, when the counter is built to expect them ({@link ReplyCounterOptions.maxDepth}),
 * arrays `*<n>` (e.g. the reply of `EXEC`) and `*-1`. An array is one reply, an error when any
 * element (at any depth) is an error. Anything else (an array not expected or nested too deep, a
 * malformed length, an over-long line) is a protocol error: the connection cannot be read any
 * further.
 *
 * @module
 */

/**
 * What a complete reply was: `"ok"` (a simple string, integer, bulk string or array without
 * errors), `"nil"` (a null bulk string or null array: GET of a missing key) or `"error"` (an
 * error reply or an array with an error in it; the error's text is passed along).
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

/** What a {@link ReplyCounter} accepts. */
export interface ReplyCounterOptions {
  /**
   * How deeply arrays may nest: 0 (the default) accepts no array, 1 an array of plain replies
   * (such as `EXEC`'s), and so on (at most {@link MAX_REPLY_DEPTH}).
   */
  maxDepth?: number;
}

/** Deepest array nesting a {@link ReplyCounter} can be built to accept. */
export const MAX_REPLY_DEPTH = 32;

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
  readonly #maxDepth: number;
  /** Open arrays: elements still to come at each depth (`#remaining[0]`: the outermost). */
  readonly #remaining: Int32Array;
  #depth = 0;
  /** The first error inside the open top-level array, if any. */
  #arrayError: string | undefined = undefined;
  /** Replies completed by the current {@link ReplyCounter.feed}. */
  #completed = 0;

  /** A counter; see {@link ReplyCounterOptions}. */
  constructor(options: ReplyCounterOptions = {}) {
    const depth = options.maxDepth ?? 0;
    if (!Number.isInteger(depth) || depth < 0 || depth > MAX_REPLY_DEPTH) {
      throw new RangeError(`maxDepth must be 0..${MAX_REPLY_DEPTH}, got ${depth}`);
    }
    this.#maxDepth = depth;
    this.#remaining = new Int32Array(Math.max(depth, 1));
  }

  /**
   * Scans `chunk` (not kept) and calls `onReply` for every reply it completes.
   *
   * @throws {ReplyStreamError} on a malformed or unexpected reply (and on every later call).
   * @returns the number of replies completed
   */
  feed(chunk: Uint8Array, onReply: ReplyHandler): number {
    if (this.#failed) throw this.#failed;
    this.#completed = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, n - i);
        this.#skip -= take;
        i += take;
        if (this.#skip === 0) this.#element("ok", undefined, onReply);
        continue;
      }
      // A line: find its LF.
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        this.#keep(chunk, i, n);
        return this.#completed;
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
      this.#line(line, line === chunk ? i : 0, end, onReply);
      i = lf + 1;
    }
    return this.#completed;
  }

  /**
   * A reply or array element is complete: reported when at the top level, else it counts
   * towards its array (which may complete the array, and so on outwards).
   */
  #element(kind: ReplyKind, error: string | undefined, onReply: ReplyHandler): void {
    if (this.#depth === 0) {
      onReply(kind, error);
      this.#completed++;
      return;
    }
    if (kind === "error" && this.#arrayError === undefined) this.#arrayError = error ?? "";
    while (--this.#remaining[this.#depth - 1] === 0) {
      if (--this.#depth === 0) {
        const arrayError = this.#arrayError;
        this.#arrayError = undefined;
        if (arrayError === undefined) onReply("ok");
        else onReply("error", arrayError);
        this.#completed++;
        return;
      }
    }
  }

  /** Handles one line `line[from, lfAt)` (the LF at `lfAt`); a bulk payload may follow. */
  #line(line: Uint8Array, from: number, lfAt: number, onReply: ReplyHandler): void {
    if (lfAt - 1 < from || line[lfAt - 1] !== CR) this.#fail("line not ended by CRLF");
    const to = lfAt - 1; // CR
    const type = line[from];
    switch (type) {
      case 0x2b: // +
      case 0x3a: // :
        return this.#element("ok", undefined, onReply);
      case 0x2d: // -
        return this.#element("error", decoder.decode(line.subarray(from + 1, to)), onReply);
      case 0x24: { // $
        if (this.#isMinusOne(line, from, to)) return this.#element("nil", undefined, onReply);
        this.#skip = this.#length(line, from, to, "bulk", 11) + 2;
        return;
      }
      case 0x2a: { // *
        if (this.#maxDepth === 0) this.#fail("unexpected array reply");
        // A null or empty array is complete at once, at any depth.
        if (this.#isMinusOne(line, from, to)) return this.#element("nil", undefined, onReply);
        const n = this.#length(line, from, to, "array", 9);
        if (n === 0) return this.#element("ok", undefined, onReply);
        if (this.#depth >= this.#maxDepth) this.#fail("arrays nested deeper than expected");
        this.#remaining[this.#depth++] = n;
        return;
      }
      default:
        this.#fail(`unexpected reply type byte 0x${(type ?? 0).toString(16).padStart(2, "0")}`);
    }
  }

  /** True when the header `line[from, to)` is `$-1` or `*-1`. */
  #isMinusOne(line: Uint8Array, from: number, to: number): boolean {
    return to - from === 3 && line[from + 1] === 0x2d && line[from + 2] === 0x31;
  }

  /** The decimal length (at most `digits` digits) of the header `line[from, to)`. */
  #length(line: Uint8Array, from: number, to: number, what: string, digits: number): number {
    if (to - from < 2 || to - from > digits + 1) this.#fail(`invalid ${what} length`);
    let len = 0;
    for (let k = from + 1; k < to; k++) {
      const c = line[k];
      if (c < 0x30 || c > 0x39) this.#fail(`invalid ${what} length`);
      len = len * 10 + (c - 0x30);
    }
    return len;
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
