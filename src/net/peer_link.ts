/**
 * The outgoing link to one peer replica: connects with `Deno.connect` (or, with `tls`, over TLS
 * with `Deno.connectTls`, the peer's certificate checked against the CA), writes the hello frame,
 * reports "up" to its owner (who calls the core's `link-up` and writes the resulting sends before
 * anything else), then writes queued frames in order. On any write error, EOF or close it marks
 * itself down, discards what was queued (the core resends what is unacknowledged) and reconnects
 * with exponential back-off and jitter. It reads from its socket only to notice EOF.
 *
 * With a cluster key the hello carries a nonce and the link is up only once the peer's challenge
 * proved it holds the key and is the replica dialled; the link answers with its own proof, and
 * then seals every frame with a MAC (`src/net/peer_auth.ts`). A failed or unanswered handshake
 * drops the connection (logged at most once per peer per interval, whatever else was logged) and
 * the link retries with back-off as for any other failure.
 *
 * @module
 */
import type { PeerMessage, ReplicaId } from "../core/types.ts";
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from "./frame.ts";
import {
  decodePeerFrame,
  encodePeerFrame,
  msgsToWire,
  type PeerFrame,
  PIECE_HEADER_BYTES,
  wireUnits,
} from "./peer_codec.ts";
import { streamFrames } from "./peer_stream.ts";
import { yieldToLoop } from "../yield_to_loop.ts";
import { ConnWriter, errorText, Sleep } from "./conn_writer.ts";
import {
  DEFAULT_PEER_HELLO_TIMEOUT_SECONDS,
  MAX_LINK_QUEUED_BYTES,
  PEER_HELLO_MAX_FRAME_BYTES,
  PEER_PIECE_BYTES,
} from "../limits.ts";
import type { ByteConn } from "./listener.ts";
import { connectTls, type TlsClientConfig } from "./tls.ts";
import type { ByteTraffic } from "./traffic.ts";

/** Connect plus TLS handshake of a link must complete within this many ms. */
const TLS_CONNECT_TIMEOUT_MS = 10_000;
import { AuthError, type FrameSealer, InitiatorHandshake, MAC_BYTES } from "./peer_auth.ts";
import type { Log } from "../log/logger.ts";

/** Most streamed messages waiting on one link behind the one being written; more drop it. */
const MAX_WAITING_STREAMS = 4;

/**
 * What waits to be written behind a streamed message: an encoded frame payload, or a batch of
 * messages to stream (encoded piece by piece when its turn comes).
 */
type Waiting = Uint8Array | { stream: PeerMessage[] };

/** Default bound on bytes queued on one link before the connection is dropped: 64 MiB. */
export { MAX_LINK_QUEUED_BYTES };

/** Options of a {@link PeerLink}. */
export interface PeerLinkOptions {
  /** Our replica id (sent in the hello). */
  self: ReplicaId;
  /** The peer this link goes to. */
  peer: ReplicaId;
  /** The peer's host and peer port. */
  hostname: string;
  port: number;
  /** The cluster id (kept in the data directory; see `src/runtime/cluster_identity.ts`). */
  cluster: string;
  /**
   * Called synchronously right after (re)connecting, once the hello is queued: the owner calls the
   * core's `link-up` and passes the resulting messages to {@link PeerLink.send} before returning.
   */
  onUp: () => void;
  /**
   * One event per change that matters: `peer.up`, `peer.down` (lost, overflow),
   * `peer.unreachable`, `peer.auth_failed` (rate-limited).
   */
  log: Log;
  /** First reconnect delay (default 50 ms); doubles per failure up to `maxBackoffMs` (1 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Drop the connection when more than this many bytes are queued (default 64 MiB), not counting
   * the one streamed message being written piece by piece.
   */
  maxQueuedBytes?: number;
  /**
   * Batches encoded larger than this, and messages carrying a snapshot, are streamed as piece
   * frames of at most this many data bytes (default 4 MiB).
   */
  pieceBytes?: number;
  /** Source of randomness for jitter (default Math.random). */
  random?: () => number;
  /**
   * After a logged failure, a connection counts as restored (and is logged) once it has stayed up
   * this long (default 1 s); until then reconnects and losses are not logged again.
   */
  stableMs?: number;
  /** The cluster key: the link authenticates the peer and itself (default: none). */
  clusterKey?: Uint8Array;
  /** With a key: the peer must answer the hello with its challenge within this (default 5 s). */
  handshakeTimeoutMs?: number;
  /**
   * Connect over TLS with what this returns (called for every connection, so that reloaded
   * certificates are used by the next one). Default: plain TCP.
   */
  tls?: () => TlsClientConfig;
  /** Counts the bytes of every connection of the link (metrics). Default: not counted. */
  traffic?: ByteTraffic;
}

