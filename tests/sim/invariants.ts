/**
 * The invariants of DESIGN.md, checked on the outcome of one simulated run. Each check returns a
 * human-readable violation, so a failing seed says what broke.
 *
 * @module
 */
import { KvStore } from "../../src/kv/store.ts";
import { checkLinearizable } from "../support/linearizability.ts";
import type { DeliveryRecord, SimResult } from "./simulator.ts";
import { toHistory } from "./simulator.ts";
import { modelOp } from "../support/ops.ts";
import { checkModelLinearizable } from "../support/model_check.ts";
import type { RespValue } from "../../src/net/resp.ts";

/** What a run may be expected to achieve beyond safety. */
export interface Expectations {
  /** Every client operation eventually succeeds (faults end, retries get through). */
  allSucceed: boolean;
  /**
   * In stable periods (no crash, pause, partition or restart for a while; link flaps go on) a
   * request to a replica that can serve succeeds within the progress bound. Default true.
   */
  boundedProgress?: boolean;
  /** Makes a fresh state machine like the replicas' (to replay the log); default a plain store. */
  newStore?: (founding: SimResult["founding"]) => KvStore;
}

/** All violations of the invariants in `result` (empty when it is correct). */
export function checkInvariants(result: SimResult, expect: Expectations): string[] {
  const violations: string[] = [];
  if (result.crash) violations.push(`core invariant failed: ${result.crash}`);
  const { log, problems } = globalLog(result);
  violations.push(...problems);
  violations.push(...checkProgress(result, expect));
  violations.push(...checkViewsSettle(result));
  violations.push(...checkAcknowledgedKept(result, log));
  violations.push(...checkReplay(result, log, expect));
  violations.push(...checkPlainAtMostOnce(result, log));
  violations.push(...checkRefusedNotOrdered(result, log));
  violations.push(...checkEvents(result));
  violations.push(...checkViewsIntersect(result));
  violations.push(...checkRemovedStop(result, log));
  for (const slow of expect.boundedProgress === false ? [] : result.slowAttempts.slice(0, 3)) {
    violations.push(`no progress in a stable period: ${slow}`);
  }
  violations.push(...result.staleReads.slice(0, 3));
  if (result.duplicateReplies > 0) {
    violations.push(`${result.duplicateReplies} request attempts were answered twice`);
  }
  if (result.requests.some((r) => r.op === null)) {
    // The data-model workload: checked as a whole against the state machine as the model.
    const lin = checkModelLinearizable(
      result.requests.map((r) => ({
        client: r.client,
        argv: r.argv,
        call: r.call,
        ret: r.ret,
        reply: r.result as RespValue | undefined,
      })),
    );
    if (!lin.ok) violations.push(`history not linearizable: ${lin.message}`);
  } else {
    const lin = checkLinearizable([...toHistory(result.requests), ...result.lateReads]);
    if (!lin.ok) violations.push(`history not linearizable (key ${lin.key}): ${lin.message}`);
  }
  return violations;
}

/**
 * Total order: every replica that delivered index i delivered the same entry there with the
 * same result, indexes only grow (a snapshot may skip some), and no replica delivers an entry
 * twice. Returns the merged log.
 */
function globalLog(result: SimResult): { log: Map<number, DeliveryRecord>; problems: string[] } {
  const log = new Map<number, DeliveryRecord>();
  const problems: string[] = [];
  for (const [id, seq] of result.deliveries) {
    const seen = new Map<string, number>();
    let prev = 0;
    for (const d of seq) {
      if (d.index <= prev) {
        problems.push(`replica ${id} delivered index ${d.index} after ${prev}`);
        break;
      }
      prev = d.index;
      const at = seen.get(d.id);
      if (at !== undefined) {
        problems.push(`replica ${id} delivered ${d.id} at ${at} and ${d.index}`);
      }
      seen.set(d.id, d.index);
      const other = log.get(d.index);
      if (!other) log.set(d.index, d);
      else if (other.id !== d.id || other.result !== d.result) {
        problems.push(
          `index ${d.index}: replica ${id} has ${d.id} -> ${d.result}, another has ` +
            `${other.id} -> ${other.result}`,
        );
      }
      if (problems.length > 5) return { log, problems };
    }
  }
  return { log, problems };
}

/**
 * Untagged writes (never retried) are in the log at most once, and never when they were refused
 * (NOQUORUM): a replica resubmitting a request after a view change must not apply it twice.
 */
