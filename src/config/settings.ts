/**
 * Resource-limit settings of a replica, with Redis's names and meanings where Redis has one.
 *
 * A setting is given as a line of the cluster config file (first word the name, then the value,
 * e.g. `maxclients 5000`) or on the node command line as `--<name> <value>`, which wins. Sizes
 * use Redis's syntax: plain bytes, or a number with `k`/`m`/`g` (powers of 1000) or
 * `kb`/`mb`/`gb` (powers of 1024), any case. Without any setting a replica behaves as before the
 * settings existed (their defaults are in `src/limits.ts`).
 *
 * | name                         | value                             | default            |
 * | ---------------------------- | --------------------------------- | ------------------ |
 * | `maxclients`                 | connections                       | 10000              |
 * | `timeout`                    | idle seconds (0: never)           | 0                  |
 * | `proto-max-bulk-len`         | size (64kb..32mb)                 | 8mb                |
 * | `client-query-buffer-limit`  | size                              | 16mb               |
 * | `client-output-buffer-limit` | `normal <hard> <soft> <seconds>`  | `normal 0 0 0`     |
 * | `client-output-buffer-limit` | `pubsub <hard> <soft> <seconds>`  | `pubsub 32mb 8mb 60` |
 * | `notify-keyspace-events`     | Redis's flag letters (`KEA`...)   | "" (none)          |
 * | `maxmemory`                  | size (0: none but the heap guard) | 0                  |
 * | `maxmemory-clients`          | size (0: none)                    | 128mb              |
 * | `client-request-timeout`     | seconds (0: never)                | 10                 |
 * | `peer-hello-timeout`         | seconds                           | 5                  |
 * | `cluster-key-file`           | path of the cluster key           | none (no peer auth)|
 * | `tls-cert-file`              | PEM certificate (chain) file      | none: plain TCP    |
 * | `tls-key-file`               | PEM private key file              | none               |
 * | `tls-ca-cert-file`           | PEM CA certificate(s) file        | none               |
 * | `tls-auth-clients`           | `yes`, `no` or `optional`         | yes with a CA, no  |
 * | `tls-replication`            | `yes` or `no`                     | no                 |
 * | `requirepass`                | the `default` user's password     | none (nopass)      |
 * | `aclfile`                    | ACL file path (config-relative)   | none               |
 * | `log-format`                 | `text` or `json`                  | text               |
 * | `log-level`                  | `error`, `warn`, `info`, `debug`  | info               |
 *
 * `cluster-key-file`: a relative path on a config file line is relative to the config file's
 * directory, as a flag relative to the working directory. The file is read and checked when the
 * replica starts (`src/config/cluster_key.ts`); with it, peers authenticate each other
 * (`src/net/peer_auth.ts`).
 *
 * TLS: `tls-cert-file` and `tls-key-file` (together) make the client port speak TLS. With
 * `tls-ca-cert-file`, clients must present a certificate signed by that CA unless
 * `tls-auth-clients` says `no` (`optional`: one they present must be); `tls-replication yes` also
 * runs the peer port and links over TLS, each replica checking the other's certificate against
 * the CA. File paths in the config file are relative to its directory, in flags to the working
 * directory. The files themselves are read and checked by `tls_files.ts`.
 *
 * `client-output-buffer-limit` may be given once per class (`normal`, `pubsub`): the `pubsub`
 * limits apply to connections in subscribed mode. `notify-keyspace-events` is the value every
 * replica starts from until a `CONFIG SET` of it is applied in the total order: give every
 * replica the same one (it is a line of the shared cluster config file).
 *
 * `requirepass` and `aclfile` are the security settings (`src/runtime/acl_setup.ts`): the
 * password is a single word without `#` in the config file (use an aclfile with `#<sha256>` for
 * others); give every replica the same ones.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { parseNotifyFlags } from "../kv/notify.ts";
import {
  CLIENT_READ_BYTES,
  DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
  DEFAULT_CLIENT_REQUEST_TIMEOUT_SECONDS,
  DEFAULT_MAXCLIENTS,
  DEFAULT_MAXMEMORY_CLIENTS,
  DEFAULT_OUTPUT_BUFFER_LIMIT,
  DEFAULT_PEER_HELLO_TIMEOUT_SECONDS,
  DEFAULT_PROTO_MAX_BULK_LEN,
  DEFAULT_PUBSUB_OUTPUT_BUFFER_LIMIT,
  DEFAULT_TIMEOUT_SECONDS,
  MAX_PROTO_MAX_BULK_LEN,
  MIN_PROTO_MAX_BULK_LEN,
  REQUEST_SLACK_BYTES,
} from "../limits.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log/format.ts";

/** `client-output-buffer-limit` of the normal class; 0 disables a limit. */
export interface OutputBufferLimit {
  /** Unsent reply bytes above which the client is closed at once. */
  hard: number;
  /** Unsent reply bytes the client may stay above for at most `softSeconds`. */
  soft: number;
  softSeconds: number;
}