/** One live connection of a link. */
interface Session {
  conn: ByteConn;
  writer: ConnWriter;
  down: boolean;
  /** The handshake is done (at once without a key): frames may be sent. */
  ready: boolean;
  /** With a key: seals every frame after the handshake. */
  sealer?: FrameSealer;
  /**
   * What waits behind a streamed message being written piece by piece (in order; each frame is
   * sealed only when written, so MAC sequence numbers follow the write order).
   */
  waiting: Waiting[];
  /** Bytes of the encoded payloads in {@link Session.waiting}. */
  waitingBytes: number;
  /** Streamed messages in {@link Session.waiting}. */
  waitingStreams: number;
  /** True while the stream writer runs (it empties `waiting`, then ends). */
  writing: boolean;
  /** The stream writer's last run (awaited when the connection ends). */
  pieces: Promise<void>;
}

/**
 * The outgoing, reconnecting link to one peer. While {@link PeerLink.up}, {@link PeerLink.send}
 * queues a frame of messages; frames are written in order. While down, sends are dropped.
 *
 * A message carrying a snapshot (a replica's whole state), and a batch whose encoding is larger
 * than a piece (`PEER_PIECE_BYTES`), is streamed as consecutive `piece` frames
 * (`src/net/peer_stream.ts`), each encoded (and sealed) only once the socket took the previous one,
 * with the event loop let run between them: memory stays at the message itself plus the bounded
 * queue, the state is never one string, and the queue bound never drops the message being
 * written. What is sent meanwhile waits behind it, in order, and counts against the queue bound
 * (as do more than a few streamed messages waiting).
 */
export class PeerLink {
  /** The peer this link goes to. */
  readonly peer: ReplicaId;
  readonly #opts: PeerLinkOptions;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #maxQueued: number;
  readonly #pieceBytes: number;
  readonly #random: () => number;
  readonly #sleep = new Sleep();
  #abort: AbortController | undefined;
  #session: Session | undefined;
  #closed = false;
  #attempts = 0;
  #running: Promise<void> | undefined;
  /**
   * True after a failure was logged, until a connection stays up for `stableMs`: retries, and
   * connections that the peer drops at once (e.g. it refuses our hello), are not logged again.
   */
  #quiet = false;
  readonly #stableMs: number;

