/**
 * The client-port command set: RESP argument vectors to what the server should do
 * ({@link parseCommand}), operation outcomes to reply bytes ({@link encodeOutcome}), and the INFO
 * body ({@link formatInfo}, read back by {@link parseInfo}).
 *
 * Commands (names are case-insensitive):
 *
 * | command                          | operation / reply                                     |
 * | -------------------------------- | ----------------------------------------------------- |
 * | `GET key`                        | get: bulk value or null                               |
 * | `SET key value`, `PUT key value` | put: `+OK` (SET options such as EX/NX are refused)    |
 * | `DEL key`, `DELETE key`          | delete: `:1` if a key was removed, else `:0`          |
 * | `EXISTS key`, `HAS key`          | has: `:1` or `:0`                                     |
 * | `PING [message]`                 | `+PONG`, or the message as a bulk string              |
 * | `QUIT`                           | `+OK`, then the server closes the connection          |
 * | `INFO [section]`                 | bulk body from {@link formatInfo}                     |
 * | `COMMAND [...]`                  | empty array (redis-cli asks for command docs)         |
 * | `REQ client seq <op command>`    | the op command, applied exactly once per (client,seq) |
 *
 * DEL and EXISTS take exactly one key (lamportkv orders one key per operation).
 *
 * @module
 */
import type { ByteString, Command, Op, Outcome, ReplicaStatus } from "../core/types.ts";
import { byteStringToUtf8 } from "../kv/bytes.ts";
import { encodeBulk, encodeError, encodeInteger, encodeSimple } from "./resp.ts";

import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../limits.ts";
/** Largest key and value in bytes (defined in `src/limits.ts`). */
export { MAX_KEY_BYTES, MAX_VALUE_BYTES };
/** Largest client id of a REQ command in bytes. */
export const MAX_CLIENT_ID_BYTES = 128;

/** What the server should do with one request. */
export type ParsedCommand =
  /** Submit `cmd` to the replica and answer with {@link encodeOutcome}. */
  | { type: "op"; cmd: Command }
  /** Reply `+PONG`, or `message` as a bulk string when given. */
  | { type: "ping"; message?: ByteString }
  /** Reply `+OK` and close the connection. */
  | { type: "quit" }
  /** Reply with {@link formatInfo} of the replica status as a bulk string. */
  | { type: "info"; section?: string }
  /** Reply with an empty array (`encodeEmptyArray()`): COMMAND, COMMAND DOCS, ... */
  | { type: "command" }
  /** Reply with `encodeError(message)` and keep the connection. */
  | { type: "error"; message: string };

/** Canonical names of the op commands, for REQ's error message. */
const OP_COMMANDS = "GET, SET, PUT, DEL, DELETE, EXISTS or HAS";

function error(message: string): ParsedCommand {
  return { type: "error", message };
}

/** Redis's arity error; `name` is the lowercase command name. */
function wrongArity(name: string): ParsedCommand {
  return error(`ERR wrong number of arguments for '${name}' command`);
}

/**
 * At most `max` bytes of client input, as text for an error message (decoded as UTF-8; invalid
 * sequences, including one cut at the limit, become U+FFFD).
 */
function clip(s: ByteString, max: number): string {
  return byteStringToUtf8(s.length <= max ? s : s.slice(0, max));
}

/**
 * Redis 7's unknown-command error: the name (up to 128 bytes) and the first arguments, each
 * quoted and followed by a space, until 128 bytes of arguments are shown.
 */
function unknownCommand(argv: ByteString[]): ParsedCommand {
  let args = "";
  let shown = 0; // bytes of arguments shown so far
  for (let i = 1; i < argv.length && shown < 128; i++) {
    const arg = argv[i].slice(0, 128 - shown);
    shown += arg.length + 3;
    args += `'${clip(arg, arg.length)}' `;
  }
  return error(`ERR unknown command '${clip(argv[0], 128)}', with args beginning with: ${args}`);
}

