/**
 * What the clients make of the replica set a replica reports: `REPLICASET MEMBERS` rows
 * ({@link parseMembersReply}), the members a `-NOTMEMBER` refusal names
 * ({@link parseNotMemberMessage}), the failover list they give ({@link failoverList}), and the
 * table the `members` command shows ({@link formatMembersTable}).
 *
 * @module
 */
import type { ReplicaId } from "../core/types.ts";
import type { ReplicaAddress } from "../config/config.ts";
import { validReplicaId } from "../core/membership.ts";
import type { TaggedRespValue } from "../net/resp.ts";

/** A replica's role as `REPLICASET MEMBERS` reports it. */
export type MemberRole = "voter" | "learner" | "catching-up" | "joining";

/** One row of `REPLICASET MEMBERS`. */
export interface MemberInfo {
  /** Where it listens (`httpPort` absent when it has none). */
  address: ReplicaAddress;
  /** voter, learner, catching-up (a learner to become a voter), joining (not yet added). */
  role: MemberRole;
  /** `in-view` (serving in the answering replica's view) or `out`. */
  state: string;
}

const ROLES = new Set<string>(["voter", "learner", "catching-up", "joining"]);

function port(v: TaggedRespValue | undefined): number | null {
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : null;
}

function text(v: TaggedRespValue | undefined): string | null {
  return typeof v === "string" ? v : null;
}

/**
 * The rows of a `REPLICASET MEMBERS` reply (an array of flat field/value lists), or null when
 * the reply is not one (an error reply, a server without membership changes, garbage). Rows
 * without a usable id, host or client port are left out; unknown fields are ignored.
 */
export function parseMembersReply(reply: TaggedRespValue): MemberInfo[] | null {
  if (!Array.isArray(reply)) return null;
  const rows: MemberInfo[] = [];
  for (const row of reply) {
    if (!Array.isArray(row) || row.length % 2 !== 0) return null;
    const fields = new Map<string, TaggedRespValue>();
    for (let i = 0; i < row.length; i += 2) {
      const name = text(row[i]);
      if (name === null) return null;
      fields.set(name.toLowerCase(), row[i + 1]);
    }
    const idValue = fields.get("id");
    const id = typeof idValue === "number" ? idValue : Number(text(idValue ?? null) ?? NaN);
    const host = text(fields.get("host"));
    const clientPort = port(fields.get("client-port"));
    const role = text(fields.get("role"));
    if (!validReplicaId(id) || !host || host === "?" || clientPort === null) continue;
    if (role === null || !ROLES.has(role)) continue;
    const address: ReplicaAddress = {
      id,
      host,
      clientPort,
      peerPort: port(fields.get("peer-port")) ?? 0,
    };
    const httpPort = port(fields.get("http-port"));
    if (httpPort !== null) address.httpPort = httpPort;
    rows.push({ address, role: role as MemberRole, state: text(fields.get("state")) ?? "?" });
  }
  return rows;
}

/**
 * The members a `-NOTMEMBER` refusal names (`... members: 3 127.0.0.1:7003, 4 h:7004`), as
 * addresses (peer port unknown: 0); empty when it names none.
 */
export function parseNotMemberMessage(message: string): ReplicaAddress[] {
  const at = message.lastIndexOf("members:");
  if (at < 0) return [];
  const out: ReplicaAddress[] = [];
  for (const part of message.slice(at + "members:".length).split(",")) {
    const m = /^\s*([0-9]+)\s+(\S+):([0-9]+)\s*$/.exec(part);
    if (m === null) continue;
    const id = Number(m[1]);
    const clientPort = port(m[3]);
    const host = m[2].replace(/^\[(.*)\]$/, "$1");
    if (validReplicaId(id) && clientPort !== null) {
      out.push({ id, host, clientPort, peerPort: 0 });
    }
  }
  return out;
}

/**
 * The replicas a client fails over between, from the rows of `REPLICASET MEMBERS`: the voters,
 * then the learners (catching up or not), each once; replicas waiting to join are left out.
 */
export function failoverList(rows: readonly MemberInfo[]): ReplicaAddress[] {
  const seen = new Set<ReplicaId>();
  const out: ReplicaAddress[] = [];
  const take = (voters: boolean) => {
    for (const r of rows) {
      if (r.role === "joining" || (r.role === "voter") !== voters || seen.has(r.address.id)) {
        continue;
      }
      seen.add(r.address.id);
      out.push(r.address);
    }
  };
  take(true);
  take(false);
  return out;
}

const COLUMNS = ["id", "address", "client", "peer", "http", "role", "state"] as const;

/**
 * The `members` table: one row per replica as the answering replica reports it (`replica` is
 * its id), then a line with the voters and learners.
 */
export function formatMembersTable(rows: readonly MemberInfo[], replica?: ReplicaId): string {
  const cells = rows.map((r) => [
    String(r.address.id),
    r.address.host,
    String(r.address.clientPort),
    r.address.peerPort === 0 ? "-" : String(r.address.peerPort),
    r.address.httpPort === undefined ? "-" : String(r.address.httpPort),
    r.role,
    r.state,
  ]);
  const table = [COLUMNS.map((c) => c as string), ...cells];
  const widths = COLUMNS.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const lines = table.map((row) =>
    row.map((cell, c) => c === row.length - 1 ? cell : cell.padEnd(widths[c])).join("  ")
  );
  const ids = (pick: (r: MemberInfo) => boolean) =>
    rows.filter(pick).map((r) => r.address.id).join(",") || "none";
  const learners = (r: MemberInfo) => r.role === "learner" || r.role === "catching-up";
  let summary = `voters: ${ids((r) => r.role === "voter")}  learners: ${ids(learners)}`;
  if (rows.some((r) => r.role === "joining")) {
    summary += `  waiting to join: ${ids((r) => r.role === "joining")}`;
  }
  if (replica !== undefined) summary += `  (as replica ${replica} sees it)`;
  lines.push(summary);
  return lines.join("\n");
}
