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
 * @module
 */
import type { ReplicaAddress } from "../config/config.ts";

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

/** Probes the other groups' replicas periodically; see the module documentation. */
export class GroupProbe {
  readonly #targets: readonly ReplicaAddress[];
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #probe: (target: ReplicaAddress, timeoutMs: number) => Promise<boolean>;
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
    this.#timer = setTimeout(() => void this.#round(), this.#intervalMs);
    Deno.unrefTimer(this.#timer);
  }
}
