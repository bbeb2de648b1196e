/**
 * The coordinator's decision in a view change, as a pure function of the members' flush reports:
 * which log every member of the new view starts from, and what each one lacks of it.
 *
 * Base: the report with the greatest (view, committed, length) key. A member that is normal in
 * view K holds every entry delivered anywhere in K (delivery needed its ack); an accepted but
 * uncommitted install of view n > K is the only candidate content of n, which may have been
 * committed (and answered) by members that are not here, so it must be kept.
 *
 * Union: when the base is normal in K, every undelivered entry of K held by a member normal in K,
 * that sorts after the base's last delivered entry, is appended in (ts, origin) order. Entries
 * sorting before it were delivered by the base already (the delivery rule guarantees it had them
 * all); entries of older views were never delivered and are dropped.
 *
 * The reports come from peers: reports that contradict each other (logs that disagree, a member
 * beyond the base, a gap nothing can fill) are refused with a {@link ReportConflict}, never
 * asserted.
 *
 * @module
 */
import { invariant } from "./assert.ts";
import { compareEntries, entryId } from "./holdback.ts";
import type { Entry, FlushReport, Install, ReplicaId, Snapshot } from "./types.ts";

/** The flush reports contradict each other: no view can be planned from them. */
export class ReportConflict extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ReportConflict";
  }
}

function conflict(condition: unknown, message: () => string): asserts condition {
  if (!condition) throw new ReportConflict(message());
}

/** What the coordinator itself can supply besides the reports. */
export interface CoordinatorLog {
  /** Its delivered index (its state is at exactly this index during the change). */
  delivered: number;
  /** Its retained delivered entry at `index`, if any. */
  entry(index: number): Entry | undefined;
  /** Its state at `delivered` (called only when some member needs it). */
  snapshot(): Snapshot;
}

/** The decided start of the new view. */
export interface ViewPlan {
  /** Index of the last entry every member holds once installed. */
  end: number;
  /** Per member, what to send it. */
  installs: Map<ReplicaId, Install>;
}

type Key = [number, number, number];

function reportKey(r: FlushReport): Key {
  if (r.accepted) {
    const { install } = r.accepted;
    return [r.accepted.view, 0, install.from - 1 + install.entries.length];
  }
  return [r.normalView, 1, r.delivered];
}

function greater(a: Key, b: Key): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return false;
}

/**
 * Decides the new view's starting log from every member's report (the coordinator's included).
 *
 * @throws {ReportConflict} when the reports contradict each other.
 */
export function planView(
  reports: ReadonlyMap<ReplicaId, FlushReport>,
  coordinator: CoordinatorLog,
): ViewPlan {
  invariant(reports.size > 0, "a view needs members");
  let winner: FlushReport | undefined;
  for (const report of reports.values()) {
    if (!winner || greater(reportKey(report), reportKey(winner))) winner = report;
  }
  const base = winner!;

  // Every entry we can name by index, and every snapshot we could start a member from.
  const known = new Map<number, Entry>();
  const snapshots: Snapshot[] = [];
  const learn = (from: number, entries: Entry[]) =>
    entries.forEach((e, i) => {
      const had = known.get(from + i);
      conflict(
        had === undefined || entryId(had) === entryId(e),
        () => `logs disagree at index ${from + i}: ${entryId(had!)} vs ${entryId(e)}`,
      );
      known.set(from + i, e);
    });
  for (const report of reports.values()) {
    learn(report.log.from, report.log.entries);
    if (report.snapshot) snapshots.push(report.snapshot);
  }
  if (base.accepted) {
    learn(base.accepted.install.from, base.accepted.install.entries);
    if (base.accepted.install.snapshot) snapshots.push(base.accepted.install.snapshot);
  }
  const baseEnd = reportKey(base)[2];

  // The union of undelivered entries of the base's view, after its last delivered entry.
  let end = baseEnd;
  if (!base.accepted) {
    const view = base.normalView;
    const cut = base.last && base.last.view === view ? base.last : null;
    const seen = new Set<string>();
    const union: Entry[] = [];
    for (const report of reports.values()) {
      if (report.accepted || report.normalView !== view) continue;
      for (const e of report.holdback) {
        conflict(e.view === view, () => `holdback entry of view ${e.view} reported for ${view}`);
        const id = entryId(e);
        if (seen.has(id) || (cut && compareEntries(e, cut) <= 0)) continue;
        seen.add(id);
        union.push(e);
      }
    }
    union.sort(compareEntries);
    for (const e of union) known.set(++end, e);
  }

  const entryAt = (i: number) => known.get(i) ?? coordinator.entry(i);
  const available = (from: number) => {
    for (let i = from; i <= end; i++) if (entryAt(i) === undefined) return false;
    return true;
  };
  const range = (from: number) =>
    Array.from({ length: end - from + 1 }, (_, k) => entryAt(from + k)!);

  const installs = new Map<ReplicaId, Install>();
  let ownSnapshot: Snapshot | undefined;
  for (const [member, report] of reports) {
    conflict(
      report.delivered <= end,
      () => `member ${member} delivered ${report.delivered} beyond the base end ${end}`,
    );
    if (!report.blank && available(report.delivered + 1)) {
      installs.set(member, { from: report.delivered + 1, entries: range(report.delivered + 1) });
      continue;
    }
    let snapshot = snapshots.find((s) => s.index <= end && available(s.index + 1));
    if (!snapshot && available(coordinator.delivered + 1)) {
      ownSnapshot ??= coordinator.snapshot();
      snapshot = ownSnapshot;
    }
    conflict(
      snapshot,
      () => `no way to bring member ${member} from ${report.delivered} to ${end}`,
    );
    installs.set(member, {
      snapshot,
      from: snapshot.index + 1,
      entries: range(snapshot.index + 1),
    });
  }
  return { end, installs };
}
