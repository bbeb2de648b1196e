/**
 * Why a replica installed a view, for its `view.installed` log event: the members that joined and
 * left since the last view it served in.
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

/**
 * Compares the new view's `members` with those of the last view served in (`previous`,
 * undefined before the first); `wasServing` is false when this replica was out of the view.
 */
export function viewCause(
  previous: readonly ReplicaId[] | undefined,
  members: readonly ReplicaId[],
  wasServing: boolean,
): ViewCause {
  if (previous === undefined) return { text: "first view since start", joined: [], left: [] };
  const joined = members.filter((m) => !previous.includes(m));
  const left = previous.filter((m) => !members.includes(m));
  const parts: string[] = [];
  if (left.length > 0) parts.push(`${list(left)} left (stopped or unreachable)`);
  if (joined.length > 0) parts.push(`${list(joined)} joined`);
  if (parts.length === 0) {
    parts.push(wasServing ? "view change with the same members" : "this replica rejoined");
  }
  return { text: parts.join(", "), joined, left };
}

function list(ids: readonly ReplicaId[]): string {
  return `${ids.length === 1 ? "replica" : "replicas"} ${ids.join(",")}`;
}
