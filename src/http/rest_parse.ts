/**
 * The pure parts of the REST API (`src/http/rest.ts`): keys from URL paths, the listing's query,
 * `ttl`, glob escaping, keys in JSON, the `Authorization` header, and the mapping of a command's
 * error reply to an HTTP status. No I/O here.
 *
 * Keys and values are {@link ByteString}s (one char per byte). A key in a URL is percent-decoded
 * byte by byte (`%FF` is the byte 0xFF, not U+00FF in UTF-8), so any key can be addressed with
 * `encodeURIComponent` for UTF-8 text or `%XX` escapes for raw bytes.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { bytesToByteString, byteStringToBytes } from "../kv/bytes.ts";

/** A request the REST API refuses before running anything: status, code and message. */
export interface RestError {
  status: number;
  /** The `code` of the JSON error body (a Redis error code, or the REST API's own). */
  code: string;
  error: string;
  headers?: Record<string, string>;
}

/** Default number of keys SCAN looks at for one listing page. */
export const DEFAULT_LIST_LIMIT = 100;
/** Most keys SCAN looks at for one listing page. */
export const MAX_LIST_LIMIT = 1000;
/** The realm of the `WWW-Authenticate` challenge. */
export const AUTH_REALM = "lamportkv";

/** A 400 answer. */
export function badRequest(error: string): RestError {
  return { status: 400, code: "BADREQUEST", error };
}

/**
 * Percent-decodes `s` into bytes: `%XX` is the byte XX, every other character its own char code
 * (URL parsers leave only ASCII in paths and queries). With `plusIsSpace` (form-encoded query
 * strings) `+` is a space. Null when a `%` is not followed by two hex digits or a character is
 * outside 0..255.
 */
export function percentDecode(s: string, plusIsSpace = false): ByteString | null {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "%") {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (c === "+" && plusIsSpace) {
      out += " ";
    } else {
      if (c.charCodeAt(0) > 255) return null;
      out += c;
    }
  }
  return out;
}

/**
 * The key addressed by `pathname` (still percent-encoded, as `URL.pathname` is) under `base`
 * (e.g. `/v1/kv/`): the percent-decoded rest, `/` included. A 400 for an empty key or a bad
 * escape.
 */
export function keyFromPath(pathname: string, base: string): ByteString | RestError {
  if (!pathname.startsWith(base)) return badRequest(`the path must start with ${base}`);
  const key = percentDecode(pathname.slice(base.length));
  if (key === null) return badRequest("the key in the path has a malformed percent-escape");
  if (key.length === 0) return badRequest("the key is empty");
  return key;
}

/** The raw (percent-decoded) value of query parameter `name` in `search`, or undefined. */
export function queryParam(search: string, name: string): ByteString | undefined | RestError {
  const q = search.startsWith("?") ? search.slice(1) : search;
  if (q === "") return undefined;
  for (const part of q.split("&")) {
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    if (percentDecode(rawName, true) !== name) continue;
    const value = percentDecode(eq < 0 ? "" : part.slice(eq + 1), true);
    if (value === null) return badRequest(`query parameter ${name} has a malformed percent-escape`);
    return value;
  }
  return undefined;
}

/** True when `x` is a {@link RestError}. */
export function isRestError(x: unknown): x is RestError {
  return typeof x === "object" && x !== null && "status" in x && "code" in x;
}

/** `PUT ?ttl=`: absent (no expiry) or decimal seconds, which SET ... EX then checks for range. */
export function parseTtl(search: string): ByteString | undefined | RestError {
  const ttl = queryParam(search, "ttl");
  if (ttl === undefined || isRestError(ttl)) return ttl;
  if (!/^[0-9]{1,18}$/.test(ttl)) return badRequest("ttl must be a whole number of seconds");
  if (/^0+$/.test(ttl)) return badRequest("ttl must be at least 1 second");
  return ttl;
}

/** A parsed `GET /v1/kv?prefix=&limit=&cursor=`. */
export interface ListQuery {
  /** Key prefix (bytes); empty lists every key. */
  prefix: ByteString;
  /** SCAN's COUNT. */
  limit: number;
  /** SCAN's cursor (decimal, "0" to start). */
  cursor: string;
}

