/**
 * A fake replica for unit tests of client sessions (`src/net/session.ts`): one replica, normal in
 * view 1, whose operations run at once on a real {@link KvStore}; its users are the replicated
 * table once initialised, else its own `local` table. Subclasses add what a test needs (a
 * sharded cluster's routing, a record of denials, ...).
 *
 * @module
 */
import type { Command, Outcome, ReplicaStatus } from "../../src/core/types.ts";
import { type AclTable, defaultTable, describeTable } from "../../src/kv/acl.ts";
import { KvStore } from "../../src/kv/store.ts";
import type { ServerStats } from "../../src/net/info.ts";
import { PubSubHub } from "../../src/net/pubsub.ts";
import type { AclHost, Session, SessionHost } from "../../src/net/session.ts";

/** The status of the one replica: normal in view 1, alone. */
export const ONE_REPLICA_STATUS: ReplicaStatus = Object.freeze({
  id: 1,
  view: 1,
  state: "normal",
  members: [1],
  learners: [],
  role: "voter",
  voters: [1],
  clock: 1,
  delivered: 1,
  holdback: 0,
  unacked: 0,
  pending: 0,
  keys: 0,
  digest: "00",
});

/** A session host whose operations run on {@link store} at once; see the module documentation. */
export class ImmediateSessionHost implements SessionHost {
  /** The state machine the operations run on. */
  readonly store = new KvStore();
  /** Every operation submitted, in order. */
  readonly submitted: Command[] = [];
  readonly hub = new PubSubHub();
  /** This replica's own users (until the replicated table is initialised). */
  local: AclTable;

  /** A host whose own users are `local`. */
  constructor(local: AclTable = defaultTable()) {
    this.local = local;
  }
  submit(cmd: Command, respond: (outcome: Outcome) => void): void {
    this.submitted.push(cmd);
    respond({ ok: true, result: this.store.apply(cmd) });
  }
  status(): ReplicaStatus {
    return ONE_REPLICA_STATUS;
  }
  now(): number {
    return 1000;
  }
  sessions(): Iterable<Session> {
    return [];
  }
  stats(): ServerStats {
    return {
      startedAt: 0,
      tcpPort: 1,
      connectedClients: 1,
      totalConnections: 1,
      totalCommands: 1,
      rejectedConnections: 0,
      expires: 0,
    };
  }
  config(): Record<string, string> {
    return {};
  }
  pubsub(): PubSubHub {
    return this.hub;
  }
  acl(): AclHost {
    return {
      table: () => this.store.acl.table ?? this.local,
      initialised: () => this.store.acl.table !== null,
      initArgv: () => ["__ACL", "INIT", ...describeTable(this.local)],
    };
  }
  noteDenied(_kind: "auth" | "cmd" | "key" | "channel"): void {}
}