function checkKey(key: ByteString): ParsedCommand | null {
  return key.length > MAX_KEY_BYTES
    ? error(`ERR key too large (max ${MAX_KEY_BYTES} bytes)`)
    : null;
}

function checkValue(value: ByteString): ParsedCommand | null {
  return value.length > MAX_VALUE_BYTES
    ? error(`ERR value too large (max ${MAX_VALUE_BYTES} bytes)`)
    : null;
}

function op(o: Op): ParsedCommand {
  return { type: "op", cmd: { op: o } };
}

/** A single-key command: GET, DEL/DELETE, EXISTS/HAS. */
function keyCommand(
  argv: ByteString[],
  name: string,
  make: (key: ByteString) => Op,
  manyKeys?: string,
): ParsedCommand {
  if (argv.length > 2 && manyKeys !== undefined) return error(manyKeys);
  if (argv.length !== 2) return wrongArity(name);
  return checkKey(argv[1]) ?? op(make(argv[1]));
}

/** SET/PUT key value. */
function putCommand(argv: ByteString[], name: string): ParsedCommand {
  if (argv.length < 3) return wrongArity(name);
  if (argv.length > 3) {
    if (name !== "set") return wrongArity(name);
    return error(
      `ERR syntax error: SET options are not supported (got '${clip(argv[3], 32)}'); ` +
        "use SET key value",
    );
  }
  return checkKey(argv[1]) ?? checkValue(argv[2]) ??
    op({ kind: "put", key: argv[1], value: argv[2] });
}

/** The op command in `argv`, or null when `argv` is not one (GET/SET/PUT/DEL/...). */
function parseOp(argv: ByteString[], name: string): ParsedCommand | null {
  switch (name) {
    case "get":
      return keyCommand(argv, name, (key) => ({ kind: "get", key }));
    case "set":
    case "put":
      return putCommand(argv, name);
    case "del":
      return keyCommand(
        argv,
        name,
        (key) => ({ kind: "delete", key }),
        "ERR DEL with several keys is not supported: lamportkv deletes one key per command",
      );
    case "delete":
      return keyCommand(argv, name, (key) => ({ kind: "delete", key }));
    case "exists":
      return keyCommand(
        argv,
        name,
        (key) => ({ kind: "has", key }),
        "ERR EXISTS with several keys is not supported: lamportkv checks one key per command",
      );
    case "has":
      return keyCommand(argv, name, (key) => ({ kind: "has", key }));
    default:
      return null;
  }
}

/** `REQ <client-id> <seq> <op command...>`: an op command with an exactly-once tag. */
function parseReq(argv: ByteString[]): ParsedCommand {
  if (argv.length < 4) return wrongArity("req");
  const client = argv[1];
  if (client.length === 0 || client.length > MAX_CLIENT_ID_BYTES) {
    return error(`ERR REQ client id must be 1 to ${MAX_CLIENT_ID_BYTES} bytes`);
  }
  const seqText = argv[2];
  const seq = /^[1-9][0-9]{0,15}$/.test(seqText) ? Number(seqText) : NaN;
  if (!Number.isSafeInteger(seq)) {
    return error("ERR REQ sequence number must be a positive integer");
  }
  const inner = argv.slice(3);
  const name = inner[0].toLowerCase();
  const parsed = parseOp(inner, name);
  if (parsed === null) {
    return error(`ERR REQ can only wrap ${OP_COMMANDS}, not '${clip(inner[0], 128)}'`);
  }
  if (parsed.type !== "op") return parsed;
  return { type: "op", cmd: { op: parsed.cmd.op, tag: { client, seq } } };
}

/**
 * What to do with one request's arguments (as produced by `RespRequestParser`). Never throws:
 * bad requests become `{type: "error"}` with a Redis-style message (`ERR ...`).
 */
