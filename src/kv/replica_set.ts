/**
 * The replica set as replicated state: which replicas vote, which only learn, where each one
 * listens, and which learners become voters once they have caught up. Changed only by the internal
 * `__REPLICASET` operation, at its place in the total order, by {@link nextReplicaSet}: a pure
 * function of the set in force, the operation and the view it was delivered in, which the protocol
 * core also calls to see what a view change's starting log would change (see
 * src/core/README.md, "Membership changes").
 *
 * ```text
 * __REPLICASET ADD <id> <host> <client_port> <peer_port> [<http_port>] [LEARNER]
 * __REPLICASET REMOVE <id>
 * __REPLICASET PROMOTE <id>
 * ```
 *
 * ADD makes the replica a learner; without LEARNER it is also marked to be promoted, which the
 * view's leader does (PROMOTE) once the replica follows the order. Only one voter change takes
 * effect per view, and no change starts while an added replica is catching up: so consecutive
 * views' configurations differ by at most one voter, and any majorities of them intersect.
 *
 * @module
 */
import type { ByteString, ReplicaId } from "../core/types.ts";
import { type Membership, validReplicaId } from "../core/membership.ts";
import { canonicalHost } from "../config/config.ts";

/** Where one replica listens. */
export interface MemberAddress {
  id: ReplicaId;
  host: string;
  clientPort: number;
  peerPort: number;
  httpPort?: number;
}

/** The replicated replica set (immutable: every change makes a new object). */
export interface ReplicaSet extends Membership {
  readonly voters: readonly ReplicaId[];
  readonly learners: readonly ReplicaId[];
  /** Learners to be promoted to voters once they follow the order (added without LEARNER). */
  readonly promote: readonly ReplicaId[];
  /** The view of the operation that last changed the voters (-1: none yet). */
  readonly changedIn: number;
  /** Every member's address, ascending by id. */
  readonly addresses: readonly MemberAddress[];
}

/** The founding set: every replica of the config file votes. */
export function foundingReplicaSet(replicas: readonly MemberAddress[]): ReplicaSet {
  const addresses = [...replicas].sort((a, b) => a.id - b.id).map((a) => ({ ...a }));
  return {
    voters: addresses.map((a) => a.id),
    learners: [],
    promote: [],
    changedIn: -1,
    addresses,
  };
}

/** `m` as a {@link ReplicaSet} (a core membership carries no addresses or promotions). */
export function asReplicaSet(m: Membership): ReplicaSet {
  const r = m as Partial<ReplicaSet>;
  return {
    voters: m.voters,
    learners: m.learners,
    promote: r.promote ?? [],
    changedIn: r.changedIn ?? -1,
    addresses: r.addresses ?? [],
  };
}

const PORT = /^[0-9]{1,5}$/;