/** A file named by a setting: its path (resolved) and where the setting was given. */
export interface SettingFile {
  path: string;
  /** `path:line` of the config file, or `--name`. */
  where: string;
}

/** `tls-auth-clients`. */
export type TlsAuthClients = "yes" | "no" | "optional";

/** Every setting, resolved. */
export interface Settings {
  maxclients: number;
  /** Idle client seconds before it is closed (0: never). */
  timeout: number;
  protoMaxBulkLen: number;
  clientQueryBufferLimit: number;
  clientOutputBufferLimit: OutputBufferLimit;
  /** `client-output-buffer-limit pubsub`: connections in subscribed mode. */
  clientOutputBufferLimitPubsub: OutputBufferLimit;
  /** `notify-keyspace-events` bits until one is set through the order (0: none). */
  notifyKeyspaceEvents: number;
  /**
   * Used memory above which writes that may add data are refused (`OOM`; 0: only the heap
   * guard of `src/runtime/memory_guard.ts`).
   */
  maxmemory: number;
  /** Bytes buffered for all clients together (0: no limit). */
  maxmemoryClients: number;
  /** Seconds a started request may take to arrive completely (0: no limit). */
  clientRequestTimeout: number;
  /** Seconds a peer connection has to complete its hello. */
  peerHelloTimeout: number;
  /** The cluster key file, resolved, and where it was given (undefined: peers are not keyed). */
  clusterKeyFile: SettingFile | undefined;
  /** `tls-cert-file`, `tls-key-file`, `tls-ca-cert-file` (absent: not given). */
  tlsCertFile?: SettingFile;
  tlsKeyFile?: SettingFile;
  tlsCaCertFile?: SettingFile;
  /** `tls-auth-clients` (absent: `yes` with a CA file, else `no`). */
  tlsAuthClients?: TlsAuthClients;
  /** `tls-replication`. */
  tlsReplication: boolean;
  /** The `default` user's password ("": none). */
  requirepass: string;
  /** The ACL file (absent: none). */
  aclfile?: SettingFile;
  /** The log's line format (`src/log/`). */
  logFormat: LogFormat;
  /** The least severe log level written. */
  logLevel: LogLevel;
}

/** The defaults (see `src/limits.ts`). */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  maxclients: DEFAULT_MAXCLIENTS,
  timeout: DEFAULT_TIMEOUT_SECONDS,
  protoMaxBulkLen: DEFAULT_PROTO_MAX_BULK_LEN,
  clientQueryBufferLimit: DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
  clientOutputBufferLimit: DEFAULT_OUTPUT_BUFFER_LIMIT,
  clientOutputBufferLimitPubsub: DEFAULT_PUBSUB_OUTPUT_BUFFER_LIMIT,
  notifyKeyspaceEvents: 0,
  maxmemory: 0,
  maxmemoryClients: DEFAULT_MAXMEMORY_CLIENTS,
  clientRequestTimeout: DEFAULT_CLIENT_REQUEST_TIMEOUT_SECONDS,
  peerHelloTimeout: DEFAULT_PEER_HELLO_TIMEOUT_SECONDS,
  clusterKeyFile: undefined,
  tlsReplication: false,
  requirepass: "",
  logFormat: "text",
  logLevel: "info",
});

