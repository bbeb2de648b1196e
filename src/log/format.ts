/**
 * Log records and their two line formats.
 *
 * Every record has a time, a level, the replica id, an event name (dotted, e.g. `view.installed`)
 * and a human message, plus fields of its own.
 *
 * - `text`: `<ISO-8601 time> <LEVEL> replica <id> <event>: <message> key=value ...` (line breaks in
 *   the message written as `\n`), a value
 *   quoted as JSON when it holds a space, quote, `=` or control character (or is empty), arrays
 *   of numbers or words joined by commas, an object's entries as `key.entry=value`.
 * - `json`: one JSON object per line: `time`, `level`, `id`, `event`, `msg`, then the fields.
 *
 * @module
 */

/** The levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];
/** The line formats. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A line format. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Fields of a record beyond the common ones. */
export type LogFields = Record<string, unknown>;

/** One log event. */
export interface LogRecord {
  /** Milliseconds since the epoch. */
  time: number;
  level: LogLevel;
  /** The replica that logs it. */
  id: number;
  /** The event's name, e.g. `peer.down`. */
  event: string;
  /** What happened, in words. */
  msg: string;
  fields: LogFields;
}

/** The event a replica logs once it listens (tests and tools wait for it). */
export const READY_EVENT = "node.ready";

/** Names the common keys of a JSON line hold; fields of the same names are dropped. */
const COMMON = new Set(["time", "level", "id", "event", "msg"]);

/** `record` as one line (without the newline) in `format`. */
export function formatRecord(record: LogRecord, format: LogFormat): string {
  return format === "json" ? jsonLine(record) : textLine(record);
}

function jsonLine(r: LogRecord): string {
  const out: Record<string, unknown> = {
    time: new Date(r.time).toISOString(),
    level: r.level,
    id: r.id,
    event: r.event,
    msg: r.msg,
  };
  for (const [k, v] of Object.entries(r.fields)) {
    if (!COMMON.has(k) && v !== undefined) out[k] = v;
  }
  return JSON.stringify(out);
}

function textLine(r: LogRecord): string {
  let line = `${new Date(r.time).toISOString()} ${r.level.toUpperCase().padEnd(5)} ` +
    `replica ${r.id} ${r.event}: ${oneLine(r.msg)}`;
  for (const [k, v] of Object.entries(r.fields)) {
    if (!COMMON.has(k)) line += textField(k, v);
  }
  return line;
}

/** `text` on one line: line breaks and tabs as `\n`, `\r`, `\t`. */
function oneLine(text: string): string {
  return text.replace(/[\n\r\t]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
}

/** ` key=value`, or for an object one ` key.sub=value` per entry (nothing for undefined). */
function textField(key: string, v: unknown, depth = 0): string {
  if (v === undefined) return "";
  if (v !== null && typeof v === "object" && !Array.isArray(v) && depth < 3) {
    return Object.entries(v).map(([k, x]) => textField(`${key}.${k}`, x, depth + 1)).join("");
  }
  return ` ${key}=${textValue(v)}`;
}

/** A field value as logfmt-style text. */
function textValue(v: unknown): string {
  if (Array.isArray(v) && v.every((x) => typeof x === "number" || /^[\w.:/@-]+$/.test(`${x}`))) {
    return v.length === 0 ? '""' : v.join(",");
  }
  const s = typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  return s === "" || /[\s"=\\]/.test(s) || hasControl(s) ? JSON.stringify(s) : s;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) < 0x20 || s.charCodeAt(i) === 0x7f) return true;
  }
  return false;
}

/**
 * The replica id of a ready line (the {@link READY_EVENT} record, in either format), else
 * undefined.
 */
export function readyLineId(line: string): number | undefined {
  if (line.startsWith("{")) {
    try {
      const o = JSON.parse(line);
      return o?.event === READY_EVENT && typeof o.id === "number" ? o.id : undefined;
    } catch {
      return undefined;
    }
  }
  const m = /^\S+ INFO +replica (\d+) node\.ready: /.exec(line);
  return m === null ? undefined : Number(m[1]);
}
