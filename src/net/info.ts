/**
 * The INFO reply: Redis's `server`, `clients`, `memory`, `persistence`, `stats`, `replication`,
 * `cluster` and `keyspace` sections (the fields client libraries and tools read) and lamportkv's own section with the replica's place in
 * the protocol; and {@link parseInfo}, which reads any INFO body back into fields.
 *
 * @module
 */
import type { ByteString, ReplicaStatus } from "../core/types.ts";
import { LAMPORTKV_VERSION, REDIS_VERSION } from "../version.ts";

/** Server-wide counters the client server keeps for INFO. */
export interface ServerStats {
  /** Process start (ms since the epoch). */
  startedAt: number;
  tcpPort: number;
  connectedClients: number;
  totalConnections: number;
  totalCommands: number;
  rejectedConnections: number;
  /** Failed logins (AUTH, HELLO AUTH), commands and keys refused by the ACL (Redis 7.2's names). */
  aclDeniedAuth?: number;
  aclDeniedCmd?: number;
  aclDeniedKey?: number;
  aclDeniedChannel?: number;
  /** Channels and patterns with subscribers on this replica. */
  pubsubChannels?: number;
  pubsubPatterns?: number;
  /** Keys with an expiry time. */
  expires: number;
  /** Clients blocked on keys now (BLPOP, ...). */
  blockedClients?: number;
  /** The `maxmemory` setting (0: none). */
  maxmemory?: number;
  /** Used memory above which writes are refused (`src/runtime/memory_guard.ts`; absent: none). */
  memoryLimit?: number;
}

/** Field order of the lamportkv section (that of {@link ReplicaStatus}). */
const LAMPORTKV_FIELDS: readonly (keyof ReplicaStatus)[] = [
  "id",
  "view",
  "state",
  "members",
  "learners",
  "role",
  "voters",
  "clock",
  "delivered",
  "holdback",
  "unacked",
  "pending",
  "keys",
  "digest",
];

/** The sections of a default INFO, in order. */
const DEFAULT_SECTIONS = [
  "server",
  "clients",
  "memory",
  "persistence",
  "stats",
  "replication",
  "cluster",
  "keyspace",
  "lamportkv",
];

function value(v: unknown): string {
  const text = Array.isArray(v) ? v.join(",") : String(v);
  return text.replace(/[\r\n]/g, " ");
}

function section(name: string, fields: [string, unknown][]): string {
  let body = `# ${name[0].toUpperCase()}${name.slice(1)}\r\n`;
  if (name === "lamportkv") body = "# lamportkv\r\n";
  for (const [k, v] of fields) body += `${k}:${value(v)}\r\n`;
  return body;
}

/**
 * Status fields printed under another name: Redis's replication section has `role` already, and
 * tools that read INFO into one map would take ours for it.
 */
const RENAMED: Readonly<Record<string, string>> = { role: "replica_role" };

function lamportkvFields(status: ReplicaStatus): [string, unknown][] {
  const record = status as unknown as Record<string, unknown>;
  const known = new Set<string>(LAMPORTKV_FIELDS);
  const out: [string, unknown][] = LAMPORTKV_FIELDS.map((f) => [RENAMED[f] ?? f, record[f]]);
  for (const [field, v] of Object.entries(record)) {
    if (known.has(field) || v === undefined || typeof v === "function") continue;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) continue;
    out.push([field, v]);
  }
  return out;
}

function sectionFields(
  name: string,
  status: ReplicaStatus,
  stats: ServerStats,
): [string, unknown][] | null {
  const now = Date.now();
  switch (name) {
    case "server":
      return [
        ["redis_version", REDIS_VERSION],
        // Every replica is a cluster node (see the cluster section), as Redis with cluster-enabled.
        ["redis_mode", "cluster"],
        ["lamportkv_version", LAMPORTKV_VERSION],
        ["os", Deno.build.os],
        ["arch_bits", 64],
        ["process_id", Deno.pid],
        ["tcp_port", stats.tcpPort],
        ["uptime_in_seconds", Math.floor((now - stats.startedAt) / 1000)],
        ["uptime_in_days", Math.floor((now - stats.startedAt) / 86_400_000)],
      ];
    case "clients":
      return [
        ["connected_clients", stats.connectedClients],
        ["blocked_clients", stats.blockedClients ?? 0],
      ];
    case "memory": {
      const m = Deno.memoryUsage();
      const fields: [string, unknown][] = [
        ["used_memory", m.heapUsed + m.external],
        ["used_memory_rss", m.rss],
        ["maxmemory", stats.maxmemory ?? 0],
        ["maxmemory_policy", "noeviction"],
      ];
      // lamportkv's own: where writes are refused (maxmemory, or the heap guard below it).
      if (stats.memoryLimit !== undefined) fields.push(["write_memory_limit", stats.memoryLimit]);
      return fields;
    }
    case "persistence":
      return [["loading", isLoading(status) ? 1 : 0], ["aof_enabled", 0]];
    case "stats":
      return [
        ["total_connections_received", stats.totalConnections],
        ["total_commands_processed", stats.totalCommands],
        ["rejected_connections", stats.rejectedConnections],
        ["acl_access_denied_auth", stats.aclDeniedAuth ?? 0],
        ["acl_access_denied_cmd", stats.aclDeniedCmd ?? 0],
        ["acl_access_denied_key", stats.aclDeniedKey ?? 0],
        ["acl_access_denied_channel", stats.aclDeniedChannel ?? 0],
        ["pubsub_channels", stats.pubsubChannels ?? 0],
        ["pubsub_patterns", stats.pubsubPatterns ?? 0],
      ];
    case "replication":
      // A learner serves reads and refuses writes, as a Redis replica does.
      return [["role", status.role === "learner" ? "slave" : "master"], ["connected_slaves", 0]];
    case "cluster":
      // Every replica answers Redis Cluster's commands (one shard, or its group's slots), so
      // cluster tools (`redis-cli --cluster check`) treat it as a cluster node.
      return [["cluster_enabled", 1]];
    case "keyspace":
      return status.keys > 0
        ? [["db0", `keys=${status.keys},expires=${stats.expires},avg_ttl=0`]]
        : [];
    case "lamportkv":
      return lamportkvFields(status);
    default:
      return null;
  }
}

/**
 * Whether the replica is "loading" in Redis's sense: it serves no data right now (not normal in a
 * view: joining at start, after a restart or after losing its majority, or changing views). INFO
 * says `loading:1`, and PING answers `-LOADING`.
 */
export function isLoading(status: Pick<ReplicaStatus, "state">): boolean {
  return status.state !== "normal";
}

/**
 * The INFO reply body for the given sections (lowercase; none, `default`, `all` or `everything`
 * give every section). As in Redis, unknown sections add nothing.
 */
export function formatInfo(
  status: ReplicaStatus,
  stats: ServerStats,
  sections: readonly string[] = [],
): ByteString {
  const wanted = sections.length === 0 ||
      sections.some((s) => s === "default" || s === "all" || s === "everything")
    ? DEFAULT_SECTIONS
    : DEFAULT_SECTIONS.filter((s) => sections.includes(s));
  const parts: string[] = [];
  for (const name of wanted) {
    const fields = sectionFields(name, status, stats);
    if (fields !== null) parts.push(section(name, fields));
  }
  return parts.join("\r\n");
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
