/**
 * How a joining replica with an empty data directory learns the id of the cluster it joins: it
 * connects to the peer port of the replicas of its config file, one after the other, sends a
 * `whois` frame instead of a hello, and takes the cluster id from the first `identity` answer
 * that checks out (`DiscoveryRequest` in `src/net/peer_auth.ts`): with a cluster key, only an
 * answer proving the key over this request's fresh nonce; without one, the first answer (as
 * unkeyed replicas trust any peer's hello). With `tls`, connections are made over TLS as the
 * peer links are. When no replica answers, it retries with back-off until one does (or `signal`
 * aborts, or `rounds` are spent).
 *
 * @module
 */
import type { ReplicaAddress } from "../config/config.ts";
import type { ReplicaId } from "../core/types.ts";
import type { Log } from "../log/logger.ts";
import { PEER_HELLO_MAX_FRAME_BYTES } from "../limits.ts";
import { ConnWriter, errorText, Sleep } from "./conn_writer.ts";
import { encodeFrame, FrameDecoder } from "./frame.ts";
import type { ByteConn } from "./listener.ts";
import { AuthError, DiscoveryRequest } from "./peer_auth.ts";
import { decodePeerFrame, encodePeerFrame } from "./peer_codec.ts";
import { connectTls, type TlsClientConfig } from "./tls.ts";

/** Options of {@link discoverClusterId}. */
export interface DiscoveryOptions {
  /** Our replica id (sent in the `whois`). */
  self: ReplicaId;
  /** The replicas to ask, in this order (ours, if listed, is skipped). */
  peers: readonly ReplicaAddress[];
  /** The cluster key: only answers proving it are taken (default: none). */
  clusterKey?: Uint8Array;
  /** Connect over TLS with what this returns (default: plain TCP). */
  tls?: () => TlsClientConfig;
  /** Failures are logged once per replica and reason; the result once. */
  log: Log;
  /** Connect plus answer of one replica must take at most this long (default 5 s). */
  answerTimeoutMs?: number;
  /** Pause after a round in which nobody answered: from `minBackoffMs` (200) doubling to 5 s. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Give up after this many rounds (default: never). */
  rounds?: number;
  /** Aborting stops the search (it then rejects with {@link DiscoveryError}). */
  signal?: AbortSignal;
}

/** No replica told us the cluster id (rounds spent, aborted, or nobody to ask). */
export class DiscoveryError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "DiscoveryError";
  }
}

/**
 * The cluster id, from the first replica of `peers` that answers and checks out, and that
 * replica's id.
 *
 * @throws {DiscoveryError} when `peers` holds no other replica, `rounds` are spent, or `signal`
 * aborts.
 */
export async function discoverClusterId(
  options: DiscoveryOptions,
): Promise<{ cluster: string; from: ReplicaId }> {
  const peers = options.peers.filter((p) => p.id !== options.self);
  if (peers.length === 0) {
    throw new DiscoveryError("no other replica in the config file to ask for the cluster id");
  }
  const sleep = new Sleep();
  const onAbort = () => sleep.cancel();
  options.signal?.addEventListener("abort", onAbort);
  const logged = new Set<string>();
  let delay = options.minBackoffMs ?? 200;
  const maxDelay = options.maxBackoffMs ?? 5000;
  try {
    for (let round = 1; options.rounds === undefined || round <= options.rounds; round++) {
      for (const peer of peers) {
        if (options.signal?.aborted) throw new DiscoveryError("stopped while asking");
        const answer = await ask(options, peer);
        if (typeof answer === "object") {
          options.log.info(
            "join.cluster_id",
            `learned cluster id ${answer.cluster} from replica ${peer.id} at ` +
              `${peer.host}:${peer.peerPort}`,
            { cluster: answer.cluster, peer: peer.id },
          );
          return { cluster: answer.cluster, from: peer.id };
        }
        const key = `${peer.id} ${answer}`;
        if (!logged.has(key)) {
          logged.add(key);
          options.log.warn(
            "join.ask_failed",
            `cannot learn the cluster id from replica ${peer.id} at ${peer.host}:` +
              `${peer.peerPort}: ${answer}; retrying`,
            { peer: peer.id },
          );
        }
      }
      if (options.rounds !== undefined && round >= options.rounds) break;
      await sleep.wait(delay);
      delay = Math.min(delay * 2, maxDelay);
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  if (options.signal?.aborted) throw new DiscoveryError("stopped while asking");
  throw new DiscoveryError(
    `no replica of the config file (${peers.map((p) => p.id).join(", ")}) told the cluster id`,
  );
}

/** Asks one replica; its answer, or why there is none. */
async function ask(
  options: DiscoveryOptions,
  peer: ReplicaAddress,
): Promise<{ cluster: string } | string> {
  const timeoutMs = options.answerTimeoutMs ?? 5000;
  const abort = new AbortController();
  let late = false;
  let conn: ByteConn | undefined;
  const timer = setTimeout(() => {
    late = true;
    abort.abort();
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }, timeoutMs);
  const stop = () => abort.abort();
  options.signal?.addEventListener("abort", stop);
  try {
    const { host: hostname, peerPort: port } = peer;
    try {
      const tls = options.tls?.();
      conn = tls === undefined
        ? await Deno.connect({ hostname, port, signal: abort.signal })
        : await connectTls(hostname, port, tls, timeoutMs, abort.signal);
    } catch (err) {
      return late ? `no connection within ${timeoutMs} ms` : `cannot connect: ${errorText(err)}`;
    }
    const request = new DiscoveryRequest({
      self: options.self,
      peer: peer.id,
      key: options.clusterKey,
    });
    new ConnWriter(conn, () => {}).write(encodeFrame(encodePeerFrame(request.whois)));
    const decoder = new FrameDecoder(PEER_HELLO_MAX_FRAME_BYTES);
    const buf = new Uint8Array(PEER_HELLO_MAX_FRAME_BYTES);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        return late ? `no answer within ${timeoutMs} ms` : `read failed: ${errorText(err)}`;
      }
      if (n === null) {
        return late
          ? `no answer within ${timeoutMs} ms`
          : "closed without an answer (if it refused us, its log says why)";
      }
      decoder.push(buf.subarray(0, n));
      try {
        const payload = decoder.next();
        if (payload === null) continue;
        return { cluster: request.onAnswer(decodePeerFrame(payload)) };
      } catch (err) {
        if (err instanceof AuthError) return err.message;
        return `malformed answer: ${errorText(err)}`;
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}