export function parseCommand(argv: ByteString[]): ParsedCommand {
  if (argv.length === 0) return error("ERR empty command");
  const name = argv[0].toLowerCase();
  const parsed = parseOp(argv, name);
  if (parsed !== null) return parsed;
  switch (name) {
    case "ping":
      if (argv.length > 2) return wrongArity(name);
      return argv.length === 2 ? { type: "ping", message: argv[1] } : { type: "ping" };
    case "quit":
      return { type: "quit" };
    case "info":
      if (argv.length > 2) return wrongArity(name);
      return argv.length === 2
        ? { type: "info", section: argv[1].toLowerCase() }
        : { type: "info" };
    case "command":
      return { type: "command" };
    case "req":
      return parseReq(argv);
    default:
      return unknownCommand(argv);
  }
}

/**
 * The reply to an operation: put → `+OK`; get → bulk value (`$-1` when absent); delete/has →
 * `:n`; failures → `-<CODE> <message>` (e.g. `-NOQUORUM no quorum`).
 */
export function encodeOutcome(outcome: Outcome): Uint8Array {
  if (!outcome.ok) {
    return encodeError(outcome.message ? `${outcome.code} ${outcome.message}` : outcome.code);
  }
  const result = outcome.result;
  switch (result.kind) {
    case "ok":
      return encodeSimple("OK");
    case "value":
      return encodeBulk(result.value);
    case "int":
      return encodeInteger(result.value);
  }
}

/** Field order of the INFO body (that of {@link ReplicaStatus}). */
const INFO_FIELDS: readonly (keyof ReplicaStatus)[] = [
  "id",
  "view",
  "state",
  "members",
  "clock",
  "delivered",
  "holdback",
  "pending",
  "keys",
  "digest",
];

/** INFO sections that include lamportkv's only section (like Redis's `all`/`default`). */
const INFO_SECTIONS = new Set(["lamportkv", "all", "default", "everything"]);

function infoValue(value: unknown): string {
  const text = Array.isArray(value) ? value.join(",") : String(value);
  return text.replace(/[\r\n]/g, " ");
}

/**
 * The INFO reply body (send it with `encodeBulk`): `# lamportkv\r\n` then one `field:value\r\n`
 * line per status field in {@link ReplicaStatus} order (members comma-separated); any extra
 * fields a newer status carries follow. As in Redis, an unknown `section` gives an empty body;
 * `lamportkv`, `all`, `default` and `everything` (any case) give the full one.
 */
export function formatInfo(status: ReplicaStatus, section?: string): ByteString {
  if (section !== undefined && !INFO_SECTIONS.has(section.toLowerCase())) return "";
  let body = "# lamportkv\r\n";
  const record = status as unknown as Record<string, unknown>;
  const known = new Set<string>(INFO_FIELDS);
  for (const field of INFO_FIELDS) body += `${field}:${infoValue(record[field])}\r\n`;
  for (const [field, value] of Object.entries(record)) {
    if (known.has(field) || value === undefined || typeof value === "function") continue;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) continue;
    body += `${field}:${infoValue(value)}\r\n`;
  }
  return body;
}

/**
 * Reads an INFO body back into `{field: value}` (every value a string; `members` stays
 * comma-separated). Section headers (`# ...`), blank lines and lines without `:` are skipped;
 * `\r\n` and bare `\n` line ends are both accepted.
 */
export function parseInfo(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    Object.defineProperty(out, line.slice(0, colon), {
      value: line.slice(colon + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * True when every INFO in `infos` says `state:normal` in the same view whose members are exactly
 * `ids`.
 */
export function allNormalInOneView(
  infos: readonly Record<string, string>[],
  ids: readonly number[],
): boolean {
  if (infos.length === 0) return false;
  const want = [...ids].sort((a, b) => a - b).join(",");
  return infos.every((info) =>
    info.state === "normal" && info.view === infos[0].view && info.members === want
  );
}
