/**
 * How the clients show replies, as `redis-cli` does: {@link formatReply} for a person at a
 * terminal (`OK`, `"value"`, `(integer) 5`, `(nil)`, `(error) ERR ...`, numbered nested arrays)
 * and {@link formatReplyRaw} for scripts (redis-cli's output when it is not a terminal: raw
 * bytes, one array element per line). Both take replies with simple strings tagged
 * ({@link TaggedRespValue}), since redis-cli prints `+OK` as `OK` but the bulk string "OK" as
 * `"OK"`.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { utf8ToByteString } from "../kv/bytes.ts";
import { RespError, RespStatus, type TaggedRespValue } from "../net/resp.ts";

/**
 * A reply as `redis-cli` shows it in a terminal, without the final newline: simple strings as
 * they are, bulk strings quoted with {@link quoteByteString}, `(integer) n`, `(nil)`,
 * `(error) <message>`, `(empty array)`, and arrays as numbered lines (`1) ...`), nested arrays
 * indented under their number the way redis-cli indents them.
 */
export function formatReply(reply: TaggedRespValue): string {
  return formatTty(reply, "").slice(0, -1);
}

/** redis-cli's `cliFormatReplyTTY`: every line ends with a newline. */
function formatTty(reply: TaggedRespValue, prefix: string): string {
  if (reply === null) return "(nil)\n";
  if (typeof reply === "number") return `(integer) ${reply}\n`;
  if (typeof reply === "string") return quoteByteString(reply) + "\n";
  if (reply instanceof RespStatus) return reply.text + "\n";
  if (reply instanceof RespError) return `(error) ${reply.message}\n`;
  if (reply.length === 0) return "(empty array)\n";
  // Numbers are right-aligned to the widest; nested arrays are indented past the number.
  const width = String(reply.length).length;
  const nested = prefix + " ".repeat(width + 2);
  let out = "";
  reply.forEach((element, i) => {
    // The first element goes on the line where the caller already wrote this array's number.
    out += (i === 0 ? "" : prefix) + String(i + 1).padStart(width) + ") ";
    out += formatTty(element, nested);
  });
  return out;
}

/**
 * A reply as `redis-cli` prints it when its output is not a terminal, as bytes and without the
 * final newline: bulk and simple strings as their raw bytes, integers as digits, nil as nothing,
 * array elements one per line (nested arrays flattened, an empty array as nothing), and an
 * error as its message followed by a newline (so an error inside an array is followed by an
 * empty line, as in redis-cli).
 */
export function formatReplyRaw(reply: TaggedRespValue): ByteString {
  if (reply === null) return "";
  if (typeof reply === "number") return String(reply);
  if (typeof reply === "string") return reply;
  if (reply instanceof RespStatus) return utf8ToByteString(reply.text);
  if (reply instanceof RespError) return utf8ToByteString(reply.message) + "\n";
  return reply.map(formatReplyRaw).join("\n");
}

const ESCAPES: Record<number, string> = {
  0x5c: "\\\\",
  0x22: '\\"',
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x07: "\\a",
  0x08: "\\b",
};

/**
 * Quotes a byte string for display the way `redis-cli` does (`"a\x00b"`), except that valid
 * UTF-8 sequences are shown as the characters they encode. Control bytes, DEL, C1 controls and
 * bytes that are not valid UTF-8 are shown as `\xHH`; `"` and `\` are escaped. Typing the result
 * back into the REPL gives the original bytes.
 */
export function quoteByteString(s: ByteString): string {
  let out = '"';
  let i = 0;
  while (i < s.length) {
    const b = s.charCodeAt(i);
    if (b < 0x80) {
      const escape = ESCAPES[b];
      if (escape !== undefined) out += escape;
      else if (b < 0x20 || b === 0x7f) out += hexByte(b);
      else out += s[i];
      i++;
      continue;
    }
    const length = utf8SequenceLength(s, i);
    const cp = length === 0 ? -1 : decodeUtf8At(s, i, length);
    // Invalid bytes, C1 controls and invisible separators are escaped byte by byte.
    if (cp < 0xa0 || cp === 0x2028 || cp === 0x2029 || cp === 0xfeff) {
      for (let k = 0; k < Math.max(length, 1); k++) out += hexByte(s.charCodeAt(i + k));
    } else {
      out += String.fromCodePoint(cp);
    }
    i += Math.max(length, 1);
  }
  return out + '"';
}

function hexByte(b: number): string {
  return "\\x" + b.toString(16).padStart(2, "0");
}

/** Length of the valid (shortest-form, non-surrogate) UTF-8 sequence at `i`, or 0. */
function utf8SequenceLength(s: ByteString, i: number): number {
  const b0 = s.charCodeAt(i);
  let length: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, min] = [2, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, min] = [3, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (i + length > s.length) return 0;
  for (let k = 1; k < length; k++) {
    if ((s.charCodeAt(i + k) & 0xc0) !== 0x80) return 0;
  }
  const cp = decodeUtf8At(s, i, length);
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return length;
}

function decodeUtf8At(s: ByteString, i: number, length: number): number {
  const b0 = s.charCodeAt(i);
  let cp = length === 2 ? b0 & 0x1f : length === 3 ? b0 & 0x0f : b0 & 0x07;
  for (let k = 1; k < length; k++) cp = (cp << 6) | (s.charCodeAt(i + k) & 0x3f);
  return cp;
}
