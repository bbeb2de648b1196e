/**
 * Why a replica installed a view, for its `view.installed` log event: the members and learners that
 * joined, left or were promoted since the last view it served in.
 *
 * @module
 */
import type { ReplicaId } from "../core/types.ts";

/** The cause of a view, in words and as the members that changed. */
export interface ViewCause {
  text: string;
  joined: ReplicaId[];
  left: ReplicaId[];
}

/** Who is in a view: its members and its learners. */
export interface ViewPeople {
  members: readonly ReplicaId[];
  learners?: readonly ReplicaId[];
}

/**
 * Compares the new view's members and learners with those of the last view served in
 * (`previous`, undefined before the first); `rejoined` is true when this replica was out of
 * service for a while before this view (not just during a view change).
 */
export function viewCause(
  previous: ViewPeople | undefined,
  next: ViewPeople,
  rejoined: boolean,
): ViewCause {
  if (previous === undefined) return { text: "first view since start", joined: [], left: [] };
  const { members } = next;
  const learners = next.learners ?? [];
  const before = previous.learners ?? [];
  const promoted = members.filter((m) => before.includes(m));
  const joined = members.filter((m) => !previous.members.includes(m) && !before.includes(m));
  const left = previous.members.filter((m) => !members.includes(m));
  const learnersIn = learners.filter((l) => !before.includes(l) && !previous.members.includes(l));
  const learnersOut = before.filter((l) => !learners.includes(l) && !members.includes(l));
  const parts: string[] = [];
  if (left.length > 0) parts.push(`${list(left)} left (stopped, unreachable or removed)`);
  if (joined.length > 0) parts.push(`${list(joined)} joined`);
  if (promoted.length > 0) parts.push(`${list(promoted, "learner")} became a member`);
  if (learnersIn.length > 0) parts.push(`${list(learnersIn, "learner")} joined`);
  if (learnersOut.length > 0) parts.push(`${list(learnersOut, "learner")} left`);
  if (parts.length === 0) {
    parts.push(rejoined ? "this replica rejoined" : "view change with the same members");
  }
  return { text: parts.join(", "), joined, left };
}

function list(ids: readonly ReplicaId[], what = "replica"): string {
  return `${ids.length === 1 ? what : `${what}s`} ${ids.join(",")}`;
}
