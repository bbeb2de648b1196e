/**
 * The replica's side of online membership changes (the replica set itself is replicated state:
 * `src/kv/replica_set.ts`; the core counts majorities over it: `src/core/membership.ts`).
 *
 * - Keeps the host's peer links to the replicas the core talks to (its `peers`: the configuration,
 *   the view, and the replicas across a change, such as a removed member until it learnt its
 *   removal), at the addresses the replica set (or, for a replica outside it, the last set that
 *   had it, or the config file) gives; logs changes of the replica set.
 * - Serves the operator's `REPLICASET` command: `MEMBERS` (answered here), `ADD`, `REMOVE`,
 *   `PROMOTE` (ordered as `__REPLICASET` operations). `REMOVE` replies once a view without the
 *   replica is installed here, so that the replica can be stopped at once.
 * - Promotes learners added to become voters (ADD without LEARNER) once they follow the view:
 *   the view's leader sends the `__REPLICASET PROMOTE`, as it sends the expiry sweep.
 * - Says when this replica must refuse clients: not a member of the configuration in force
 *   (waiting to join, or removed): `NOTMEMBER` naming the members. (A learner's writes are
 *   refused by the protocol core, with Redis's `READONLY` error.)
 *
 * @module
 */
import type { ByteString, Command, Outcome, ReplicaId, ReplicaStatus } from "../core/types.ts";
import type { Membership } from "../core/membership.ts";
import type { Reply } from "../core/types.ts";
import {
  describeMembers,
  type MemberAddress,
  parseAdd,
  type ReplicaSet,
} from "../kv/replica_set.ts";
import { err } from "../kv/reply.ts";

/** How long REMOVE waits for the view without the removed replica before it gives up. */
export const REMOVE_WAIT_MS = 15_000;
/** Least time between two promotions of the same learner by this replica. */
const PROMOTE_RETRY_MS = 1_000;

/** What the replica set's host side needs from its replica. */
export interface ReplicaSetHostDeps {
  id: ReplicaId;
  /** The replica set in force (undefined: not known yet, a joining replica). */
  replicaSet(): ReplicaSet | undefined;
  /** The core's membership (the founding one when the state machine has none). */
  membership(): Membership;
  /** The core's standing. */
  standing(): {
    state: ReplicaStatus["state"];
    view: number;
    members: readonly ReplicaId[];
    learners: readonly ReplicaId[];
  };
  /** The other replicas the core talks to (the core's `peers`; a new array when it changes). */
  peers(): readonly ReplicaId[];
  /** Replicas outside the configuration that announced themselves lately. */
  waitingToJoin(): ReplicaId[];
  /** Learners of this replica's view that follow it (when it leads the view). */
  caughtUpLearners(): ReplicaId[];
  /** Submits an operation into the order. */
  submit(cmd: Command, respond: (outcome: Outcome) => void): void;
  /** Wall-clock ms stamped on operations. */
  now(): number;
  /** The peers to keep links to changed. */
  setPeers(addresses: MemberAddress[]): void;
  /** The replicas of the config file (where an outsider looks for the cluster). */
  seeds: readonly MemberAddress[];
  /** Logs a membership change. */
  logChange(message: string, fields: Record<string, unknown>): void;
  /** Runs `fn` after `ms` (tests may replace it). */
  later?(fn: () => void, ms: number): void;
}

/** One row of `REPLICASET MEMBERS`. */
export interface MemberRow {
  id: ReplicaId;
  host: string;
  clientPort: number;
  peerPort: number;
  httpPort?: number;
  /** voter, learner, catching-up (a learner to be promoted), or joining (not yet added). */
  role: "voter" | "learner" | "catching-up" | "joining";
  /** in-view: serving in this replica's view; out: not in it (down, cut off, or catching up). */
  state: "in-view" | "out";
}

/** A `REPLICASET` command's handling: replies once done. */
export type ReplicaSetCommand = (argv: ByteString[], respond: (reply: Reply) => void) => void;

/** The replica set, as one replica hosts it. */
export class ReplicaSetHost {
  readonly #deps: ReplicaSetHostDeps;
  #lastSet: ReplicaSet | undefined;
  /** Waiting REMOVEs: the id, and how to answer. */
  readonly #removals = new Set<{ id: ReplicaId; done: (reply: Reply) => void }>();
  readonly #promotedAt = new Map<ReplicaId, number>();
  /**
   * Where each replica ever known here listens: the config file's replicas, overridden by every
   * replica set in force since (so a removed replica keeps the address it last had).
   */
  readonly #addressOf = new Map<ReplicaId, MemberAddress>();
  /** The core's peer list last looked at. */
  #lastPeerIds: readonly ReplicaId[] | undefined;
  /** The peers last given to `setPeers`, as text. */
  #lastPeers = "";

