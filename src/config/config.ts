/**
 * The cluster config file: which replicas exist and where they listen.
 *
 * One replica per line, fields separated by any whitespace:
 *
 * ```text
 * # id  host       client_port  peer_port  [http_port]
 * 1     127.0.0.1  7001         7101       8001
 * 2     127.0.0.1  7002         7102       8002   # trailing comments are fine too
 * ```
 *
 * `#` starts a comment that runs to the end of the line; blank lines are ignored. Ids are positive
 * integers, ports are integers in 1..65535, and no id and no `host:port` address may appear twice.
 *
 * A replica line may end with `group=<name>` (`[A-Za-z0-9_-]{1,40}`): the key space is then sharded
 * across the groups by hash slot (`src/kv/slot_map.ts`), each group being a replica set of its own
 * ({@link groupConfig}). Either every replica line has a group or none; without groups the file is
 * one replica set that owns every slot.
 *
 * A line whose first word starts with a letter is a setting (see `settings.ts`): its name, then
 * its value, e.g. `maxclients 5000` or `client-output-buffer-limit normal 32mb 8mb 60`. Unknown
 * names, bad values and a setting given twice are errors like any other. Settings do not change
 * the cluster fingerprint ({@link clusterId}): replicas may run with different limits.
 * Every problem is reported as a {@link ConfigError} whose message names the file and, when one
 * line is at fault, the line: `cluster.txt:4: duplicate id 2 (first defined on line 3)`.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { dirname } from "node:path";
import { parseSetting, SettingError, type SettingLine } from "./settings.ts";

/** Where one replica listens. */
export interface ReplicaAddress {
  /** The replica id: a positive integer, unique in the file. */
  id: number;
  /** Host name or IP address, as written in the file. */
  host: string;
  /** Port for clients (RESP). */
  clientPort: number;
  /** Port for the other replicas (peer frames). */
  peerPort: number;
  /** HTTP port (metrics, health, status, REST, dashboard); absent: no HTTP listener. */
  httpPort?: number;
  /** The replica group (`group=<name>`) of a sharded file; absent without groups. */
  group?: string;
}

/** A parsed config file. */
export interface ClusterConfig {
  /** The file it came from (used in error messages). */
  path: string;
  /** Every replica, sorted by id. */
  replicas: ReplicaAddress[];
  /** The setting lines, in file order (absent when there are none). */
  settings?: SettingLine[];
  /**
   * The replica groups of a sharded file, in order of first appearance (absent without groups;
   * then every replica line has no `group`, and the file is one replica set).
   */
  groups?: string[];
}

/**
 * A config file that cannot be read or is invalid. The message is `<path>:<line>: <problem>` when
 * a line is at fault, else `<path>: <problem>`.
 */
export class ConfigError extends Error {
  /** The 1-based line at fault, if any. */
  readonly line: number | undefined;

  /** Builds the error for `path` (and `line`, if one line is at fault). */
  constructor(path: string, problem: string, line?: number) {
    super(line === undefined ? `${path}: ${problem}` : `${path}:${line}: ${problem}`);
    this.name = "ConfigError";
    this.line = line;
  }
}

const FIELD_NAMES = ["id", "host", "client_port", "peer_port", "http_port"] as const;
/** Fields a replica line must have (the HTTP port is optional). */
const REQUIRED_FIELDS = 4;
const LINE_FORMAT = "<id> <host> <client_port> <peer_port> [<http_port>]";
const GROUP_LINE_FORMAT = `${LINE_FORMAT} group=<name>`;
const DIGITS = /^[0-9]+$/;
/** A group name: 1 to 40 letters, digits, `_` or `-`. */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,40}$/;

/**
 * Parses the text of a config file. `path` only labels error messages and the result.
 *
 * @throws {ConfigError} on the first invalid line, or when no replica is defined.
 */