function checkPlainAtMostOnce(result: SimResult, log: Map<number, DeliveryRecord>): string[] {
  const count = new Map<string, number>();
  for (const d of log.values()) {
    const op = modelOp(d.op);
    if (d.tag === "" && op?.kind === "put" && op.value !== undefined) {
      count.set(op.value, (count.get(op.value) ?? 0) + 1);
    }
  }
  const out: string[] = [];
  for (const r of result.requests) {
    if (!r.plain || r.op?.kind !== "put") continue;
    const n = count.get(r.op.value ?? "") ?? 0;
    const refused = r.outcomes.some((o) => !o.ok && o.code === "NOQUORUM");
    if (n > 1) out.push(`plain put ${r.op.value} was applied ${n} times`);
    if (refused && n > 0) out.push(`plain put ${r.op.value} was refused yet applied`);
    if (r.ret !== null && n !== 1) {
      out.push(`acknowledged plain put ${r.op.value} applied ${n} times`);
    }
  }
  return out;
}

/**
 * NOQUORUM promises that the replica did not put the request into the order. So when every
 * attempt of a tagged request at replica R was answered NOQUORUM, no entry of R's carries it (an
 * uncertain outcome must be UNKNOWN). Attempts at R that got another answer, or none, could have
 * ordered it there, so such replicas are not checked.
 */
function checkRefusedNotOrdered(result: SimResult, log: Map<number, DeliveryRecord>): string[] {
  const byTag = new Map<string, Set<string>>();
  for (const d of log.values()) {
    if (d.tag === "") continue;
    const origin = d.id.split(":")[1];
    const origins = byTag.get(d.tag) ?? new Set<string>();
    origins.add(origin);
    byTag.set(d.tag, origins);
  }
  const out: string[] = [];
  for (const r of result.requests) {
    if (r.plain || r.refusedBy.length === 0) continue;
    const tag = `${r.tag.client}:${r.tag.seq}`;
    for (const replica of new Set(r.refusedBy)) {
      const tries = r.triedAt.filter((x) => x === replica).length;
      const refusals = r.refusedBy.filter((x) => x === replica).length;
      if (tries !== refusals) continue;
      if (byTag.get(tag)?.has(String(replica))) {
        out.push(`request ${tag} was answered NOQUORUM by replica ${replica}, which ordered it`);
      }
    }
  }
  return out;
}

/** Views are installed within this long after a permanent fault begins, and none later. */
export const VIEWS_SETTLE_MS = 5_000;

/**
 * Under a permanent fault (a link cut one way, a stable partition) the views settle: no view is
 * installed later than {@link VIEWS_SETTLE_MS} after the fault began.
 */
function checkViewsSettle(result: SimResult): string[] {
  if (result.permanentFaultAt === null) return [];
  const since = result.permanentFaultAt + VIEWS_SETTLE_MS;
  const late = result.viewInstalls.filter((t) => t > since);
  if (late.length === 0) return [];
  return [
    `views did not settle: ${late.length} views installed after ${since} ms (the permanent ` +
    `fault began at ${result.permanentFaultAt} ms), at ${late.slice(0, 8).join(", ")} ms`,
  ];
}

/** Quiescence after the faults, and (if expected) every operation eventually succeeded. */
function checkProgress(result: SimResult, expect: Expectations): string[] {
  const out: string[] = [];
  if (!result.quiescent) {
    const open = result.requests.filter((r) => r.ret === null).length;
    out.push(
      `no progress: not settled after ${result.endedAt} ms (${open} of ` +
        `${result.requests.length} client operations without success)`,
    );
  }
  if (expect.allSucceed && result.quiescent) {
    const failed = result.requests.filter((r) => r.ret === null && !r.plain);
    for (const r of failed.slice(0, 3)) {
      out.push(
        `operation ${r.tag.client}:${r.tag.seq} (${r.argv[0]}) never succeeded: ${
          JSON.stringify(r.outcomes.slice(-2))
        }`,
      );
    }
  }
  return out;
}

/**
 * No acknowledged write is lost: each one sits at an index of the merged log (where every
 * replica, before and after restarts, agrees) that every live replica has reached. (Reads never
 * enter the log; the linearizability check covers what they returned.)
 */