/** A value that is not valid for its setting; the message says what is expected. */
export class SettingError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "SettingError";
  }
}

const MAX_SECONDS = 365 * 24 * 3600;

/**
 * Parses a size like Redis's `memtoll`: `<digits>[k|kb|m|mb|g|gb]`, case-insensitive.
 * Returns null when malformed or not a safe integer.
 */
export function parseSize(text: string): number | null {
  const m = /^([0-9]+)(k|kb|m|mb|g|gb)?$/i.exec(text);
  if (m === null) return null;
  const unit = (m[2] ?? "").toLowerCase();
  const mul: Record<string, number> = {
    "": 1,
    k: 1000,
    kb: 1024,
    m: 1000 ** 2,
    mb: 1024 ** 2,
    g: 1000 ** 3,
    gb: 1024 ** 3,
  };
  const n = Number(m[1]) * mul[unit];
  return Number.isSafeInteger(n) ? n : null;
}

function size(text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseSize(text);
  if (n === null) {
    throw new SettingError(`expected a size (bytes, or e.g. 512mb, 1gb), got "${text}"`);
  }
  if (n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min}..${max}`;
    throw new SettingError(`expected a size of ${range} bytes, got "${text}" (${n})`);
  }
  return n;
}

function count(text: string, min: number, max: number): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new SettingError(`expected an integer in ${min}..${max}, got "${text}"`);
  }
  return n;
}

/** The limits of one `client-output-buffer-limit` line, keyed by its class's setting. */
function outputBufferLimit(text: string): Partial<Settings> {
  const words = text.trim().split(/\s+/);
  if (words.length !== 4) {
    throw new SettingError(`expected "normal|pubsub <hard> <soft> <soft-seconds>", got "${text}"`);
  }
  const [cls, hard, soft, seconds] = words;
  const c = cls.toLowerCase();
  if (c !== "normal" && c !== "pubsub") {
    throw new SettingError(
      `only the classes "normal" and "pubsub" exist in lamportkv, got "${cls}"`,
    );
  }
  const limit = {
    hard: size(hard, 0),
    soft: size(soft, 0),
    softSeconds: count(seconds, 0, MAX_SECONDS),
  };
  return c === "normal"
    ? { clientOutputBufferLimit: limit }
    : { clientOutputBufferLimitPubsub: limit };
}

function notifyFlags(text: string): number {
  const flags = parseNotifyFlags(text);
  if (flags === null) {
    throw new SettingError(`invalid event class character in "${text}"; use 'Ag$lshzxeKEtmdn'`);
  }
  return flags;
}

function yesNo(text: string): boolean {
  const t = text.toLowerCase();
  if (t !== "yes" && t !== "no") throw new SettingError(`expected yes or no, got "${text}"`);
  return t === "yes";
}

function authClients(text: string): TlsAuthClients {
  const t = text.toLowerCase();
  if (t !== "yes" && t !== "no" && t !== "optional") {
    throw new SettingError(`expected yes, no or optional, got "${text}"`);
  }
  return t;
}

/** A file path; relative ones are resolved against the line's `base` (its config file's dir). */
function file(text: string, line: SettingLine | undefined): SettingFile {
  if (text.trim() === "") throw new SettingError("expected the path of a file");
  const base = line?.base;
  const path = base === undefined || isAbsolute(text) ? text : join(base, text);
  return { path, where: line?.where ?? "" };
}

/** One of `words` (case-insensitive). */
function oneOf<T extends string>(words: readonly T[]): (text: string) => T {
  return (text) => {
    const t = text.toLowerCase() as T;
    if (!words.includes(t)) throw new SettingError(`expected ${words.join(", ")}, got "${text}"`);
    return t;
  };
}

function nonEmpty(what: string): (text: string) => string {
  return (text) => {
    if (text === "") throw new SettingError(`expected ${what}`);
    return text;
  };
}

/** The parser of every setting, by its name. */
const PARSERS: Record<
  string,
  { key: keyof Settings; parse: (text: string, line?: SettingLine) => unknown }
> = {
  maxclients: { key: "maxclients", parse: (t) => count(t, 1, 1_000_000) },
  timeout: { key: "timeout", parse: (t) => count(t, 0, MAX_SECONDS) },
  "proto-max-bulk-len": {
    key: "protoMaxBulkLen",
    parse: (t) => size(t, MIN_PROTO_MAX_BULK_LEN, MAX_PROTO_MAX_BULK_LEN),
  },
  "client-query-buffer-limit": {
    key: "clientQueryBufferLimit",
    parse: (t) => size(t, 1024 * 1024),
  },
  "client-output-buffer-limit": { key: "clientOutputBufferLimit", parse: outputBufferLimit },
  "notify-keyspace-events": { key: "notifyKeyspaceEvents", parse: notifyFlags },
  maxmemory: { key: "maxmemory", parse: (t) => size(t, 0) },
  "maxmemory-clients": { key: "maxmemoryClients", parse: (t) => size(t, 0) },
  "client-request-timeout": {
    key: "clientRequestTimeout",
    parse: (t) => count(t, 0, MAX_SECONDS),
  },
  "peer-hello-timeout": { key: "peerHelloTimeout", parse: (t) => count(t, 1, 3600) },
  "cluster-key-file": { key: "clusterKeyFile", parse: file },
  "tls-cert-file": { key: "tlsCertFile", parse: file },
  "tls-key-file": { key: "tlsKeyFile", parse: file },
  "tls-ca-cert-file": { key: "tlsCaCertFile", parse: file },
  "tls-auth-clients": { key: "tlsAuthClients", parse: authClients },
  "tls-replication": { key: "tlsReplication", parse: yesNo },
  requirepass: { key: "requirepass", parse: nonEmpty("a password") },
  aclfile: { key: "aclfile", parse: file },
  "log-format": { key: "logFormat", parse: oneOf(LOG_FORMATS) },
  "log-level": { key: "logLevel", parse: oneOf(LOG_LEVELS) },
};

/**
 * The settings in force by their names, as text (`describeSettings`, for the start log event):
 * files by their path, the output buffer limits of both classes in Redis's syntax; settings not
 * given are left out, and `requirepass` is listed under its name so that the logger hides its
 * value (`/status` shows it as `[redacted]`).
 */
export function describeSettings(settings: Settings): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [name, { key }] of Object.entries(PARSERS)) {
    const v = settings[key];
    if (v === undefined || v === "") continue;
    if (typeof v === "object" && "path" in v) {
      out[name] = v.path;
    } else if (typeof v === "object") {
      const p = settings.clientOutputBufferLimitPubsub;
      out[name] = `normal ${v.hard} ${v.soft} ${v.softSeconds} ` +
        `pubsub ${p.hard} ${p.soft} ${p.softSeconds}`;
    } else {
      out[name] = v;
    }
  }
  return out;
}

/** The setting names, as written in the config file and as `--<name>` flags. */
export const SETTING_NAMES: readonly string[] = Object.keys(PARSERS);

/** True when `name` is a setting. */
function isSettingName(name: string): boolean {
  return Object.hasOwn(PARSERS, name);
}

/** One setting as given: its name, its value text, and where it was given (for errors). */
export interface SettingLine {
  name: string;
  value: string;
  /** `path:line`, or `--name` for a flag. */
  where: string;
  /**
   * The directory relative file paths are resolved against: the config file's (absent: the
   * working directory, as for flags).
   */
  base?: string;
}

/**
 * Parses one setting's value.
 *
 * @throws {SettingError} for an unknown name or a bad value (the message names neither the file
 * nor the line: the caller adds them).
 */
export function parseSetting(
  name: string,
  value: string,
  line?: SettingLine,
): Partial<Settings> {
  if (!isSettingName(name)) throw new SettingError(`unknown setting "${name}"`);
  const { key, parse } = PARSERS[name];
  // A client-output-buffer-limit line sets the limits of the class it names.
  if (name === "client-output-buffer-limit") return outputBufferLimit(value);
  return { [key]: parse(value, line) } as Partial<Settings>;
}

/**
 * The settings from `lines` (config file lines first, then flags: later ones win) over the
 * defaults, checked against each other.
 *
 * @throws {SettingError} with the message `<where>: <name>: <problem>`.
 */
export function resolveSettings(lines: readonly SettingLine[]): Settings {
  const settings: Settings = { ...DEFAULT_SETTINGS };
  const given = new Map<keyof Settings, SettingLine>();
  for (const line of lines) {
    try {
      Object.assign(settings, parseSetting(line.name, line.value, line));
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      throw new SettingError(`${line.where}: ${line.name}: ${err.message}`);
    }
    given.set(PARSERS[line.name].key, line);
  }
  const needed = settings.protoMaxBulkLen + REQUEST_SLACK_BYTES + CLIENT_READ_BYTES;
  if (settings.clientQueryBufferLimit < needed) {
    const at = given.get("clientQueryBufferLimit") ?? given.get("protoMaxBulkLen")!;
    throw new SettingError(
      `${at.where}: ${at.name}: client-query-buffer-limit (${settings.clientQueryBufferLimit}) ` +
        `must be at least proto-max-bulk-len (${settings.protoMaxBulkLen}) + ` +
        `${REQUEST_SLACK_BYTES + CLIENT_READ_BYTES} bytes, to hold one maximal request`,
    );
  }
  for (const out of [settings.clientOutputBufferLimit, settings.clientOutputBufferLimitPubsub]) {
    if (out.soft > 0 && out.hard > 0 && out.soft > out.hard) {
      const at = given.get("clientOutputBufferLimit")!;
      throw new SettingError(
        `${at.where}: ${at.name}: the soft limit (${out.soft}) is above the hard limit (${out.hard})`,
      );
    }
  }
  checkTls(settings, given);
  return settings;
}

/** The TLS settings that only make sense together. */
function checkTls(settings: Settings, given: Map<keyof Settings, SettingLine>): void {
  const fail = (key: keyof Settings, problem: string): never => {
    const at = given.get(key)!;
    throw new SettingError(`${at.where}: ${at.name}: ${problem}`);
  };
  const hasCert = settings.tlsCertFile !== undefined;
  const hasKey = settings.tlsKeyFile !== undefined;
  const hasCa = settings.tlsCaCertFile !== undefined;
  if (hasCert && !hasKey) fail("tlsCertFile", "tls-key-file is needed too (the certificate's key)");
  if (hasKey && !hasCert) fail("tlsKeyFile", "tls-cert-file is needed too (the key's certificate)");
  if (!hasCert) {
    for (const key of ["tlsCaCertFile", "tlsAuthClients"] as const) {
      if (given.has(key)) fail(key, "TLS needs tls-cert-file and tls-key-file");
    }
    if (settings.tlsReplication) {
      fail("tlsReplication", "TLS needs tls-cert-file, tls-key-file and tls-ca-cert-file");
    }
  }
  if (!hasCa && settings.tlsAuthClients !== undefined && settings.tlsAuthClients !== "no") {
    fail(
      "tlsAuthClients",
      `tls-auth-clients ${settings.tlsAuthClients} needs tls-ca-cert-file (the CA that client ` +
        `certificates are checked against)`,
    );
  }
  if (!hasCa && settings.tlsReplication) {
    fail(
      "tlsReplication",
      "tls-replication yes needs tls-ca-cert-file (the CA the replicas' certificates are " +
        "checked against)",
    );
  }
}

/** Whether clients must (`yes`), may (`optional`) or do not (`no`) present a certificate. */
export function clientAuthOf(settings: Settings): TlsAuthClients {
  return settings.tlsAuthClients ?? (settings.tlsCaCertFile !== undefined ? "yes" : "no");
}