export function parseConfig(text: string, path: string): ClusterConfig {
  const replicas: ReplicaAddress[] = [];
  const settings: SettingLine[] = [];
  const settingLines = new Map<string, number>();
  const idLines = new Map<number, number>();
  const addressUses = new Map<string, string>();
  const uses: AddressUse[] = [];
  const groups: string[] = [];
  /** The first replica line with a group, and the first without one. */
  let firstGrouped: number | undefined;
  let firstUngrouped: number | undefined;
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const fail = (problem: string): never => {
      throw new ConfigError(path, problem, lineNo);
    };
    const hash = lines[i].indexOf("#");
    const content = (hash === -1 ? lines[i] : lines[i].slice(0, hash)).trim();
    if (content === "") continue;
    const fields = content.split(/\s+/);
    let group: string | undefined;
    if (fields.length > 1 && fields[fields.length - 1].startsWith("group=")) {
      group = fields.pop()!.slice("group=".length);
      if (!GROUP_NAME.test(group)) {
        fail(`group name must be 1 to 40 letters, digits, "_" or "-", got "${group}"`);
      }
    }
    if (group === undefined && /^[a-z]/i.test(fields[0])) {
      const [name, ...rest] = fields;
      const value = rest.join(" ");
      try {
        parseSetting(name, value, { name, value, where: `${path}:${lineNo}`, base: dirname(path) });
      } catch (err) {
        if (!(err instanceof SettingError)) throw err;
        const what = err.message.startsWith("unknown setting")
          ? `${err.message} (a replica line starts with its id, a positive integer)`
          : `${name}: ${err.message}`;
        fail(what);
      }
      const first = settingLines.get(name);
      if (first !== undefined) fail(`duplicate setting ${name} (first given on line ${first})`);
      settingLines.set(name, lineNo);
      settings.push({ name, value, where: `${path}:${lineNo}`, base: dirname(path) });
      continue;
    }
    const format = group === undefined ? LINE_FORMAT : GROUP_LINE_FORMAT;
    if (fields.length < REQUIRED_FIELDS) {
      const missing = FIELD_NAMES.slice(fields.length, REQUIRED_FIELDS).join(", ");
      fail(`missing field ${missing} (expected "${format}")`);
    }
    if (fields.length > FIELD_NAMES.length) {
      const extra = fields.slice(FIELD_NAMES.length).map((f) => `"${f}"`).join(" ");
      fail(`extra field ${extra} (expected "${format}")`);
    }
    const [idText, host, clientText, peerText, httpText] = fields;
    const misplaced = fields.find((f) => f.startsWith("group="));
    if (misplaced !== undefined) fail(`"${misplaced}" must be the last field of the line`);
    if (group === undefined) firstUngrouped ??= lineNo;
    else firstGrouped ??= lineNo;
    // Checked at every line: the first line that mixes them is this one, which set one of the two.
    if (firstGrouped !== undefined && firstUngrouped !== undefined) {
      fail(
        `line ${firstUngrouped} has no group= but line ${firstGrouped} has one: either every ` +
          `replica line ends with group=<name> or none does`,
      );
    }
    if (group !== undefined && !groups.includes(group)) groups.push(group);

    const id = DIGITS.test(idText) ? Number(idText) : NaN;
    if (!Number.isSafeInteger(id) || id < 1) {
      fail(`id must be a positive integer, got "${idText}"`);
    }
    const firstLine = idLines.get(id);
    if (firstLine !== undefined) fail(`duplicate id ${id} (first defined on line ${firstLine})`);
    idLines.set(id, lineNo);

    const port = (text: string, name: string): number => {
      const n = DIGITS.test(text) ? Number(text) : NaN;
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        fail(`${name} must be an integer in 1..65535, got "${text}"`);
      }
      return n;
    };
    const clientPort = port(clientText, "client_port");
    const peerPort = port(peerText, "peer_port");
    const httpPort = httpText === undefined ? undefined : port(httpText, "http_port");

    const useAddress = (portNo: number, what: string): void => {
      uses.push({ host, port: portNo, what, line: lineNo });
      const address = `${canonicalHost(host)}:${portNo}`;
      const earlier = addressUses.get(address);
      if (earlier !== undefined) {
        fail(`duplicate address ${host}:${portNo} (${what}; already used as ${earlier})`);
      }
      addressUses.set(address, `${what} on line ${lineNo}`);
    };
    useAddress(clientPort, `client_port of replica ${id}`);
    useAddress(peerPort, `peer_port of replica ${id}`);
    if (httpPort !== undefined) useAddress(httpPort, `http_port of replica ${id}`);

    replicas.push({
      id,
      host,
      clientPort,
      peerPort,
      ...(httpPort === undefined ? {} : { httpPort }),
      ...(group === undefined ? {} : { group }),
    });
  }

  if (replicas.length === 0) throw new ConfigError(path, "no replicas defined");
  replicas.sort((a, b) => a.id - b.id);
  const config: ClusterConfig = {
    path,
    replicas,
    ...(settings.length === 0 ? {} : { settings }),
    ...(groups.length === 0 ? {} : { groups }),
  };
  ADDRESS_USES.set(config, uses);
  return config;
}

