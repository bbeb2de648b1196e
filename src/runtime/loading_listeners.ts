/**
 * Listeners that answer while a replica loads its data directory. A restart restores the snapshot
 * and re-delivers the log before the replica opens its ports, without yielding (tens of seconds at
 * millions of keys); a closed port looks like a dead process to clients and supervisors. So,
 * meanwhile, a worker thread (`loading_worker.ts`) listens on the client port and answers every
 * command with `-LOADING` (as Redis does while it loads its data set; INFO with `loading:1` and how
 * far loading has come, QUIT with `+OK`), and on the HTTP port answers `/livez` with 200 and every
 * other path with 503. {@link LoadingListeners.close}
 * closes them (and their connections: clients reconnect) just before the replica's own listeners
 * open on the same ports.
 *
 * @module
 */
import type { ClientAuth, TlsMaterial } from "../net/tls.ts";
import { LAMPORTKV_VERSION, REDIS_VERSION } from "../version.ts";

/** The error every command gets from a replica still loading its data directory. */
export const LOADING_REPLY = "LOADING lamportkv replica is loading its data directory";

/** The reason `/readyz` (and every path but `/livez`) gives meanwhile. */
export const LOADING_HTTP_REASON = "loading the data directory";

/** How far loading has come, in bytes of the data directory (its snapshot file, then its log). */
export interface LoadingProgress {
  /** When loading started, ms since the epoch. */
  startedMs: number;
  /** Bytes to load (0 until the first report: the snapshot file's, then the log's too). */
  totalBytes: number;
  /**
   * Bytes loaded: half of the snapshot file's as it is read, the other half's share of the keys
   * restored, then the log's replayed (`LoadProgress`).
   */
  loadedBytes: number;
  /** Now, ms since the epoch (for the time to go). */
  nowMs: number;
}

/**
 * INFO's text meanwhile: Redis's server and persistence sections with `loading:1` (a client such
 * as ioredis then waits and asks again) and Redis's loading fields: `loading_start_time` (epoch
 * seconds), `loading_total_bytes`, `loading_loaded_bytes`, `loading_loaded_perc` (two decimals)
 * and, once something is loaded, `loading_eta_seconds` (at the rate so far). It has no lamportkv
 * section: there is no state yet.
 */
export function loadingInfo(clientPort: number, progress: LoadingProgress): string {
  const { startedMs, totalBytes, loadedBytes, nowMs } = progress;
  const perc = totalBytes > 0 ? (100 * loadedBytes) / totalBytes : 0;
  // The rest at the rate so far; no rate before anything is loaded.
  const etaSeconds = ((nowMs - startedMs) / 1000) * (totalBytes - loadedBytes) / loadedBytes;
  const eta = loadedBytes > 0 ? [`loading_eta_seconds:${Math.round(etaSeconds)}`] : [];
  const lines = [
    "# Server",
    `redis_version:${REDIS_VERSION}`,
    "redis_mode:cluster",
    `lamportkv_version:${LAMPORTKV_VERSION}`,
    `os:${Deno.build.os}`,
    "arch_bits:64",
    `process_id:${Deno.pid}`,
    `tcp_port:${clientPort}`,
    "",
    "# Persistence",
    "loading:1",
    `loading_start_time:${Math.floor(startedMs / 1000)}`,
    `loading_total_bytes:${totalBytes}`,
    `loading_loaded_bytes:${loadedBytes}`,
    `loading_loaded_perc:${perc.toFixed(2)}`,
    ...eta,
    "aof_enabled:0",
  ];
  return lines.map((l) => `${l}\r\n`).join("");
}

/** What the worker is started with. */
export interface LoadingStart {
  type: "start";
  /** The replica's id (labels the worker's log lines). */
  id: number;
  hostname: string;
  clientPort: number;
  httpPort?: number;
  /** Connections held at once (the `maxclients` setting); more are closed at once. */
  maxClients: number;
  /** The client port's TLS, when it has TLS. */
  tls?: { material: TlsMaterial; clientAuth: ClientAuth };
}

/** The loading listeners of one start; {@link close} once the replica is ready to listen. */
export interface LoadingListeners {
  /** Whether they are listening (false: the ports could not be taken, e.g. in use). */
  readonly listening: boolean;
  /** Why they are not listening, when they are not. */
  readonly failure?: string;
  /**
   * Tells INFO how far loading has come (`loaded` of `total` bytes). Callable while the calling
   * thread is busy loading: the worker takes the message on its own thread.
   */
  progress(loaded: number, total: number): void;
  /** Closes the listeners and their connections and ends the worker; idempotent. */
  close(): Promise<void>;
}

/** A progress report to the worker. */
export interface LoadingProgressMessage {
  type: "progress";
  loaded: number;
  total: number;
}

/** Starts the loading listeners of `start`; resolves once they listen or could not. */
export async function startLoadingListeners(
  start: Omit<LoadingStart, "type">,
): Promise<LoadingListeners> {
  const worker = new Worker(new URL("./loading_worker.ts", import.meta.url), { type: "module" });
  const replies: ((msg: { type: string; message?: string }) => void)[] = [];
  worker.onmessage = (e) => replies.shift()?.(e.data);
  const next = () => new Promise<{ type: string; message?: string }>((r) => replies.push(r));
  const started = next();
  worker.postMessage({ type: "start", ...start } satisfies LoadingStart);
  const first = await started;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const closed = next();
      worker.postMessage({ type: "close" });
      await closed;
      worker.terminate();
    })();
    return closing;
  };
  const progress = (loaded: number, total: number) => {
    if (closing !== undefined) return;
    worker.postMessage({ type: "progress", loaded, total } satisfies LoadingProgressMessage);
  };
  if (first.type === "listening") return { listening: true, progress, close };
  await close();
  return { listening: false, failure: first.message ?? "unknown", progress, close };
}
