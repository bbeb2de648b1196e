/**
 * The last views a replica installed, with when and why (as far as it can tell from the members
 * before and after): what `/status` and the dashboard list as recent view changes.
 *
 * @module
 */
import type { ViewChangeReport } from "../http/health.ts";

/** Views kept. */
export const VIEW_HISTORY_LENGTH = 20;

/** Why the membership went from `before` (null: no view yet since start) to `after`. */
export function viewChangeCause(
  before: readonly number[] | null,
  after: readonly number[],
): string {
  if (before === null) return "first view since start";
  const joined = after.filter((m) => !before.includes(m));
  const left = before.filter((m) => !after.includes(m));
  const parts: string[] = [];
  if (left.length > 0) parts.push(`${names(left)} left (suspected or unreachable)`);
  if (joined.length > 0) parts.push(`${names(joined)} joined`);
  return parts.length > 0 ? parts.join("; ") : "same members (a view change was started)";
}

function names(ids: readonly number[]): string {
  return `${ids.length === 1 ? "replica" : "replicas"} ${ids.join(", ")}`;
}

/** The last {@link VIEW_HISTORY_LENGTH} installed views, oldest first. */
export class ViewHistory {
  readonly #views: ViewChangeReport[] = [];
  #members: number[] | null = null;
  #count = 0;

  /** Records that view `view` with `members` was installed at wall-clock `at` ms (once per view). */
  installed(view: number, members: readonly number[], at: number): void {
    if (this.#views.at(-1)?.view === view) return;
    const cause = viewChangeCause(this.#members, members);
    this.#members = [...members];
    this.#views.push({ view, members: [...members], at, cause });
    this.#count++;
    if (this.#views.length > VIEW_HISTORY_LENGTH) this.#views.shift();
  }

  /** The views kept, oldest first (copies). */
  list(): ViewChangeReport[] {
    return this.#views.map((v) => ({ ...v, members: [...v.members] }));
  }

  /** Views installed since start (including those no longer kept). */
  get count(): number {
    return this.#count;
  }
}