/** One `host:port` a replica line uses, for {@link checkResolvedAddresses}. */
interface AddressUse {
  host: string;
  port: number;
  /** E.g. `client_port of replica 2`. */
  what: string;
  line: number;
}

/** The addresses each parsed config uses, in file order (kept out of the config's shape). */
const ADDRESS_USES = new WeakMap<ClusterConfig, AddressUse[]>();

/** Resolves a host name to its addresses (empty or throwing: it does not resolve). */
export type HostResolver = (host: string) => Promise<string[]>;

/** How long {@link resolveHost} waits for one name before comparing it as written. */
const RESOLVE_TIMEOUT_MS = 2000;

/**
 * The addresses `host` resolves to as the system resolver sees it (`/etc/hosts`, then DNS):
 * `getaddrinfo` through `node:dns` `lookup`. Empty when it does not resolve within 2 s, or the
 * lookup is not permitted.
 */
export async function resolveHost(host: string): Promise<string[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), RESOLVE_TIMEOUT_MS);
  });
  try {
    const found = lookup(host, { all: true }).then((all) => all.map((a) => a.address), () => []);
    return await Promise.race([found, timeout]);
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The duplicate-address check of {@link parseConfig} again, with host names resolved: two
 * replica ports on names that resolve to a common address (`db1` and `10.0.0.5`, `localhost` and
 * the machine's own name) are one address. A name that does not resolve (no DNS in a test, a
 * typo) is compared as written, so the check never depends on DNS being reachable. IP literals
 * are not looked up.
 *
 * @throws {ConfigError} `<path>:<line>: duplicate address <host>:<port> (...; <host> and <other>
 * both resolve to <address>)` for the first line that reuses an address.
 */
export async function checkResolvedAddresses(
  config: ClusterConfig,
  resolve: HostResolver = resolveHost,
): Promise<void> {
  const uses = ADDRESS_USES.get(config);
  if (uses === undefined) return;
  const names = [...new Set(uses.map((u) => u.host))].filter((h) => !isIP(bare(h)));
  const resolved = new Map<string, string[]>();
  await Promise.all(names.map(async (name) => {
    let addresses: string[] = [];
    try {
      addresses = await resolve(name);
    } catch {
      // does not resolve: compared as written
    }
    resolved.set(name, addresses);
  }));
  /** The addresses a host stands for: what it resolves to, else itself as written. */
  const keysOf = (host: string): string[] => {
    const addresses = resolved.get(host) ?? [];
    const keys = addresses.length > 0 ? addresses : [host];
    return [...new Set(keys.map(canonicalHost))];
  };
  const seen = new Map<string, AddressUse>();
  for (const use of uses) {
    for (const key of keysOf(use.host)) {
      const address = `${key}:${use.port}`;
      const earlier = seen.get(address);
      if (earlier !== undefined && earlier !== use) {
        const shown = key === "loopback" ? "a loopback address" : key;
        throw new ConfigError(
          config.path,
          `duplicate address ${use.host}:${use.port} (${use.what}; already used as ` +
            `${earlier.what} on line ${earlier.line}: ${earlier.host} and ${use.host} both ` +
            `resolve to ${shown})`,
          use.line,
        );
      }
      seen.set(address, use);
    }
  }
}

/** `host` without the brackets of an IPv6 literal. */
function bare(host: string): string {
  return host.replace(/^\[(.*)\]$/, "$1");
}

/**
 * Reads and parses a config file, then checks for duplicate addresses with host names resolved
 * ({@link checkResolvedAddresses}).
 *
 * @throws {ConfigError} `<path>: cannot read: <reason>` when the file cannot be read, or any
 * error of {@link parseConfig}.
 */
export async function loadConfig(path: string): Promise<ClusterConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(path, `cannot read: ${readReason(err)}`);
  }
  const config = parseConfig(text, path);
  await checkResolvedAddresses(config);
  return config;
}