  /** Creates the link; nothing happens until {@link PeerLink.start}. */
  constructor(options: PeerLinkOptions) {
    this.peer = options.peer;
    this.#opts = options;
    this.#minBackoff = options.minBackoffMs ?? 50;
    this.#maxBackoff = options.maxBackoffMs ?? 1000;
    this.#maxQueued = options.maxQueuedBytes ?? MAX_LINK_QUEUED_BYTES;
    this.#pieceBytes = options.pieceBytes ?? PEER_PIECE_BYTES;
    if (
      !Number.isSafeInteger(this.#pieceBytes) || this.#pieceBytes < 1 ||
      this.#pieceBytes + PIECE_HEADER_BYTES + MAC_BYTES > MAX_FRAME_BYTES
    ) {
      throw new RangeError(`invalid pieceBytes: ${this.#pieceBytes} (a piece must fit a frame)`);
    }
    this.#random = options.random ?? Math.random;
    this.#stableMs = options.stableMs ?? 1000;
  }

  /** Connection attempts made so far (successful or not). */
  get attempts(): number {
    return this.#attempts;
  }

  /**
   * True while connected (from the hello, or with a key from the end of the handshake, until the
   * connection fails or is dropped).
   */
  get up(): boolean {
    return this.#session !== undefined && !this.#session.down && this.#session.ready;
  }

  /** Starts connecting (and reconnecting until {@link PeerLink.close}). */
  start(): void {
    if (this.#running !== undefined || this.#closed) return;
    this.#running = this.#run();
  }

  /**
   * Queues `msgs`, in order: a message carrying a snapshot is streamed on its own, the messages
   * between such go as one frame (streamed when its encoding is larger than a piece). Returns
   * false and drops them when the link is down. If more than the bound is queued, the connection
   * is dropped (logged) and this returns false.
   */
  send(msgs: PeerMessage[]): boolean {
    const session = this.#session;
    if (session === undefined || session.down || !session.ready) return false;
    for (const unit of wireUnits(msgs)) {
      const queued = "batch" in unit
        ? this.#sendBatch(session, unit.batch)
        : this.#enqueue(session, { stream: [unit.stream] });
      if (!queued) return false;
    }
    return true;
  }

  /** Queues `msgs` (none carries a snapshot) as one frame, or streamed when that is too large. */
  #sendBatch(session: Session, msgs: PeerMessage[]): boolean {
    let payload: Uint8Array | undefined;
    try {
      payload = encodePeerFrame({ kind: "msgs", msgs });
    } catch (err) {
      // JSON longer than the longest string: streamed, which never makes one.
      if (!(err instanceof RangeError)) throw err;
    }
    return this.#enqueue(
      session,
      payload !== undefined && payload.length <= this.#pieceBytes ? payload : { stream: msgs },
    );
  }

