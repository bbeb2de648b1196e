/**
 * The internal `__REPLICASET` operation: a change of the replicated replica set (ADD, REMOVE,
 * PROMOTE; see `src/kv/replica_set.ts`). The server builds it from the operator's `REPLICASET`
 * command and the view's leader from a learner that caught up; clients cannot send it.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { err, OK } from "../reply.ts";
import { nextReplicaSet } from "../replica_set.ts";

function applyReplicaSet(ctx: ApplyContext, argv: ByteString[]): Reply {
  const state = ctx.replicaSet;
  if (state === undefined || ctx.view === undefined) {
    return err("ERR membership changes are not supported by this state machine");
  }
  const next = nextReplicaSet(state.get(), argv, ctx.view);
  if ("err" in next) return next;
  state.set(next);
  return OK;
}

/** The internal `__replicaset` command. */
export const REPLICA_SET_COMMANDS: CommandSpec[] = [{
  name: "__replicaset",
  arity: -3,
  flags: ["write", "admin"],
  keys: [0, 0, 0],
  group: "lamportkv",
  summary: "Internal: a change of the replicated replica set (ADD, REMOVE, PROMOTE).",
  syntax: "ADD|REMOVE|PROMOTE id [argument ...]",
  since: "lamportkv 4",
  apply: applyReplicaSet,
  internal: true,
}];