function readReason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The replica with `id`.
 *
 * @throws {ConfigError} `<path>: no replica with id 9 (ids in file: 1, 2, 3)` when there is none
 * (followed by `; <hint>` when a hint is given).
 */
export function findReplica(config: ClusterConfig, id: number, hint?: string): ReplicaAddress {
  const found = config.replicas.find((r) => r.id === id);
  if (found === undefined) {
    const ids = config.replicas.map((r) => r.id).join(", ");
    const more = hint === undefined ? "" : `; ${hint}`;
    throw new ConfigError(config.path, `no replica with id ${id} (ids in file: ${ids})${more}`);
  }
  return found;
}

/** A replica of a sharded file (one with groups): the whole file, and the replica's group. */
export interface Sharding {
  /** The whole file, every group's lines. */
  config: ClusterConfig;
  /** The replica's group. */
  group: string;
}

/**
 * The config of one replica group of a sharded file: its replica lines only (without their
 * `group`), the settings, no groups. A replica of a sharded file runs as a replica set of this
 * config: its peers, founding replicas, views and cluster id are its group's only. A file
 * without groups is returned as it is.
 *
 * @throws {ConfigError} `<path>: no group <name> (groups in file: a, b)` when there is none.
 */
export function groupConfig(config: ClusterConfig, group: string): ClusterConfig {
  if (config.groups === undefined) return config;
  if (!config.groups.includes(group)) {
    throw new ConfigError(
      config.path,
      `no group ${group} (groups in file: ${config.groups.join(", ")})`,
    );
  }
  const replicas = config.replicas.filter((r) => r.group === group).map(({ group: _, ...r }) => r);
  return {
    path: config.path,
    replicas,
    ...(config.settings === undefined ? {} : { settings: config.settings }),
  };
}

/**
 * A stable short fingerprint of the replica list (ids, hosts, client and peer ports; not the HTTP
 * ports, which only monitoring uses, nor the file path, comments or layout): 16 lowercase hex
 * digits of the 64-bit FNV-1a hash of the canonical list. The replicas founding a cluster take it
 * as the cluster id and keep it in their data directories (`src/runtime/cluster_identity.ts`);
 * replicas compare that id during the peer handshake to refuse peers of another cluster.
 */
export function clusterId(config: ClusterConfig): string {
  const canonical = [...config.replicas]
    .sort((a, b) => a.id - b.id)
    .map((r) => `${r.id} ${r.host.toLowerCase()} ${r.clientPort} ${r.peerPort}\n`)
    .join("");
  return fnv1a64(new TextEncoder().encode(canonical)).toString(16).padStart(16, "0");
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = 0xffffffffffffffffn;

function fnv1a64(bytes: Uint8Array): bigint {
  let hash = FNV_OFFSET;
  for (const b of bytes) {
    hash ^= BigInt(b);
    hash = (hash * FNV_PRIME) & MASK_64;
  }
  return hash;
}

/**
 * The host as the duplicate-address checks compare it: lowercase, with the loopback names
 * (`localhost`, `127.0.0.1`, `::1`, `[::1]`, `0:0:0:0:0:0:0:1`) as one, so that two replicas are
 * never configured on one port under two names. Used by {@link parseConfig} and by the replicated
 * `REPLICASET ADD` check (src/kv/replica_set.ts). (Other names are compared as written here,
 * keeping both pure; {@link checkResolvedAddresses} compares them resolved.)
 */
export function canonicalHost(host: string): string {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" || /^127\.0\.0\.1$/.test(h)) {
    return "loopback";
  }
  return h;
}