/** Parses the listing's query string; a 400 for a bad limit or cursor. */
export function parseListQuery(search: string): ListQuery | RestError {
  const prefix = queryParam(search, "prefix") ?? "";
  if (isRestError(prefix)) return prefix;
  const limitText = queryParam(search, "limit");
  if (isRestError(limitText)) return limitText;
  let limit = DEFAULT_LIST_LIMIT;
  if (limitText !== undefined) {
    if (!/^[0-9]{1,6}$/.test(limitText)) {
      return badRequest(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    }
    limit = Number(limitText);
    if (limit < 1 || limit > MAX_LIST_LIMIT) {
      return badRequest(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    }
  }
  const cursor = queryParam(search, "cursor") ?? "0";
  if (isRestError(cursor)) return cursor;
  // SCAN cursors handed out are hashes + 1: at most 2^32.
  if (!/^[0-9]{1,10}$/.test(cursor) || Number(cursor) > 2 ** 32) {
    return badRequest("cursor must be a cursor returned by a previous page (or 0)");
  }
  return { prefix, limit, cursor: String(Number(cursor)) };
}

/** `prefix` as a glob matching exactly the keys that start with it (`*?[]\` escaped). */
export function prefixPattern(prefix: ByteString): ByteString {
  return prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`) + "*";
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The standard base64 of a byte string. */
export function base64OfBytes(s: ByteString): string {
  return btoa(s);
}

/**
 * A key as JSON: a string when its bytes are valid UTF-8 (the text), otherwise
 * `{"base64": "<its bytes in standard base64>"}`.
 */
export function keyToJson(key: ByteString): string | { base64: string } {
  try {
    return strictUtf8.decode(byteStringToBytes(key));
  } catch {
    return { base64: base64OfBytes(key) };
  }
}

/** Credentials from an `Authorization` header. */
export interface Credentials {
  user: ByteString;
  password: ByteString;
}

/**
 * The credentials of an `Authorization` header: `Basic base64(user:password)` (an empty user is
 * `default`), or `Bearer <token>` where the token is `user:password` when it holds a `:` and the
 * `default` user's password otherwise. Undefined without the header; a 401 when it is malformed.
 */
export function parseAuthorization(header: string | null): Credentials | undefined | RestError {
  if (header === null) return undefined;
  const m = /^([A-Za-z]+) +(.*)$/.exec(header.trim());
  const scheme = m?.[1].toLowerCase();
  let pair: string;
  if (scheme === "basic") {
    try {
      pair = bytesToByteString(Uint8Array.from(atob(m![2].trim()), (c) => c.charCodeAt(0)));
    } catch {
      return unauthorized("malformed Basic credentials (not base64)");
    }
    if (!pair.includes(":")) return unauthorized("malformed Basic credentials (no ':')");
  } else if (scheme === "bearer") {
    pair = m![2].trim();
    if (pair === "") return unauthorized("empty Bearer token");
    if (!pair.includes(":")) return { user: "default", password: pair };
  } else {
    return unauthorized("the Authorization scheme must be Basic or Bearer");
  }
  const colon = pair.indexOf(":");
  const user = pair.slice(0, colon);
  return { user: user === "" ? "default" : user, password: pair.slice(colon + 1) };
}

/** A 401 with the Basic challenge. */
export function unauthorized(error: string, code = "NOAUTH"): RestError {
  return {
    status: 401,
    code,
    error,
    headers: { "www-authenticate": `Basic realm="${AUTH_REALM}", charset="UTF-8"` },
  };
}

/**
 * The HTTP answer to a command's error reply `text` (its first word is the code): NOAUTH and
 * WRONGPASS 401, NOPERM 403, WRONGTYPE 409, NOQUORUM and REFUSED 503 with `Retry-After: 1` (not
 * applied), UNKNOWN 504 (it may have been applied: the body says so), a too-long string 413, other
 * ERR 400, MOVED (a sharded cluster: another group's key) and ASK (its slot is moving to another
 * group) 421, TRYAGAIN (the key is being moved) 503 with
 * `Retry-After: 1`, OOM (used memory over `maxmemory`) 507, CROSSSLOT 400, anything else 500.
 */
export function errorStatus(text: string): RestError {
  const space = text.indexOf(" ");
  const code = space < 0 ? text : text.slice(0, space);
  /** 503 with `Retry-After: 1`: it was not applied, because `why`. */
  const notApplied = (why: string): RestError => ({
    status: 503,
    code,
    error: `${text} (${why}; retry)`,
    headers: { "retry-after": "1" },
  });
  switch (code) {
    case "NOAUTH":
    case "WRONGPASS":
      return unauthorized(text, code);
    case "NOPERM":
      return { status: 403, code, error: text };
    case "WRONGTYPE":
      return { status: 409, code, error: text };
    case "NOQUORUM":
    case "REFUSED":
    case "NOTMEMBER":
      return notApplied("the request was not applied");
    case "READONLY":
      return { status: 403, code, error: `${text} (send writes to a voter)` };
    case "MOVED":
      // A sharded cluster: the key's slot is another replica group's (`MOVED <slot> <host:port>`).
      return { status: 421, code, error: `${text} (the key is another group's: ask that one)` };
    case "ASK":
      // Its slot is moving (`ASK <slot> <host:port>`): that group serves it after ASKING, which
      // a REST request cannot send; it can once the move is over.
      return { status: 421, code, error: `${text} (the key's slot is moving to that group)` };
    case "TRYAGAIN":
      return notApplied("the key is being moved");
    case "CROSSSLOT":
      return { status: 400, code, error: text };
    case "OOM":
      // Not applied: the replica refuses writes that add data until memory is freed (DEL).
      return { status: 507, code, error: text };
    case "UNKNOWN":
      return {
        status: 504,
        code,
        error: `${text} (the request may or may not have been applied)`,
      };
    case "ERR":
      if (text.includes("proto-max-bulk-len")) return { status: 413, code, error: text };
      return { status: 400, code, error: text };
    default:
      return { status: 500, code, error: text };
  }
}
