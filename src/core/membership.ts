/**
 * The configuration in force (which replicas vote, which only learn) as the core sees it, and
 * the arithmetic built on it: replica ids, majorities, and view numbers unique per proposer.
 *
 * The configuration is replicated state: the state machine holds it, changes it only when an
 * operation that changes it is delivered (`StateMachine.nextMembership`), and records it in its
 * snapshots (`StateMachine.membershipOf`). The core reads it to count majorities and to know whom
 * to talk to. See src/core/README.md, "Membership changes", for why one voter change per view
 * and the majority checks below keep any two views' majorities intersecting.
 *
 * @module
 */
import type { ReplicaId } from "./types.ts";

/** Replica ids are integers in 1..MAX_REPLICA_ID. */
export const MAX_REPLICA_ID = 999;

/**
 * View numbers are `round * VIEW_ROUND + (proposer id - 1)`: unique per proposer, so two
 * coordinators never collect votes for the same number (view 3001: round 3, proposed by 2; the
 * first view replica 1 proposes is 0).
 */
export const VIEW_ROUND = MAX_REPLICA_ID;

/**
 * The configuration in force. `voters` form views and acknowledge entries (majorities are over
 * them); `learners` receive the order, deliver it and serve reads, but never vote or ack. Both
 * ascending and disjoint. State machines may carry more (addresses, pending promotions): the core
 * passes the object back to them unchanged.
 */
export interface Membership {
  readonly voters: readonly ReplicaId[];
  readonly learners: readonly ReplicaId[];
  /**
   * The view of the entry that last changed the voters (absent: never). The view's coordinator
   * makes a new view after such a change, which puts it in force.
   */
  readonly changedIn?: number;
}

/** True for an id a replica may have. */
export function validReplicaId(id: unknown): id is ReplicaId {
  return Number.isSafeInteger(id) && (id as number) >= 1 && (id as number) <= MAX_REPLICA_ID;
}

/** The smallest number of `voters` that is a majority of them. */
export function majorityOf(voters: readonly ReplicaId[]): number {
  return Math.floor(voters.length / 2) + 1;
}

/** True when `group` holds a majority of `m`'s voters. */
export function holdsMajority(group: readonly ReplicaId[], m: Membership): boolean {
  if (m.voters.length === 0) return false;
  let n = 0;
  for (const v of m.voters) if (group.includes(v)) n++;
  return n >= majorityOf(m.voters);
}

/** True when `id` is a voter or a learner of `m`. */
export function isMember(m: Membership, id: ReplicaId): boolean {
  return m.voters.includes(id) || m.learners.includes(id);
}

/** The replica whose proposals get view number `view`. */
export function proposerOf(view: number): ReplicaId | undefined {
  if (!Number.isSafeInteger(view) || view < 0) return undefined;
  return (view % VIEW_ROUND) + 1;
}

/** The first view number above `above` that replica `id` may propose. */
export function nextViewOf(id: ReplicaId, above: number): number {
  return (Math.floor(above / VIEW_ROUND) + 1) * VIEW_ROUND + id - 1;
}

/** The founding configuration: every replica of `replicas` votes. */
export function foundingMembership(replicas: readonly ReplicaId[]): Membership {
  return { voters: [...new Set(replicas)].sort((a, b) => a - b), learners: [] };
}

/** True when `a` and `b` hold the same ids (both ascending). */
export function sameIds(a: readonly ReplicaId[], b: readonly ReplicaId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