function port(text: ByteString | undefined): number | null {
  if (text === undefined || !PORT.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

const ascending = (ids: Iterable<ReplicaId>) => [...ids].sort((a, b) => a - b);

/** The replicas of `set` as `1, 2, 3` (errors name them). */
export function describeMembers(set: ReplicaSet): string {
  return ascending([...set.voters, ...set.learners]).join(", ") || "none";
}

/**
 * Parses a `REPLICASET ADD` argument list (after `ADD`): the new member's address and whether it
 * stays a learner. An error text when it is malformed.
 */
export function parseAdd(
  args: readonly ByteString[],
): { address: MemberAddress; learner: boolean } | string {
  let rest = [...args];
  const learner = rest.length > 0 && rest[rest.length - 1].toUpperCase() === "LEARNER";
  if (learner) rest = rest.slice(0, -1);
  if (rest.length !== 4 && rest.length !== 5) {
    return "ERR syntax: REPLICASET ADD <id> <host> <client_port> <peer_port> [<http_port>] [LEARNER]";
  }
  const id = /^[0-9]+$/.test(rest[0]) ? Number(rest[0]) : NaN;
  if (!validReplicaId(id)) return `ERR replica id must be an integer in 1..999, got '${rest[0]}'`;
  const host = rest[1];
  if (host.length === 0 || host.length > 255 || /[\s\0]/.test(host)) {
    return `ERR invalid host '${host.slice(0, 64)}'`;
  }
  const ports = rest.slice(2).map(port);
  const bad = ports.findIndex((p) => p === null);
  if (bad >= 0) return `ERR invalid port '${rest[2 + bad]}' (1..65535)`;
  const [clientPort, peerPort, httpPort] = ports as number[];
  const address: MemberAddress = { id, host, clientPort, peerPort };
  if (httpPort !== undefined) address.httpPort = httpPort;
  const own = [clientPort, peerPort, httpPort].filter((p) => p !== undefined);
  if (new Set(own).size !== own.length) return "ERR the ports of one replica must differ";
  return { address, learner };
}

function inProgress(set: ReplicaSet, view: number, unless?: ReplicaId): string | null {
  const catching = set.promote.filter((id) => id !== unless);
  if (catching.length > 0) {
    return `ERR a membership change is already in progress: replica ${catching[0]} is catching ` +
      `up to become a voter`;
  }
  if (set.changedIn === view) {
    return "ERR a membership change is already in progress: wait until the next view puts it " +
      "in force";
  }
  return null;
}

/**
 * The set after `argv` (a `__REPLICASET` line) is delivered in `view` with `set` in force, or the
 * error the operation replies when it is refused (the set is then unchanged).
 */
export function nextReplicaSet(
  set: ReplicaSet,
  argv: readonly ByteString[],
  view: number,
): ReplicaSet | { err: string } {
  const sub = (argv[1] ?? "").toUpperCase();
  if (sub === "ADD") {
    const parsed = parseAdd(argv.slice(2));
    if (typeof parsed === "string") return { err: parsed };
    const { address, learner } = parsed;
    if (set.voters.includes(address.id) || set.learners.includes(address.id)) {
      return { err: `ERR replica id ${address.id} is already a member` };
    }
    const mine = [address.clientPort, address.peerPort, address.httpPort];
    for (const other of set.addresses) {
      if (canonicalHost(other.host) !== canonicalHost(address.host)) continue;
      const theirs = [other.clientPort, other.peerPort, other.httpPort];
      if (mine.some((p) => p !== undefined && theirs.includes(p))) {
        const port = mine.find((p) => p !== undefined && theirs.includes(p));
        return {
          err: `ERR address ${address.host}:${port} is already used by replica ${other.id}`,
        };
      }
    }
    if (!learner) {
      const busy = inProgress(set, view);
      if (busy !== null) return { err: busy };
    }
    return {
      ...set,
      learners: ascending([...set.learners, address.id]),
      promote: learner ? set.promote : ascending([...set.promote, address.id]),
      addresses: [...set.addresses, address].sort((a, b) => a.id - b.id),
    };
  }
  if (sub === "REMOVE" || sub === "PROMOTE") {
    if (argv.length !== 3) return { err: `ERR syntax: REPLICASET ${sub} <id>` };
    const id = /^[0-9]+$/.test(argv[2]) ? Number(argv[2]) : NaN;
    const voter = set.voters.includes(id);
    const learner = set.learners.includes(id);
    if (!voter && !learner) {
      return { err: `ERR no such replica '${argv[2]}' (members: ${describeMembers(set)})` };
    }
    if (sub === "PROMOTE") {
      if (voter) return { err: `ERR replica ${id} is already a voter` };
      const busy = inProgress(set, view, id);
      if (busy !== null) return { err: busy };
      return {
        ...set,
        voters: ascending([...set.voters, id]),
        learners: set.learners.filter((l) => l !== id),
        promote: set.promote.filter((l) => l !== id),
        changedIn: view,
      };
    }
    if (voter) {
      if (set.voters.length === 1) return { err: "ERR cannot remove the last voter" };
      const busy = inProgress(set, view);
      if (busy !== null) return { err: busy };
    }
    return {
      voters: set.voters.filter((v) => v !== id),
      learners: set.learners.filter((l) => l !== id),
      promote: set.promote.filter((l) => l !== id),
      changedIn: voter ? view : set.changedIn,
      addresses: set.addresses.filter((a) => a.id !== id),
    };
  }
  return { err: `ERR unknown __REPLICASET subcommand '${argv[1] ?? ""}'` };
}

/** A snapshot's replica set, checked field by field; an error text when it is malformed. */
export function parseReplicaSet(raw: unknown): ReplicaSet | string {
  const o = raw as Partial<ReplicaSet> | null;
  if (!o || typeof o !== "object") return "replica set is not an object";
  const ids = (v: unknown) =>
    Array.isArray(v) && v.every(validReplicaId) && v.every((x, i) => i === 0 || v[i - 1] < x);
  if (!ids(o.voters) || !ids(o.learners) || !ids(o.promote)) return "replica set ids malformed";
  if (!Number.isSafeInteger(o.changedIn) || (o.changedIn as number) < -1) {
    return "replica set changedIn malformed";
  }
  if (!Array.isArray(o.addresses)) return "replica set addresses malformed";
  for (const a of o.addresses) {
    if (
      !a || typeof a !== "object" || !validReplicaId(a.id) || typeof a.host !== "string" ||
      !Number.isInteger(a.clientPort) || !Number.isInteger(a.peerPort) ||
      (a.httpPort !== undefined && !Number.isInteger(a.httpPort))
    ) return "replica set address malformed";
  }
  return o as ReplicaSet;
}
