/**
 * Recovered state written by the release before the command registry: its operations were
 * `{kind: "put", key, value}` (and get, delete, has). They are converted to command lines once,
 * when a data directory is read, so that the core, the state machine and the peer wire only ever
 * see today's form. (Its snapshots' old map format is converted by `KvStore.restore`.)
 *
 * @module
 */
import type { DurableSnapshot, Entry, Install, Op, PersistRecord } from "../core/types.ts";

/**
 * An operation in the form of releases before the command registry (`{kind: "put", ...}`), as it
 * may still be found in an old write-ahead log, converted to a command line.
 */
export function upgradeOp(op: Op | Record<string, unknown>): Op {
  if (Array.isArray((op as Op).argv)) return op as Op;
  const o = op as { kind?: string; key?: string; value?: string };
  const key = String(o.key ?? "");
  switch (o.kind) {
    case "put":
      return { argv: ["SET", key, String(o.value ?? "")], time: 0 };
    case "get":
      return { argv: ["GET", key], time: 0 };
    case "delete":
      return { argv: ["DEL", key], time: 0 };
    case "has":
      return { argv: ["EXISTS", key], time: 0 };
    default:
      return { argv: [""], time: 0 };
  }
}

function upgradeEntry(e: Entry): Entry {
  const op = upgradeOp(e.cmd.op);
  return op === e.cmd.op ? e : { ...e, cmd: { ...e.cmd, op } };
}

function upgradeInstall(i: Install): Install {
  return { ...i, entries: i.entries.map(upgradeEntry) };
}

/** A log record with every operation in today's form (unchanged records are returned as is). */
export function upgradeRecord(r: PersistRecord): PersistRecord {
  if (r.r === "entry") {
    const entry = upgradeEntry(r.entry);
    return entry === r.entry ? r : { ...r, entry };
  }
  if (r.r === "accept") return { ...r, install: upgradeInstall(r.install) };
  return r;
}

/**
 * A durable snapshot with every operation in today's form (unchanged parts are shared). Log
 * records are upgraded one by one as they are checked (`checkLogRecord`).
 */
export function upgradeDurableSnapshot(s: DurableSnapshot): DurableSnapshot {
  return {
    ...s,
    holdback: s.holdback.map(upgradeEntry),
    ...(s.accepted && {
      accepted: { ...s.accepted, install: upgradeInstall(s.accepted.install) },
    }),
  };
}
