/**
 * The last views a replica installed, with when and why: what `/status` and the dashboard list as recent view changes.
 *
 * @module
 */
import type { ViewChangeReport } from "../http/health.ts";

/** Views kept. */
export const VIEW_HISTORY_LENGTH = 20;

/** The last {@link VIEW_HISTORY_LENGTH} installed views, oldest first. */
export class ViewHistory {
  readonly #views: ViewChangeReport[] = [];
  #count = 0;

  /**
   * Records that view `view` with `members` was installed at wall-clock `at` ms, and why (see
   * `viewCause` in `./view_cause.ts`); once per view.
   */
  installed(view: number, members: readonly number[], at: number, cause: string): void {
    if (this.#views.at(-1)?.view === view) return;
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
