/**
 * Online resharding of a sharded cluster: moves hash slots (and their keys) from group to group
 * while clients go on, by the procedure of the design (`CLUSTER SETSLOT / MIGRATEKEYS /
 * IMPORTKEYS / MIGRATEDONE / LOADSLOTMAP`). For each move of a slot range from group A to B:
 *
 * 1. B: `SETSLOT <range> IMPORTING A`; 2. A: `SETSLOT <range> MIGRATING B`;
 * 3. until A has none left: A: `MIGRATEKEYS <range> <batch>` gives a batch of keys (taken out of
 *    A's key space, in transit), B: `IMPORTKEYS A <id> <key> <payload> ...`, A: `MIGRATEDONE <id>`;
 * 4. the control group (the config file's first): `SETSLOT <range> NODE B`;
 * 5. every group (B first, then A, then the others): `LOADSLOTMAP` of the control group's map;
 *    then every group again, the control group included: the same map again ends the hand-over
 *    (from step 4 until then, A answers ASK for the range instead of MOVED: B may still hold the
 *    old map, where the range is A's, and would answer MOVED back to A).
 *
 * Every step is idempotent on the servers (a second IMPORTKEYS of a batch is ignored, a second
 * MIGRATEKEYS returns the keys still in transit, ...), and the moves are planned from the control
 * group's map, which changes only when a move ends (step 4): a run stopped at any point is resumed
 * by running the same command again. Each run first pushes the control group's map to every
 * group (finishing steps 5 and 6 of a run stopped there), then plans and moves.
 *
 * The module talks to the groups through {@link ShardedCluster} only, so that it runs against
 * real groups (the command-line client, `reshard_cli.ts`), an in-memory fake (unit tests) or a
 * simulator alike.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { SlotMap, type SlotRange } from "../kv/slot_map.ts";
import { slotRange, SLOTS } from "../kv/slots.ts";
import { RespError, type RespValue } from "../net/resp.ts";

/** One replica group, as the procedure talks to it. */
export interface GroupLink {
  /**
   * Sends one command to the group (any replica of it) and returns its reply, an error reply as a
   * {@link RespError} value.
   *
   * @throws when the group cannot answer (the command may or may not have been applied).
   */
  call(argv: ByteString[]): Promise<RespValue>;
}

/** The groups of a sharded cluster. */
export interface ShardedCluster {
  /** The group names in the config file's order: the first is the control group. */
  readonly groups: readonly string[];
  /** The link to group `name` (one of {@link groups}). */
  link(name: string): GroupLink;
}

/** Slots `start`..`end` (inclusive) to move from group `from` to group `to`. */
export interface Move {
  from: string;
  to: string;
  start: number;
  end: number;
}

/** How far a run got (reported after every batch of keys and at the end of every move). */
export interface ReshardProgress {
  /** The move under way. */
  move: Move;
  /** Its position among the run's moves (1-based) and their number. */
  index: number;
  moves: number;
  /** Keys moved so far in this run (all moves), and their bytes (keys and payloads). */
  keys: number;
  bytes: number;
  /** Milliseconds since the run started. */
  elapsedMs: number;
  /** The move has ended (its slots are assigned to its target group). */
  moveDone: boolean;
}

/** What a run did. */
export interface ReshardSummary {
  /** The moves made (none: nothing to do). */
  moves: Move[];
  /** Keys moved and their bytes (keys and payloads). */
  keys: number;
  bytes: number;
  elapsedMs: number;
  /** The epoch of the slot map every group holds at the end. */
  epoch: number;
}

/** Options of a run. */
export interface ReshardOptions {
  /** Keys per MIGRATEKEYS batch (default {@link DEFAULT_BATCH}). */
  batch?: number;
  /** Called after every batch of keys and at the end of every move. */
  onProgress?: (progress: ReshardProgress) => void;
  /** The clock, in ms (default `performance.now`). */
  now?: () => number;
}

/** Default keys per batch. */
export const DEFAULT_BATCH = 500;
/**
 * Most keys per batch: an IMPORTKEYS of a batch has two arguments per key and must stay within
 * a request's 65,536 (`MAX_MULTIBULK_LEN`).
 */
export const MAX_BATCH = 32_000;

/** A failed step, a refusal of a group, or bad input: the message says which. */
export class ReshardError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ReshardError";
  }
}