  /**
   * Writes `item` now (a small payload with nothing ahead of it), or queues it behind the stream
   * in progress and starts the stream writer if none runs. Drops the connection when too much is
   * queued.
   */
  #enqueue(session: Session, item: Waiting): boolean {
    const queued = session.writer.queuedBytes + session.waitingBytes;
    const streamed = !(item instanceof Uint8Array);
    if (
      queued > this.#maxQueued ||
      (streamed && session.waitingStreams >= MAX_WAITING_STREAMS)
    ) {
      this.#drop(
        session,
        queued > this.#maxQueued
          ? `more than ${this.#maxQueued} bytes queued for peer ${this.peer}, dropping the connection`
          : `more than ${MAX_WAITING_STREAMS} large messages queued for peer ${this.peer}, ` +
            "dropping the connection",
        true,
      );
      return false;
    }
    if (!session.writing && !streamed) return this.#emit(session, item);
    session.waiting.push(item);
    if (streamed) session.waitingStreams++;
    else session.waitingBytes += item.length;
    if (!session.writing) session.pieces = this.#writeWaiting(session);
    return true;
  }

  /** Frames (with a key: seals) one payload and queues it on the socket writer. */
  #emit(session: Session, payload: Uint8Array): boolean {
    const sealer = session.sealer;
    return session.writer.write(
      sealer === undefined ? encodeFrame(payload) : sealer.sealFrame(payload),
    );
  }

  /**
   * Writes the waiting items in order, a stream as piece frames: the next piece is encoded once
   * the writer has written the previous one, and the event loop runs between pieces. Ends when
   * nothing waits or the session is down.
   */
  async #writeWaiting(session: Session): Promise<void> {
    session.writing = true;
    try {
      while (!session.down && session.waiting.length > 0) {
        const item = session.waiting.shift()!;
        if (item instanceof Uint8Array) {
          session.waitingBytes -= item.length;
          this.#emit(session, item);
          continue;
        }
        session.waitingStreams--;
        for (const piece of streamFrames(msgsToWire(item.stream), this.#pieceBytes)) {
          while (!session.down && session.writer.queuedBytes > this.#pieceBytes) {
            await session.writer.idle();
          }
          if (session.down || !this.#emit(session, encodePeerFrame(piece))) return;
          // Let the replica serve between pieces: encoding one took a while.
          await yieldToLoop();
        }
      }
    } finally {
      session.writing = false;
    }
  }

  /** Stops reconnecting, closes the connection, and resolves when every socket op has ended. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    this.#sleep.cancel();
    if (this.#session !== undefined) this.#drop(this.#session, undefined);
    await this.#running;
  }

  /**
   * Marks the session down, discards its queue and closes its socket (idempotent). The reason is
   * logged unless the link is quiet (or closing); `always` logs it regardless.
   */
  /** Counts `n` bytes read from the peer (its handshake replies) in the port's traffic. */
  #countIn(n: number): void {
    if (this.#opts.traffic !== undefined) this.#opts.traffic.bytesIn += n;
  }

  #drop(session: Session, reason: string | undefined, always = false): void {
    if (session.down) return;
    session.down = true;
    session.writer.discard();
    session.waiting = [];
    session.waitingBytes = 0;
    session.waitingStreams = 0;
    try {
      session.conn.close();
    } catch {
      // already closed
    }
    if (reason !== undefined && !this.#closed && (!this.#quiet || always)) {
      this.#opts.log.info("peer.down", `lost link to peer ${this.peer}: ${reason}`, {
        peer: this.peer,
        reason,
      });
    }
    this.#quiet = true;
  }

  #jitter(delay: number): number {
    return delay / 2 + (delay / 2) * this.#random();
  }

  async #run(): Promise<void> {
    const { hostname, port } = this.#opts;
    let delay = this.#minBackoff;
    while (!this.#closed) {
      let conn: ByteConn;
      this.#abort = new AbortController();
      this.#attempts += 1;
      try {
        const tls = this.#opts.tls?.();
        conn = tls === undefined
          ? await Deno.connect({ hostname, port, signal: this.#abort.signal })
          : await connectTls(hostname, port, tls, TLS_CONNECT_TIMEOUT_MS, this.#abort.signal);
      } catch (err) {
        if (this.#closed) break;
        if (!this.#quiet) {
          this.#opts.log.warn(
            "peer.unreachable",
            `cannot reach peer ${this.peer} at ${hostname}:${port}: ${errorText(err)}; retrying`,
            { peer: this.peer, address: `${hostname}:${port}` },
          );
          this.#quiet = true;
        }
        await this.#sleep.wait(this.#jitter(delay));
        delay = Math.min(delay * 2, this.#maxBackoff);
        continue;
      } finally {
        this.#abort = undefined;
      }
      if (this.#closed) {
        conn.close();
        break;
      }
      const since = Date.now();
      await this.#serve(conn);
      if (this.#closed) break;
      // A connection that stayed up a while resets the back-off; one that drops at once does not.
      if (Date.now() - since >= this.#maxBackoff) delay = this.#minBackoff;
      await this.#sleep.wait(this.#jitter(delay));
      delay = Math.min(delay * 2, this.#maxBackoff);
    }
  }

  /**
   * Reads the peer's challenge and answers it; sets the session's sealer and marks it ready.
   * Returns why the handshake failed, or undefined when it succeeded.
   */
  async #handshake(
    session: Session,
    handshake: InitiatorHandshake,
  ): Promise<{ reason: string; kind: string } | undefined> {
    const ms = this.#opts.handshakeTimeoutMs ?? DEFAULT_PEER_HELLO_TIMEOUT_SECONDS * 1000;
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      try {
        session.conn.close();
      } catch {
        // already closed
      }
    }, ms);
    const decoder = new FrameDecoder(PEER_HELLO_MAX_FRAME_BYTES);
    const buf = new Uint8Array(PEER_HELLO_MAX_FRAME_BYTES);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await session.conn.read(buf);
          if (n !== null) this.#countIn(n);
        } catch (err) {
          if (late) return { reason: `no challenge within ${ms} ms`, kind: "timeout" };
          const reason = session.down ? "closed" : `read failed: ${errorText(err)}`;
          return { reason, kind: "read" };
        }
        if (late) return { reason: `no challenge within ${ms} ms`, kind: "timeout" };
        if (n === null) {
          return {
            reason: "closed by peer during the handshake (if it refused us, its log says why)",
            kind: "closed",
          };
        }
        decoder.push(buf.subarray(0, n));
        let frame: PeerFrame;
        try {
          const payload = decoder.next();
          if (payload === null) continue;
          frame = decodePeerFrame(payload);
          if (decoder.buffered > 0) throw new Error("data after the challenge");
        } catch (err) {
          return { reason: `malformed challenge: ${errorText(err)}`, kind: "malformed" };
        }
        try {
          const { auth, sealer } = handshake.onChallenge(frame);
          if (session.down) return { reason: "closed", kind: "read" };
          session.writer.write(encodeFrame(encodePeerFrame(auth)));
          session.sealer = sealer;
          session.ready = true;
          return undefined;
        } catch (err) {
          if (err instanceof AuthError) return { reason: err.message, kind: err.failure };
          throw err;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one connection until it ends; resolves once its read and writes have finished. */
  async #serve(conn: ByteConn): Promise<void> {
    try {
      conn.setNoDelay?.(true);
      conn.setKeepAlive?.(true);
    } catch {
      // best effort
    }
    const writer = new ConnWriter(
      conn,
      (err) => this.#drop(session, `write failed: ${errorText(err)}`),
      this.#opts.traffic,
    );
    const key = this.#opts.clusterKey;
    const session: Session = {
      conn,
      writer,
      down: false,
      ready: key === undefined,
      waiting: [],
      waitingBytes: 0,
      waitingStreams: 0,
      writing: false,
      pieces: Promise.resolve(),
    };
    this.#session = session;
    let stableTimer: ReturnType<typeof setTimeout> | undefined;
    const goUp = () => {
      const how = key === undefined ? "" : " (authenticated)";
      const connected =
        `connected to peer ${this.peer} at ${this.#opts.hostname}:${this.#opts.port}${how}`;
      const up = () =>
        this.#opts.log.info("peer.up", connected, {
          peer: this.peer,
          address: `${this.#opts.hostname}:${this.#opts.port}`,
        });
      if (!this.#quiet) {
        up();
      } else {
        stableTimer = setTimeout(() => {
          stableTimer = undefined;
          if (session.down) return;
          this.#quiet = false;
          up();
        }, this.#stableMs);
      }
      this.#opts.onUp();
    };
    if (key === undefined) {
      session.writer.write(
        encodeFrame(
          encodePeerFrame({ kind: "hello", from: this.#opts.self, cluster: this.#opts.cluster }),
        ),
      );
      goUp();
    } else {
      const handshake = new InitiatorHandshake({
        key,
        cluster: this.#opts.cluster,
        self: this.#opts.self,
        peer: this.peer,
      });
      session.writer.write(encodeFrame(encodePeerFrame(handshake.hello)));
      const refusal = await this.#handshake(session, handshake);
      if (refusal === undefined) {
        goUp();
      } else if (refusal.kind === "closed" || refusal.kind === "read") {
        // Like any lost connection (a proxy in front of a peer that is down closes it too). If the
        // peer refused our hello, its log says why.
        this.#drop(session, refusal.reason);
      } else {
        if (!session.down && !this.#closed) {
          this.#opts.log.limited(
            "warn",
            "peer.auth_failed",
            `${this.#opts.hostname}:${this.#opts.port}`,
            `cannot authenticate with peer ${this.peer} at ${this.#opts.hostname}:` +
              `${this.#opts.port}, closing the connection: ${refusal.reason}`,
            { peer: this.peer, failure: refusal.kind },
          );
        }
        this.#drop(session, undefined);
      }
    }

    const buf = new Uint8Array(512);
    let reason = "closed by peer";
    try {
      while (!session.down) {
        const n = await conn.read(buf);
        if (n === null) break;
        this.#countIn(n);
        // The peer never sends anything after accepting (or after its challenge).
        if (key !== undefined && n > 0) {
          reason = "the peer sent data after the handshake, which it never does";
          break;
        }
      }
    } catch (err) {
      reason = errorText(err);
    }
    if (stableTimer !== undefined) clearTimeout(stableTimer);
    this.#drop(session, reason);
    await session.pieces;
    await session.writer.idle();
    if (this.#session === session) this.#session = undefined;
  }
}
