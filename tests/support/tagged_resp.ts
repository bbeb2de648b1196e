/**
 * Replies with their exact RESP2 type, for differential tests: unlike `RespReplyParser` (which
 * gives a simple string and a bulk string the same JS type), a {@link TaggedReply} says which of
 * the five kinds the server sent, keeps integers as their decimal text (64-bit values survive),
 * and keeps error and simple-string lines as raw bytes (ByteStrings), so `+OK` vs `$2 OK`, or an
 * error line with different bytes, is a visible difference.
 *
 * {@link PipelineConnection} sends a batch of commands in one write and returns their replies in
 * order.
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import { bytesToByteString } from "../../src/kv/bytes.ts";
import { encodeCommand } from "../../src/net/resp.ts";

/** One RESP2 reply with its type. Strings are ByteStrings (one char per raw byte). */
export type TaggedReply =
  | { type: "simple"; value: ByteString }
  | { type: "error"; value: ByteString }
  | { type: "int"; value: string }
  | { type: "bulk"; value: ByteString | null }
  | { type: "array"; value: TaggedReply[] | null };

/** Escapes a ByteString for display: printable ASCII as is, the rest as `\xHH`, `\r`, `\n`. */
export function escapeBytes(s: ByteString): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) out += "\\\\";
    else if (c === 0x22) out += '\\"';
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x0a) out += "\\n";
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else out += `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** A one-line rendering: `+OK`, `-ERR x`, `:5`, `"bulk"`, `(nil)`, `[a, b]`, `(nil array)`. */
export function renderReply(r: TaggedReply): string {
  switch (r.type) {
    case "simple":
      return `+${escapeBytes(r.value)}`;
    case "error":
      return `-${escapeBytes(r.value)}`;
    case "int":
      return `:${r.value}`;
    case "bulk":
      return r.value === null ? "(nil)" : `"${escapeBytes(r.value)}"`;
    case "array":
      return r.value === null ? "(nil array)" : `[${r.value.map(renderReply).join(", ")}]`;
  }
}

/** A command line for display: each argument quoted and escaped. */
export function renderCommand(argv: readonly ByteString[]): string {
  return argv.map((a) => `"${escapeBytes(a)}"`).join(" ");
}

class Incomplete {}
const INCOMPLETE = new Incomplete();

/**
 * Incremental parser of RESP2 replies into {@link TaggedReply}s. Feed bytes with {@link push};
 * {@link next} returns a complete reply or undefined. Throws on malformed input.
 */
export class TaggedReplyParser {
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  /** Appends received bytes (copied). */
  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const size = Math.max(this.#buf.length, (live + chunk.length) * 2);
      const next = size > this.#buf.length ? new Uint8Array(size) : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** The next complete reply, or undefined when more bytes are needed. */
  next(): TaggedReply | undefined {
    const pos = { at: this.#start };
    const r = this.#parse(pos);
    if (r === INCOMPLETE) return undefined;
    this.#start = pos.at;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return r as TaggedReply;
  }

  #line(pos: { at: number }): ByteString | Incomplete {
    const buf = this.#buf;
    for (let i = pos.at; i + 1 < this.#end; i++) {
      if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
        const s = bytesToByteString(buf.subarray(pos.at, i));
        pos.at = i + 2;
        return s;
      }
    }
    return INCOMPLETE;
  }

  #parse(pos: { at: number }): TaggedReply | Incomplete {
    if (pos.at >= this.#end) return INCOMPLETE;
    const type = this.#buf[pos.at++];
    const line = this.#line(pos);
    if (line instanceof Incomplete) return INCOMPLETE;
    const text = line as string;
    switch (type) {
      case 0x2b: // +
        return { type: "simple", value: text };
      case 0x2d: // -
        return { type: "error", value: text };
      case 0x3a: // :
        if (!/^-?\d+$/.test(text)) throw new Error(`bad integer reply ${JSON.stringify(text)}`);
        return { type: "int", value: text };
      case 0x24: { // $
        const len = Number(text);
        if (!Number.isInteger(len) || len < -1) throw new Error(`bad bulk length ${text}`);
        if (len === -1) return { type: "bulk", value: null };
        if (pos.at + len + 2 > this.#end) return INCOMPLETE;
        const value = bytesToByteString(this.#buf.subarray(pos.at, pos.at + len));
        if (this.#buf[pos.at + len] !== 0x0d || this.#buf[pos.at + len + 1] !== 0x0a) {
          throw new Error(`bulk of ${len} bytes not followed by CRLF`);
        }
        pos.at += len + 2;
        return { type: "bulk", value };
      }
      case 0x2a: { // *
        const n = Number(text);
        if (!Number.isInteger(n) || n < -1) throw new Error(`bad array length ${text}`);
        if (n === -1) return { type: "array", value: null };
        const items: TaggedReply[] = [];
        for (let i = 0; i < n; i++) {
          const item = this.#parse(pos);
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item as TaggedReply);
        }
        return { type: "array", value: items };
      }
      default:
        throw new Error(`unexpected reply type byte 0x${type.toString(16)}`);
    }
  }
}

/**
 * A RESP connection for batches: {@link pipeline} writes every command of a batch in one write
 * and resolves with their replies in order. One batch at a time.
 */
export class PipelineConnection {
  /** The port connected to. */
  readonly port: number;
  readonly #conn: Deno.TcpConn;
  readonly #parser = new TaggedReplyParser();
  readonly #replies: TaggedReply[] = [];
  #wake: (() => void) | undefined;
  #ended: string | undefined;
  readonly #readLoop: Promise<void>;

  private constructor(conn: Deno.TcpConn, port: number) {
    this.#conn = conn;
    this.port = port;
    this.#readLoop = this.#read();
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<PipelineConnection> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new PipelineConnection(conn, port);
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#parser.push(buf.subarray(0, n));
        for (;;) {
          const r = this.#parser.next();
          if (r === undefined) break;
          this.#replies.push(r);
        }
        this.#wake?.();
      }
      this.#ended = "connection closed by the server";
    } catch (err) {
      this.#ended = `connection failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    this.#wake?.();
  }

  /** Sends `commands` in one write; resolves with one reply per command, in order. */
  async pipeline(commands: readonly ByteString[][], timeoutMs = 10_000): Promise<TaggedReply[]> {
    if (this.#replies.length > 0) throw new Error("unexpected replies before the batch");
    const parts = commands.map((c) => encodeCommand(c));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      bytes.set(p, off);
      off += p.length;
    }
    for (let w = 0; w < bytes.length;) w += await this.#conn.write(bytes.subarray(w));
    const deadline = performance.now() + timeoutMs;
    while (this.#replies.length < commands.length) {
      if (this.#ended !== undefined) {
        throw new Error(
          `port ${this.port}: ${this.#ended} after ${this.#replies.length} of ` +
            `${commands.length} replies`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `port ${this.port}: only ${this.#replies.length} of ${commands.length} replies ` +
            `within ${timeoutMs} ms`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#replies.splice(0, commands.length);
  }

  /** Closes the connection; resolves when the read loop has ended. Idempotent. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    await this.#readLoop;
  }
}