/** `start-end` (or `slot`): an inclusive range of slots ({@link slotRange}), else a ReshardError. */
export function parseSlotRange(text: string): { start: number; end: number } {
  const range = slotRange(text);
  if (range !== undefined) return range;
  throw new ReshardError(
    `bad slot range '${text}': expected <start>-<end> (or one slot) with 0 <= start <= end <= ${
      SLOTS - 1
    }`,
  );
}

/** `start-end`, or `slot` for a range of one. */
export function rangeText(r: { start: number; end: number }): string {
  return r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`;
}

/**
 * The moves that give slots `start`..`end` to group `to` in `map`: each range of another group
 * within them, grouped by source group (in the map's group order), ascending.
 */
export function planReshard(map: SlotMap, start: number, end: number, to: string): Move[] {
  if (!map.groups.includes(to)) {
    throw new ReshardError(`unknown group '${to}' (the groups: ${map.groups.join(", ")})`);
  }
  const moves: Move[] = [];
  for (const from of map.groups) {
    if (from === to) continue;
    for (const r of map.rangesOf(from)) {
      const a = Math.max(r.start, start);
      const b = Math.min(r.end, end);
      if (a <= b) moves.push({ from, to, start: a, end: b });
    }
  }
  return moves;
}

/**
 * How many slots each group of `map` should own for even counts: 16384 / n each, the remainder
 * one more each for the groups that own the most now (ties: the earlier in the map's order), so
 * that as few slots as possible move.
 */
export function balancedCounts(map: SlotMap): Map<string, number> {
  const n = map.groups.length;
  const base = Math.floor(SLOTS / n);
  const extra = SLOTS % n;
  const ranked = map.groups.map((group, index) => ({ group, index, count: map.count(group) }))
    .sort((a, b) => b.count - a.count || a.index - b.index);
  return new Map(ranked.map((g, rank) => [g.group, base + (rank < extra ? 1 : 0)]));
}

/**
 * The moves that even out the slot counts of `map` ({@link balancedCounts}) moving the fewest
 * slots: each group with too many gives its highest slots to the groups with too few, both taken
 * in the map's group order. The plan depends only on the map, and a move changes the map only
 * when it ends; a rerun after an interruption therefore plans the interrupted move first again.
 */
export function planRebalance(map: SlotMap): Move[] {
  const target = balancedCounts(map);
  const donors = map.groups.map((g) => ({ group: g, left: map.count(g) - target.get(g)! }))
    .filter((d) => d.left > 0);
  const receivers = map.groups.map((g) => ({ group: g, left: target.get(g)! - map.count(g) }))
    .filter((r) => r.left > 0);
  const moves: Move[] = [];
  let r = 0;
  for (const donor of donors) {
    // Its ranges from the highest slot down.
    const ranges = map.rangesOf(donor.group).map((x) => ({ ...x })).reverse();
    while (donor.left > 0 && r < receivers.length) {
      const receiver = receivers[r];
      let k = Math.min(donor.left, receiver.left);
      donor.left -= k;
      receiver.left -= k;
      while (k > 0) {
        const top = ranges[0];
        const size = Math.min(k, top.end - top.start + 1);
        moves.push({
          from: donor.group,
          to: receiver.group,
          start: top.end - size + 1,
          end: top.end,
        });
        top.end -= size;
        if (top.end < top.start) ranges.shift();
        k -= size;
      }
      if (receiver.left === 0) r++;
    }
  }
  return moves;
}

/**
 * The slot map of a `CLUSTER SLOTMAP` reply (`[epoch, [start, end, group], ...]`) of a cluster of
 * `groups`.
 *
 * @throws {ReshardError} when it is not one.
 */
export function parseSlotMapReply(reply: RespValue, groups: readonly string[]): SlotMap {
  const bad = (why: string) =>
    new ReshardError(`unexpected CLUSTER SLOTMAP reply (${why}): ${JSON.stringify(reply)}`);
  if (!Array.isArray(reply) || reply.length === 0) throw bad("not an array");
  const epoch = Number(reply[0]);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw bad("bad epoch");
  const ranges: SlotRange[] = reply.slice(1).map((r) => {
    if (!Array.isArray(r) || r.length !== 3 || typeof r[2] !== "string") throw bad("bad range");
    return { start: Number(r[0]), end: Number(r[1]), group: r[2] };
  });
  try {
    return new SlotMap(epoch, groups, ranges);
  } catch (e) {
    throw bad(e instanceof Error ? e.message : String(e));
  }
}

/** The `CLUSTER LOADSLOTMAP` command line of `map`. */
export function loadSlotMapCommand(map: SlotMap): ByteString[] {
  return [
    "CLUSTER",
    "LOADSLOTMAP",
    String(map.epoch),
    ...map.ranges.flatMap((r) => [String(r.start), String(r.end), r.group]),
  ];
}

/**
 * Gives slots `start`..`end` to group `to` (see the module documentation): the slots already
 * there stay, the others move with their keys.
 *
 * @throws {ReshardError} for an unknown group, a refusal of a group or a reply that makes no
 * sense; whatever the link throws when a group cannot answer.
 */
export async function reshard(
  cluster: ShardedCluster,
  slots: { start: number; end: number },
  to: string,
  options: ReshardOptions = {},
): Promise<ReshardSummary> {
  if (!cluster.groups.includes(to)) {
    throw new ReshardError(`unknown group '${to}' (the groups: ${cluster.groups.join(", ")})`);
  }
  const run = new Run(cluster, options);
  return await run.run((map) => planReshard(map, slots.start, slots.end, to));
}

/**
 * Evens out the slot counts of the groups ({@link planRebalance}), moving the keys with them.
 *
 * @throws as {@link reshard}.
 */
export async function rebalance(
  cluster: ShardedCluster,
  options: ReshardOptions = {},
): Promise<ReshardSummary> {
  const run = new Run(cluster, options);
  return await run.run(planRebalance);
}

/** One run of the procedure. */
class Run {
  readonly #cluster: ShardedCluster;
  readonly #batch: number;
  readonly #onProgress: (progress: ReshardProgress) => void;
  readonly #now: () => number;
  readonly #started: number;
  #keys = 0;
  #bytes = 0;

  constructor(cluster: ShardedCluster, options: ReshardOptions) {
    this.#cluster = cluster;
    this.#batch = options.batch ?? DEFAULT_BATCH;
    if (!Number.isSafeInteger(this.#batch) || this.#batch < 1 || this.#batch > MAX_BATCH) {
      throw new ReshardError(`the batch must be 1 to ${MAX_BATCH} keys, got ${options.batch}`);
    }
    this.#onProgress = options.onProgress ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    this.#started = this.#now();
  }

  get #control(): string {
    return this.#cluster.groups[0];
  }

  async run(plan: (map: SlotMap) => Move[]): Promise<ReshardSummary> {
    let map = await this.#controlMap();
    // A run stopped between steps 4 and 5 left groups with an older map.
    await this.#publish(map, []);
    const moves = plan(map);
    for (const [i, move] of moves.entries()) {
      map = await this.#move(move, i + 1, moves.length, map.epoch);
    }
    return {
      moves,
      keys: this.#keys,
      bytes: this.#bytes,
      elapsedMs: this.#now() - this.#started,
      epoch: map.epoch,
    };
  }

  /** Runs one move (steps 1 to 6); returns the control group's map after it. */
  async #move(move: Move, index: number, moves: number, epoch: number): Promise<SlotMap> {
    const { from, to } = move;
    const slots = rangeText(move);
    // Every step names the epoch the move was planned at: a copy of a step held somewhere and
    // ordered after this move ended (the tool retried it elsewhere and went on) is refused.
    const at = ["EPOCH", String(epoch)];
    await this.#ok(to, ["CLUSTER", "SETSLOT", slots, "IMPORTING", from, ...at]);
    await this.#ok(from, ["CLUSTER", "SETSLOT", slots, "MIGRATING", to, ...at]);
    const report = (moveDone: boolean) =>
      this.#onProgress({
        move,
        index,
        moves,
        keys: this.#keys,
        bytes: this.#bytes,
        elapsedMs: this.#now() - this.#started,
        moveDone,
      });
    let previous: string | null = null;
    while (true) {
      const batch = await this.#migrateKeys(from, slots);
      if (batch.pairs.length === 0) break;
      if (batch.id === previous) {
        // MIGRATEDONE did not drop it: going on would loop for ever.
        throw new ReshardError(`${from}: MIGRATEKEYS ${slots} returned batch ${batch.id} again`);
      }
      previous = batch.id;
      const imported = await this.#call(to, [
        "CLUSTER",
        "IMPORTKEYS",
        from,
        batch.id,
        ...at,
        ...batch.pairs,
      ]);
      if (imported !== 0 && imported !== 1) throw this.#unexpected(to, "IMPORTKEYS", imported);
      const dropped = await this.#call(from, ["CLUSTER", "MIGRATEDONE", batch.id]);
      if (typeof dropped !== "number") throw this.#unexpected(from, "MIGRATEDONE", dropped);
      this.#keys += batch.pairs.length / 2;
      for (const s of batch.pairs) this.#bytes += s.length;
      report(false);
    }
    const next = await this.#call(this.#control, ["CLUSTER", "SETSLOT", slots, "NODE", to, ...at]);
    if (typeof next !== "number") throw this.#unexpected(this.#control, "SETSLOT NODE", next);
    const map = await this.#controlMap();
    await this.#publish(map, [to, from]);
    report(true);
    return map;
  }

  /** A MIGRATEKEYS batch: its id and its keys and payloads, alternating (none: no key left). */
  async #migrateKeys(from: string, slots: string): Promise<{ id: string; pairs: ByteString[] }> {
    const reply = await this.#call(from, [
      "CLUSTER",
      "MIGRATEKEYS",
      slots,
      String(this.#batch),
    ]);
    const id = Array.isArray(reply) ? reply[0] : undefined;
    const pairs = Array.isArray(reply) ? reply.slice(1) : [];
    if (
      (typeof id !== "string" && typeof id !== "number") || pairs.length % 2 !== 0 ||
      !pairs.every((x) => typeof x === "string")
    ) {
      throw this.#unexpected(from, "MIGRATEKEYS", reply);
    }
    return { id: String(id), pairs: pairs as ByteString[] };
  }

  /** The control group's slot map. */
  async #controlMap(): Promise<SlotMap> {
    const reply = await this.#call(this.#control, ["CLUSTER", "SLOTMAP"]);
    return parseSlotMapReply(reply, this.#cluster.groups);
  }

  /**
   * Sends `map` to every group but the control group (which made it): those of `first` first,
   * then the others in the file's order (a group whose copy is as new answers 0); then to every
   * group again, control group included, which ends their hand-overs (a group that gave slots
   * away answers ASK for them until then, so that no client is sent back and forth between a
   * group with the new map and one with the old).
   */
  async #publish(map: SlotMap, first: readonly string[]): Promise<void> {
    const order = [...new Set([...first, ...this.#cluster.groups])];
    for (const group of order) {
      if (group === this.#control) continue;
      await this.#load(group, map);
    }
    for (const group of order) await this.#load(group, map);
  }

  /** `LOADSLOTMAP` of `map` at `group`. */
  async #load(group: string, map: SlotMap): Promise<void> {
    const adopted = await this.#call(group, loadSlotMapCommand(map));
    if (adopted !== 0 && adopted !== 1) throw this.#unexpected(group, "LOADSLOTMAP", adopted);
  }

  /** Sends `argv` to `group`; an error reply throws. */
  async #call(group: string, argv: ByteString[]): Promise<RespValue> {
    const reply = await this.#cluster.link(group).call(argv);
    if (reply instanceof RespError) {
      throw new ReshardError(
        `group ${group} refused ${argv.slice(0, 4).join(" ")}${argv.length > 4 ? " ..." : ""}: ` +
          reply.message,
      );
    }
    return reply;
  }

  /** Sends `argv` to `group` and expects OK. */
  async #ok(group: string, argv: ByteString[]): Promise<void> {
    const reply = await this.#call(group, argv);
    if (reply !== "OK") throw this.#unexpected(group, argv.slice(1, 2).join(" "), reply);
  }

  #unexpected(group: string, what: string, reply: RespValue): ReshardError {
    return new ReshardError(`group ${group}: unexpected ${what} reply ${JSON.stringify(reply)}`);
  }
}

/**
 * One line of progress: `moved 1200 keys (0.12 MB) in 1.5 s: 800 keys/s, 0.08 MB/s` (MB: 10^6
 * bytes of keys and payloads).
 */
export function formatRate(keys: number, bytes: number, elapsedMs: number): string {
  const seconds = Math.max(elapsedMs, 1) / 1000;
  const mb = bytes / 1e6;
  return `moved ${keys} keys (${mb.toFixed(2)} MB) in ${seconds.toFixed(1)} s: ` +
    `${Math.round(keys / seconds)} keys/s, ${(mb / seconds).toFixed(2)} MB/s`;
}
