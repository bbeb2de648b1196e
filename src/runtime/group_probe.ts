/**
 * Whether the replicas of the other groups of a sharded cluster are up, as seen from this one:
 * every second, each of them is sent a `PING` on its client port. One that accepts the connection
 * counts as online unless it answers `-LOADING` (it is not serving: no view); one that cannot be
 * reached within the timeout counts as offline. (An answer such as `-NOAUTH`, or none at all from
 * a TLS port, still means the replica is up.)
 *
 * The groups are independent replica sets and do not talk to each other; this is how a replica
 * names another group's master in `CLUSTER SLOTS` and `MOVED` (its lowest online id: the view
 * leader that group names itself, while its lowest-id replicas are up).
 *
 * A replica of a group other than the control group (the file's first) also learns newer slot
 * maps ({@link MapFollowing}): each round it reads `CLUSTER SLOTMAP` from a control group replica
 * that answered its last PING and, when that map's epoch is higher than its own group's copy,
 * submits `CLUSTER LOADSLOTMAP` of it into its group's order (idempotent: every replica of the
 * group may do so, the first one adopted wins and the others are no-ops). It does not log in: a
 * control group that requires a password (or speaks TLS) is not read, and its maps are then
 * loaded by the resharding tool only.
 *
 * @module
 */
import type { ReplicaAddress } from "../config/config.ts";
import type { ByteString } from "../core/types.ts";
import { encodeCommand, RespError, RespReplyParser, type RespValue } from "../net/resp.ts";

/** How a replica of a non-control group follows the control group's slot map. */
export interface MapFollowing {
  /** The control group's replicas (read in order; those that answered PING first). */
  sources: readonly ReplicaAddress[];
  /** The epoch of this group's copy of the map. */
  epoch(): number;
  /** Submits `LOADSLOTMAP`'s arguments (`<epoch> <start> <end> <group> ...`); resolves when answered. */
  load(args: ByteString[]): Promise<void>;
  /** Reads one replica's `CLUSTER SLOTMAP` (default: {@link readSlotMap}). */
  read?: (source: ReplicaAddress, timeoutMs: number) => Promise<RespValue | undefined>;
}

/** Options of a {@link GroupProbe}. */
export interface GroupProbeOptions {
  /** The replicas to probe (those of the other groups). */
  targets: readonly ReplicaAddress[];
  /** Time between two rounds (default 1000 ms). */
  intervalMs?: number;
  /** How long one probe may take, connecting and answering (default 500 ms). */
  timeoutMs?: number;
  /** One probe: true when the replica is up and serving (default: {@link pingProbe}). */
  probe?: (target: ReplicaAddress, timeoutMs: number) => Promise<boolean>;
  /** Follow the control group's slot map (a replica of another group); absent: do not. */
  follow?: MapFollowing;
}

const PING = new TextEncoder().encode("*1\r\n$4\r\nPING\r\n");

/**
 * Connects to `target`'s client port and sends `PING`: false when it cannot be reached in time or
 * answers `-LOADING`, else true.
 */
export async function pingProbe(target: ReplicaAddress, timeoutMs: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const connecting = Deno.connect({ hostname: target.host, port: target.clientPort });
    const connected = await Promise.race([connecting, timeout]);
    if (connected === "timeout") {
      connecting.then((c) => c.close(), () => {});
      return false;
    }
    conn = connected;
    await conn.write(PING);
    const buf = new Uint8Array(64);
    const read = await Promise.race([conn.read(buf), timeout]);
    // Connected: up, unless it says it is not serving.
    if (read === "timeout" || read === null) return true;
    return !new TextDecoder().decode(buf.subarray(0, read)).startsWith("-LOADING");
  } catch {
    return conn !== undefined;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Sends `CLUSTER SLOTMAP` to `source`'s client port: its reply, or undefined when it cannot be
 * reached or does not answer in time.
 */
export async function readSlotMap(
  source: ReplicaAddress,
  timeoutMs: number,
): Promise<RespValue | undefined> {
  const conn = await connectWithin(source, timeoutMs);
  if (conn === undefined) return undefined;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    await conn.write(encodeCommand(["CLUSTER", "SLOTMAP"]));
    const parser = new RespReplyParser();
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return undefined;
      parser.push(buf.subarray(0, n));
      const reply = parser.next();
      if (reply !== undefined) return reply;
    }
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

/** A connection to `target`'s client port within `timeoutMs`, or undefined. */
async function connectWithin(
  target: ReplicaAddress,
  timeoutMs: number,
): Promise<Deno.TcpConn | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const connecting = Deno.connect({ hostname: target.host, port: target.clientPort });
  try {
    const connected = await Promise.race([connecting, timeout]);
    if (connected !== "timeout") return connected;
    connecting.then((c) => c.close(), () => {});
    return undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `LOADSLOTMAP`'s arguments for a `CLUSTER SLOTMAP` reply (`[epoch, [start, end, group], ...]`)
 * whose epoch is above `epoch`; undefined for anything else.
 */
export function newerMapArgs(
  reply: RespValue | undefined,
  epoch: number,
): ByteString[] | undefined {
  if (!Array.isArray(reply) || typeof reply[0] !== "number" || reply[0] <= epoch) return undefined;
  const args = [String(reply[0])];
  for (const r of reply.slice(1)) {
    if (!Array.isArray(r) || r.length !== 3 || r.some((x) => x instanceof RespError)) {
      return undefined;
    }
    args.push(...r.map(String));
  }
  return args.length > 1 ? args : undefined;
}

/** Probes the other groups' replicas periodically; see the module documentation. */
export class GroupProbe {
  readonly #targets: readonly ReplicaAddress[];
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #probe: (target: ReplicaAddress, timeoutMs: number) => Promise<boolean>;
  readonly #follow: MapFollowing | undefined;
  /** The last result of each replica (absent: not probed yet). */
  readonly #online = new Map<number, boolean>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = true;

  /** A probe of `options.targets`; nothing is sent until {@link start}. */
  constructor(options: GroupProbeOptions) {
    this.#targets = options.targets;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 500;
    this.#probe = options.probe ?? pingProbe;
    this.#follow = options.follow;
  }

  /** Whether replica `id` answered its last probe (undefined: not probed yet). */
  online(id: number): boolean | undefined {
    return this.#online.get(id);
  }

  /** Starts the rounds (the first at once). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#round();
  }

  /** Stops probing (a round under way finishes, and its results are dropped). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One round: probes every target at once, then schedules the next. */
  async #round(): Promise<void> {
    const results = await Promise.all(
      this.#targets.map((t) => this.#probe(t, this.#timeoutMs).catch(() => false)),
    );
    if (this.#stopped) return;
    this.#targets.forEach((t, i) => this.#online.set(t.id, results[i]));
    await this.#followMap().catch(() => {});
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#round(), this.#intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Loads the control group's map when it is newer (see {@link MapFollowing}). */
  async #followMap(): Promise<void> {
    const follow = this.#follow;
    if (follow === undefined) return;
    const read = follow.read ?? readSlotMap;
    const sources = [...follow.sources].sort((a, b) =>
      Number(this.online(b.id) ?? false) - Number(this.online(a.id) ?? false)
    );
    for (const source of sources) {
      if (this.#stopped) return;
      const reply = await read(source, this.#timeoutMs);
      if (reply === undefined || reply instanceof RespError) continue;
      const args = newerMapArgs(reply, follow.epoch());
      if (args !== undefined) await follow.load(args);
      return;
    }
  }
}