function checkAcknowledgedKept(result: SimResult, log: Map<number, DeliveryRecord>): string[] {
  if (!result.quiescent) return [];
  // Tagged operations are found by tag, plain ones (puts of unique values) by value.
  const keyOf = (tag: string, op: { kind: string; value?: string }) =>
    tag !== "" ? tag : `plain ${op.value}`;
  const indexOf = new Map<string, number>();
  for (const d of log.values()) {
    const key = keyOf(d.tag, modelOp(d.op) ?? { kind: "other" });
    if (!indexOf.has(key)) indexOf.set(key, d.index);
  }
  const reached = Math.min(...result.finalDelivered.values());
  const out: string[] = [];
  for (const r of result.requests) {
    // Reads are answered at their place in the order without entering the log.
    if (r.ret === null || r.read) continue;
    const tag = r.plain ? "" : `${r.tag.client}:${r.tag.seq}`;
    const index = indexOf.get(keyOf(tag, r.op ?? { kind: "other" }));
    if (index === undefined || index > reached) {
      out.push(`acknowledged ${tag} (${r.argv[0]}) was lost (index ${index}, live at ${reached})`);
    }
  }
  const digests = new Set(result.digests.values());
  if (digests.size > 1) out.push(`live replicas' digests differ: ${[...result.digests]}`);
  return out;
}

/**
 * Replaying the merged log from index 1 through a fresh state machine gives the live replicas'
 * state: snapshot transfers and exactly-once retries kept every replica's map right.
 */
function checkReplay(
  result: SimResult,
  log: Map<number, DeliveryRecord>,
  expect: Expectations,
): string[] {
  if (!result.quiescent || log.size === 0) return [];
  const last = Math.max(...log.keys());
  const store = expect.newStore?.(result.founding) ?? new KvStore(undefined, 0, result.founding);
  for (let i = 1; i <= last; i++) {
    const d = log.get(i);
    if (!d) return [`index ${i} was delivered by no replica individually`];
    const [client, seq] = d.tag.split(":");
    const tag = d.tag === "" ? undefined : { client, seq: Number(seq) };
    const got = JSON.stringify(store.apply({ op: d.op, tag }, d.view));
    if (got !== d.result) return [`replay of index ${i} gives ${got}, replicas said ${d.result}`];
  }
  const digest = store.digest();
  const wrong = [...result.digests].filter(([, d]) => d !== digest);
  return wrong.length > 0 ? [`replayed digest ${digest} differs from ${wrong}`] : [];
}

/**
 * Ordered events: every replica incarnation that delivered index i published the same messages
 * (PUBLISH and keyspace notifications) applying it, in the same order; so each replica's stream of
 * messages is a stretch of one global stream.
 */
function checkEvents(result: SimResult): string[] {
  const at = new Map<number, { who: string; events: string }>();
  for (const [id, seq] of result.deliveries) {
    for (const d of seq) {
      if (d.events === undefined) continue;
      const events = JSON.stringify(d.events);
      const first = at.get(d.index);
      if (first === undefined) at.set(d.index, { who: id, events });
      else if (first.events !== events) {
        return [
          `replica ${id} published ${events} at index ${d.index}, replica ${first.who} ` +
          `${first.events}`,
        ];
      }
    }
  }
  return [];
}

/**
 * Membership changes keep majorities intersecting: any two views installed one after the other
 * (by number, among those that went normal somewhere) share a member. Disjoint consecutive views
 * could each deliver what the other never sees.
 */
function checkViewsIntersect(result: SimResult): string[] {
  for (let i = 1; i < result.views.length; i++) {
    const a = result.views[i - 1];
    const b = result.views[i];
    if (!a.members.some((m) => b.members.includes(m))) {
      return [`views ${a.view} [${a.members}] and ${b.view} [${b.members}] share no member`];
    }
  }
  return [];
}

/**
 * A removed replica takes no part in any view whose starting log holds its removal: it may finish
 * the view its removal was delivered in, never join a later one.
 */
function checkRemovedStop(result: SimResult, log: Map<number, DeliveryRecord>): string[] {
  const removedAt = new Map<number, number>();
  for (const d of [...log.values()].sort((a, b) => a.index - b.index)) {
    const [name, sub, id] = d.op.argv;
    if (name?.toLowerCase() === "__replicaset" && sub === "REMOVE" && d.result === '{"ok":"OK"}') {
      if (!removedAt.has(Number(id))) removedAt.set(Number(id), d.index);
    }
  }
  const out: string[] = [];
  for (const [id, index] of removedAt) {
    for (const v of result.views) {
      if (v.start >= index && (v.members.includes(id) || v.learners.includes(id))) {
        out.push(
          `replica ${id}, removed at index ${index}, is in view ${v.view} (from ${v.start})`,
        );
      }
    }
  }
  return out;
}