  /** Follows the replica set and the core's peers of `deps`. */
  constructor(deps: ReplicaSetHostDeps) {
    this.#deps = deps;
    for (const a of deps.seeds) this.#addressOf.set(a.id, a);
  }

  /**
   * The addresses to keep peer links to: those of the core's peers, ascending by id (a peer with
   * no known address, such as a joiner not yet added and not in the config file, is left out).
   */
  peers(): MemberAddress[] {
    const out: MemberAddress[] = [];
    for (const id of this.#deps.peers()) {
      const a = this.#addressOf.get(id);
      if (a !== undefined && id !== this.#deps.id) out.push(a);
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Gives the host the peers to link to when they changed. */
  #followPeers(): void {
    const peers = this.peers();
    const key = peers.map((a) => `${a.id}@${a.host}:${a.peerPort}`).join(" ");
    if (key === this.#lastPeers) return;
    this.#lastPeers = key;
    this.#deps.setPeers(peers);
  }

  /** After every step of the core: follow changes, promote, answer waiting REMOVEs. */
  afterStep(): void {
    const set = this.#deps.replicaSet();
    const peerIds = this.#deps.peers();
    const setChanged = set !== this.#lastSet;
    if (setChanged) {
      const before = this.#lastSet;
      this.#lastSet = set;
      for (const a of set?.addresses ?? []) this.#addressOf.set(a.id, a);
      if (before !== undefined && set !== undefined) {
        this.#deps.logChange(
          `replica set changed: voters ${set.voters.join(",")}` +
            (set.learners.length > 0 ? `, learners ${set.learners.join(",")}` : ""),
          { voters: set.voters, learners: set.learners, promote: set.promote },
        );
      }
    }
    // The core recomputes its list only when it may have changed: compared by identity.
    if (setChanged || peerIds !== this.#lastPeerIds) {
      this.#lastPeerIds = peerIds;
      this.#followPeers();
    }
    if (set !== undefined && set.promote.length > 0) this.#promote(set);
    if (this.#removals.size > 0) this.#answerRemovals();
  }

  /**
   * Why this replica must refuse any client operation now, or null: a replica outside the
   * configuration in force serves nothing (`NOTMEMBER`). Which writes a member refuses (a
   * learner's: `READONLY`) the protocol core decides, when the operation reaches it.
   */
  refusal(): Outcome | null {
    if (isIn(this.#deps.membership(), this.#deps.id)) return null;
    return {
      ok: false,
      code: "NOTMEMBER",
      message: `this replica is not a member of the cluster; members: ${this.#describe()}`,
    };
  }

  /** The rows of `REPLICASET MEMBERS`: the configuration in force, then replicas waiting. */
  rows(): MemberRow[] {
    const set = this.#deps.replicaSet();
    const m = this.#deps.membership();
    const standing = this.#deps.standing();
    const inView = (id: ReplicaId) =>
      standing.state === "normal" &&
      (standing.members.includes(id) || standing.learners.includes(id));
    const address = (id: ReplicaId) =>
      set?.addresses.find((a) => a.id === id) ?? this.#deps.seeds.find((a) => a.id === id);
    const rows: MemberRow[] = [];
    const add = (id: ReplicaId, role: MemberRow["role"]) => {
      const a = address(id);
      rows.push({
        id,
        host: a?.host ?? "?",
        clientPort: a?.clientPort ?? 0,
        peerPort: a?.peerPort ?? 0,
        ...(a?.httpPort === undefined ? {} : { httpPort: a.httpPort }),
        role,
        state: inView(id) ? "in-view" : "out",
      });
    };
    for (const id of m.voters) add(id, "voter");
    for (const id of m.learners) add(id, set?.promote.includes(id) ? "catching-up" : "learner");
    for (const id of this.#deps.waitingToJoin()) add(id, "joining");
    return rows;
  }

  /** `REPLICASET <subcommand> ...`: replies once done (or refused). */
  command(argv: ByteString[], respond: (reply: Reply) => void): void {
    const sub = (argv[1] ?? "").toUpperCase();
    switch (sub) {
      case "MEMBERS":
        if (argv.length !== 2) {
          return respond(err("ERR wrong number of arguments for 'replicaset|members' command"));
        }
        return respond(this.rows().map(memberReply));
      case "ADD": {
        const parsed = parseAdd(argv.slice(2));
        if (typeof parsed === "string") return respond(err(parsed));
        return this.#order(["__REPLICASET", "ADD", ...argv.slice(2)], respond, () => respond(OK));
      }
      case "PROMOTE":
      case "REMOVE": {
        if (argv.length !== 3 || !/^[0-9]+$/.test(argv[2])) {
          return respond(err(`ERR syntax: REPLICASET ${sub} <id>`));
        }
        const id = Number(argv[2]);
        return this.#order(["__REPLICASET", sub, argv[2]], respond, () => {
          if (sub === "PROMOTE") return respond(OK);
          this.#waitRemoved(id, respond);
        });
      }
      case "HELP":
        return respond(HELP);
      default:
        return respond(
          err(`ERR unknown subcommand '${(argv[1] ?? "").slice(0, 128)}'. Try REPLICASET HELP.`),
        );
    }
  }

  /** Orders `argv`; `ok` runs when it applied with OK, errors are replied as they are. */
  #order(argv: string[], respond: (reply: Reply) => void, ok: () => void): void {
    // A replica outside the configuration refuses it here; a learner's core refuses it (a write).
    const refused = this.refusal();
    if (refused !== null && !refused.ok) return respond(err(`${refused.code} ${refused.message}`));
    this.#deps.submit({ op: { argv, time: this.#deps.now() } }, (outcome) => {
      if (!outcome.ok) return respond(err(`${outcome.code} ${outcome.message}`));
      const r = outcome.result;
      if (r !== null && typeof r === "object" && !Array.isArray(r) && "err" in r) return respond(r);
      ok();
    });
  }

  #waitRemoved(id: ReplicaId, respond: (reply: Reply) => void): void {
    let answered = false;
    const waiter = {
      id,
      done: (reply: Reply) => {
        if (answered) return;
        answered = true;
        this.#removals.delete(waiter);
        respond(reply);
      },
    };
    this.#removals.add(waiter);
    this.#answerRemovals();
    (this.#deps.later ?? setTimeout)(() => {
      waiter.done(
        err(
          `ERR replica ${id} was removed from the configuration, but no view without it was ` +
            `installed here within ${REMOVE_WAIT_MS / 1000} s (is a majority of the rest up?)`,
        ),
      );
    }, REMOVE_WAIT_MS);
  }

  #answerRemovals(): void {
    const s = this.#deps.standing();
    const m = this.#deps.membership();
    for (const w of [...this.#removals]) {
      if (isIn(m, w.id)) continue;
      // Removed here: done once a view without it serves here, or this replica was the one.
      const gone = w.id === this.#deps.id ||
        (s.state === "normal" && !s.members.includes(w.id) && !s.learners.includes(w.id));
      if (gone) w.done(OK);
    }
  }

  #promote(set: ReplicaSet): void {
    const now = this.#deps.now();
    for (const learner of this.#deps.caughtUpLearners()) {
      if (!set.promote.includes(learner)) continue;
      const last = this.#promotedAt.get(learner);
      if (last !== undefined && now - last < PROMOTE_RETRY_MS) continue;
      this.#promotedAt.set(learner, now);
      this.#deps.submit(
        { op: { argv: ["__REPLICASET", "PROMOTE", String(learner)], time: now } },
        () => {},
      );
    }
  }

  #describe(): string {
    const set = this.#deps.replicaSet();
    if (set === undefined) return "unknown yet (this replica waits to be added)";
    return set.voters.map((id) => {
      const a = set.addresses.find((x) => x.id === id);
      return a === undefined ? `${id}` : `${id} ${a.host}:${a.clientPort}`;
    }).join(", ") || describeMembers(set);
  }
}

const OK: Reply = { ok: "OK" };

function isIn(m: Membership, id: ReplicaId): boolean {
  return m.voters.includes(id) || m.learners.includes(id);
}

/** One member as `REPLICASET MEMBERS` replies it: a flat field/value list, like CLUSTER SHARDS. */
function memberReply(r: MemberRow): Reply {
  return [
    "id",
    r.id,
    "host",
    r.host,
    "client-port",
    r.clientPort,
    "peer-port",
    r.peerPort,
    "http-port",
    r.httpPort ?? null,
    "role",
    r.role,
    "state",
    r.state,
  ];
}

const HELP: Reply = [
  "REPLICASET <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "MEMBERS",
  "    The configuration in force: id, address, ports, role and state of each replica, then",
  "    the replicas waiting to join.",
  "ADD <id> <host> <client_port> <peer_port> [<http_port>] [LEARNER]",
  "    Add a replica (start it with --join). It becomes a voter once it caught up, unless",
  "    LEARNER: then it only receives the order and serves reads.",
  "REMOVE <id>",
  "    Remove a replica; replies once a view without it serves. Then stop it.",
  "PROMOTE <id>",
  "    Make a learner a voter.",
  "HELP",
  "    Print this help.",
].map((line) => ({ ok: line }));
