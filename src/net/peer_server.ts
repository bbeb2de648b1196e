/**
 * The listener on a replica's peer port. Every incoming connection must open with a valid hello
 * (`from` any replica id other than ours, `cluster` equal to ours) or it is logged and closed.
 * The id need not be in this replica's config file: a joining replica is in nobody's file, and
 * the core decides what to do with messages of a replica outside its configuration (it may
 * refuse them, which closes the connection). After that each frame is decoded and its messages
 * delivered to the owner, in the order the peer sent them. A malformed frame closes that
 * connection (logged), never the process. A new connection from peer p replaces p's older one:
 * the old one is closed and anything more read from it is ignored, so p's messages are processed
 * strictly in the order p sent them.
 *
 * With a cluster key (`clusterKey`), a hello must carry a nonce and is answered with a challenge;
 * the connection is accepted only once the caller's auth frame proves it holds the key and is the
 * id it claimed (`src/net/peer_auth.ts`), and every later frame must pass its MAC. Until then the
 * pre-hello limits below still apply, and an older connection of that peer is left alone. A
 * keyed replica refuses an unkeyed hello and an unkeyed one refuses a keyed hello, each with a log
 * line saying so. Refusals for a wrong or missing key are logged rate-limited per source host
 * (`Log.limited`).
 *
 * Cluster id discovery: instead of a hello, a connection may send one `whois` frame (a joining
 * replica with an empty data directory asks which cluster it joins). It is answered with an
 * `identity` frame holding our id and the cluster id, with a key also the proof over the
 * caller's nonce (`discoveryProof`), and the connection is then closed. The pre-hello limits
 * apply to it as to any connection.
 *
 * Limits (`src/limits.ts`): before its hello a connection may send one frame of at most
 * `PEER_HELLO_MAX_FRAME_BYTES` (larger is refused as soon as its length arrives), must complete
 * the hello within `helloTimeoutMs`, and at most `MAX_UNAUTHENTICATED_PEERS` such connections are
 * held (a new one closes the oldest). Afterwards frames may be up to `maxFrameBytes`; the decoder
 * holds at most one frame. A larger message (or one carrying a snapshot) arrives streamed as
 * consecutive `piece` frames (`src/net/peer_stream.ts`), joined a document at a time into a `msgs`
 * frame: one message in progress per connection, nothing else between its pieces, and a stream
 * that breaks a rule, or has a document over `maxDocBytes`, closes the connection like a malformed
 * frame, and so does a piece that would make the undecoded documents of all connections together
 * hold more than `maxPiecesHeldBytes`. Every piece counts as hearing from the peer
 * (`onProgress`): a long message keeps its sender alive. Closures by a limit are logged
 * rate-limited per source host.
 *
 * @module
 */
import type { PeerMessage, ReplicaId } from "../core/types.ts";
import { AcceptLoop } from "./accept_loop.ts";
import type { ByteTraffic } from "./traffic.ts";
import type { ByteConn } from "./listener.ts";
import { listenTls, type TlsServerConfig } from "./tls.ts";
import { FrameDecoder } from "./frame.ts";
import { ReadBuffer } from "./read_buffer.ts";
import {
  CodecError,
  decodePeerFrame,
  encodePeerFrame,
  frameFromWire,
  type PeerFrame,
} from "./peer_codec.ts";
import { PieceAssembler } from "./peer_stream.ts";
import { encodeFrame } from "./frame.ts";
import { AuthError, discoveryProof, type FrameOpener, ResponderHandshake } from "./peer_auth.ts";
import { fromHex, toHex } from "../kv/bytes.ts";
import { ConnWriter, errorText } from "./conn_writer.ts";
import type { Log } from "../log/logger.ts";
import {
  DEFAULT_PEER_HELLO_TIMEOUT_SECONDS,
  IDLE_READ_BYTES,
  MAX_FRAME_BYTES,
  MAX_PEER_DOC_BYTES,
  MAX_PEER_PIECES_HELD_BYTES,
  MAX_UNAUTHENTICATED_PEERS,
  PEER_HELLO_MAX_FRAME_BYTES,
  PEER_READ_BYTES,
} from "../limits.ts";

/** Options of a {@link PeerServer}. */
export interface PeerServerOptions {
  /** Address to listen on (port 0 picks a free port). */
  hostname: string;
  port: number;
  /** Our replica id: a hello claiming it is refused. Any other id is accepted. */
  self: ReplicaId;
  /** Our cluster id: a hello with another one is refused. */
  cluster: string;
  /** Called once per received frame with its messages, synchronously from the read loop. */
  onMessages: (from: ReplicaId, msgs: PeerMessage[]) => void;
  /**
   * Work to do before a frame's messages go to `onMessages` (restoring a large state they carry),
   * or undefined when there is none. The connection's next frames wait until the promise settles
   * (it must not reject); if a newer connection of the same peer replaced this one meanwhile, the
   * messages are dropped, as its unread frames are: nothing the peer sent is reordered.
   * `documents` are given for a frame that came streamed in pieces: the UTF-8 JSON documents
   * its value came in (`PieceAssembler.takeDocuments`).
   */
  prepare?: (
    from: ReplicaId,
    msgs: PeerMessage[],
    documents?: readonly Uint8Array[],
  ) => Promise<void> | undefined;
  /** Called for every piece of a streamed message that did not end it (the peer is alive). */
  onProgress?: (from: ReplicaId) => void;
  /** One log line per event that matters (connected, lost, replaced, bad hello, malformed). */
  log: Log;
  /** A connection that has not sent a valid hello within this time is closed (default 5 s). */
  helloTimeoutMs?: number;
  /** Largest frame payload accepted after the hello (default 64 MiB). */
  maxFrameBytes?: number;
  /** Largest document of a streamed message (default `MAX_PEER_DOC_BYTES`, 480 MiB). */
  maxDocBytes?: number;
  /**
   * Most bytes of undecoded documents held over all connections together (default
   * `MAX_PEER_PIECES_HELD_BYTES`, 480 MiB).
   */
  maxPiecesHeldBytes?: number;
  /** Most connections without an accepted hello held at once (default 16). */
  maxUnauthenticated?: number;
  /** The cluster key: peers must authenticate (default: none, as without a key file). */
  clusterKey?: Uint8Array;
  /** Accept only TLS connections (`tls-replication`): then bind with {@link PeerServer.open}. */
  tls?: TlsServerConfig;
  /** Counts the bytes of every accepted connection (metrics). Default: not counted. */
  traffic?: ByteTraffic;
}

/** One accepted connection. */
interface Incoming {
  conn: ByteConn;
  /** Printable remote address, and its host (the source limits are logged for). */
  remote: string;
  source: string;
  /** The peer, once its hello was accepted (with a key: once it authenticated). */
  from: ReplicaId | undefined;
  closed: boolean;
  /** With a key: the handshake under way after a hello, and the id that hello claimed. */
  handshake?: ResponderHandshake;
  claimed?: ReplicaId;
  /** With a key: checks the MAC of every frame after the handshake. */
  opener?: FrameOpener;
}

/** Accepts peer connections and turns their frames into message batches. */
export class PeerServer {
  readonly #opts: PeerServerOptions;
  #acceptor: AcceptLoop | undefined;
  /** Set by close(): nothing new is started. */
  readonly #conns = new Set<Incoming>();
  /** The current (newest) connection of each peer. */
  readonly #current = new Map<ReplicaId, Incoming>();
  /** Connections whose hello was not accepted yet, oldest first. */
  readonly #unauthenticated = new Set<Incoming>();
  /** Bytes of undecoded documents of streamed messages held over all connections. */
  #piecesHeld = 0;

  /** Creates the server; nothing listens until {@link PeerServer.listen}. */
  constructor(options: PeerServerOptions) {
    this.#opts = options;
  }

  /**
   * Binds the listener and starts accepting. Returns the bound address.
   *
   * @throws the `Deno.listen` error (e.g. `Deno.errors.AddrInUse`).
   */
  listen(): Deno.NetAddr {
    if (this.#opts.tls !== undefined) throw new Error("a TLS peer server is bound by open()");
    const { hostname, port, log } = this.#opts;
    const serve = (c: ByteConn) => this.#serve(c);
    this.#acceptor ??= new AcceptLoop(
      { hostname, port },
      serve,
      log,
      "peer port",
    );
    return this.addr;
  }

  /**
   * Binds the listener (TLS when configured, else as {@link PeerServer.listen}) and starts
   * accepting. Resolves with the bound address.
   *
   * @throws (as a rejection) the listen error (e.g. `Deno.errors.AddrInUse`).
   */
  async open(): Promise<Deno.NetAddr> {
    const { hostname, port, log, tls } = this.#opts;
    if (tls === undefined) return this.listen();
    if (this.#acceptor === undefined) {
      const listener = await listenTls({ hostname, port }, tls, log, "peer port");
      const serve = (c: ByteConn) => this.#serve(c);
      this.#acceptor = new AcceptLoop(listener, serve, log, "peer port");
    }
    return this.addr;
  }

  /** The bound address (after {@link PeerServer.listen}). */
  get addr(): Deno.NetAddr {
    if (this.#acceptor === undefined) throw new Error("peer server is not listening");
    return this.#acceptor.addr;
  }

  /** Bytes of undecoded documents of streamed messages held over all connections right now. */
  get piecesHeldBytes(): number {
    return this.#piecesHeld;
  }

  /** Peers with an accepted (post-hello) connection right now. */
  get connectedPeers(): ReplicaId[] {
    return [...this.#current.keys()].sort((a, b) => a - b);
  }

  /** Stops listening, closes every connection, resolves when all their ops have ended. */
  async close(): Promise<void> {
    await this.#acceptor?.close(() => {
      for (const c of this.#conns) this.#closeConn(c);
    });
  }

  /**
   * Closes the current connection of `peer` because what it sent was refused (`reason` is
   * logged, at most once per interval per source). Frames already read from it are not processed.
   */
  disconnect(peer: ReplicaId, reason: string): void {
    const c = this.#current.get(peer);
    if (c === undefined) return;
    this.#opts.log.limited(
      "warn",
      "peer.refused",
      c.source,
      `${this.#who(c)}: refused its message, closing the connection: ${reason}`,
      { peer, reason },
    );
    this.#closeConn(c);
  }

  #closeConn(c: Incoming): void {
    if (c.closed) return;
    c.closed = true;
    try {
      c.conn.close();
    } catch {
      // already closed
    }
  }

  #who(c: Incoming): string {
    return c.from === undefined ? `connection from ${c.remote}` : `peer ${c.from} (${c.remote})`;
  }

  /** Validates a hello; returns a refusal reason, or undefined when it is acceptable. */
  #checkHello(frame: PeerFrame): string | undefined {
    if (frame.kind !== "hello") return `expected a hello frame first, got "${frame.kind}"`;
    if (frame.cluster !== this.#opts.cluster) {
      return `cluster ${frame.cluster} differs from ours (${this.#opts.cluster}): a replica ` +
        `of another cluster (or a data directory of another cluster)`;
    }
    if (frame.from === this.#opts.self) return `hello claims our own id ${frame.from}`;
    if (this.#opts.clusterKey === undefined && frame.nonce !== undefined) {
      return `replica ${frame.from} uses a cluster key but this replica has none ` +
        `(set cluster-key-file to the cluster's key file on every replica)`;
    }
    return undefined;
  }

  /** Logs a failed authentication, once per source, claimed id and kind per interval. */
  #authFailed(c: Incoming, claimed: ReplicaId | undefined, err: AuthError): void {
    const who = claimed === undefined || c.from !== undefined
      ? this.#who(c)
      : `${this.#who(c)} claiming replica ${claimed}`;
    this.#opts.log.limited(
      "warn",
      "peer.auth_failed",
      c.source,
      `${who}: authentication failed, closing it: ${err.message}`,
      { claimed, failure: err.failure },
    );
  }

  /** Accepts `c` as the current connection of `from` (after its hello, or its handshake). */
  #accept(
    c: Incoming,
    from: ReplicaId,
    decoder: FrameDecoder,
    helloTimer: ReturnType<typeof setTimeout>,
  ): void {
    clearTimeout(helloTimer);
    this.#unauthenticated.delete(c);
    decoder.maxFrameBytes = this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    c.from = from;
    const old = this.#current.get(from);
    this.#current.set(from, c);
    const how = c.opener === undefined ? "" : " (authenticated)";
    if (old !== undefined) {
      this.#closeConn(old);
      this.#opts.log.info(
        "peer.incoming",
        `peer ${from} reconnected from ${c.remote}${how}, replacing its older connection`,
        { peer: from, remote: c.remote },
      );
    } else {
      this.#opts.log.info("peer.incoming", `peer ${from} connected from ${c.remote}${how}`, {
        peer: from,
        remote: c.remote,
      });
    }
  }

  /**
   * Answers a joining replica's `whois` with the cluster id (and, with a key, the proof over its
   * nonce); resolves once the answer is written (or failed), and the caller closes `c`. Returns
   * why it was refused instead, or undefined.
   */
  async #answerWhois(c: Incoming, frame: PeerFrame): Promise<string | undefined> {
    if (frame.kind !== "whois") return `expected a whois frame, got "${frame.kind}"`;
    const { self, cluster, clusterKey } = this.#opts;
    if (frame.from === self) return `whois claims our own id ${frame.from}`;
    if (clusterKey === undefined && frame.nonce !== undefined) {
      return `replica ${frame.from} uses a cluster key but this replica has none ` +
        `(set cluster-key-file to the cluster's key file on every replica)`;
    }
    if (clusterKey !== undefined && frame.nonce === undefined) {
      return `replica ${frame.from} has no cluster key, but this replica requires one ` +
        `(set the same cluster-key-file)`;
    }
    const answer: PeerFrame = frame.nonce === undefined || clusterKey === undefined
      ? { kind: "identity", from: self, cluster }
      : {
        kind: "identity",
        from: self,
        cluster,
        proof: toHex(discoveryProof(clusterKey, {
          cluster,
          joiner: frame.from,
          responder: self,
          nonce: fromHex(frame.nonce),
        })),
      };
    this.#opts.log.limited(
      "info",
      "peer.whois",
      c.source,
      `${this.#who(c)}: replica ${frame.from} asked for the cluster id (joining), answered`,
      { claimed: frame.from },
    );
    const writer = new ConnWriter(c.conn, () => this.#closeConn(c), this.#opts.traffic);
    writer.write(encodeFrame(encodePeerFrame(answer)));
    await writer.idle();
    return undefined;
  }

  /** Writes the challenge (small; the caller does not wait). A failed write closes `c`. */
  #sendChallenge(c: Incoming, frame: PeerFrame): void {
    new ConnWriter(c.conn, () => this.#closeConn(c), this.#opts.traffic)
      .write(encodeFrame(encodePeerFrame(frame)));
  }

  async #serve(conn: ByteConn): Promise<void> {
    const addr = conn.remoteAddr;
    const c: Incoming = {
      conn,
      remote: `${addr.hostname}:${addr.port}`,
      source: addr.hostname,
      from: undefined,
      closed: false,
    };
    this.#conns.add(c);
    const maxUnauthenticated = this.#opts.maxUnauthenticated ?? MAX_UNAUTHENTICATED_PEERS;
    if (this.#unauthenticated.size >= maxUnauthenticated) {
      const oldest: Incoming = this.#unauthenticated.values().next().value!;
      this.#unauthenticated.delete(oldest);
      this.#opts.log.limited(
        "warn",
        "peer.unauthenticated",
        oldest.source,
        `${this.#who(oldest)}: more than ${maxUnauthenticated} connections without a hello, ` +
          `closing the oldest`,
      );
      this.#closeConn(oldest);
    }
    this.#unauthenticated.add(c);
    try {
      conn.setNoDelay?.(true);
    } catch {
      // best effort
    }
    const helloMs = this.#opts.helloTimeoutMs ?? DEFAULT_PEER_HELLO_TIMEOUT_SECONDS * 1000;
    const helloTimer = setTimeout(() => {
      if (c.from !== undefined || c.closed) return;
      this.#opts.log.limited(
        "warn",
        "peer.hello_timeout",
        c.source,
        c.handshake === undefined
          ? `${this.#who(c)}: no hello within ${helloMs} ms, closing it`
          : `${this.#who(c)} claiming replica ${c.claimed}: handshake not completed within ` +
            `${helloMs} ms, closing it`,
      );
      this.#closeConn(c);
    }, helloMs);
    const decoder = new FrameDecoder(PEER_HELLO_MAX_FRAME_BYTES);
    const pieces = new PieceAssembler(this.#opts.maxDocBytes ?? MAX_PEER_DOC_BYTES);
    const reads = new ReadBuffer(IDLE_READ_BYTES, PEER_READ_BYTES);
    try {
      reading: while (!c.closed) {
        let n: number | null;
        try {
          n = await conn.read(reads.buffer);
          if (n !== null && this.#opts.traffic !== undefined) this.#opts.traffic.bytesIn += n;
        } catch (err) {
          if (!c.closed && c.from !== undefined && this.#current.get(c.from) === c) {
            this.#opts.log.warn(
              "peer.read_failed",
              `${this.#who(c)}: read failed: ${errorText(err)}`,
              {
                peer: c.from,
              },
            );
          }
          break;
        }
        if (n === null) break;
        decoder.push(reads.filled(n));
        while (!c.closed) {
          let frame: PeerFrame;
          // The documents of a frame that came in pieces.
          let documents: Uint8Array[] | undefined;
          try {
            let payload = decoder.next();
            if (payload === null) break;
            if (c.opener !== undefined) {
              try {
                payload = c.opener.open(payload);
              } catch (err) {
                if (!(err instanceof AuthError)) throw err;
                this.#authFailed(c, c.from, err);
                break reading;
              }
            }
            frame = decodePeerFrame(payload);
            if (c.from !== undefined) {
              // After the hello: the pieces of a streamed msgs frame are joined here.
              if (frame.kind === "piece") {
                const held = pieces.buffered;
                const most = this.#opts.maxPiecesHeldBytes ?? MAX_PEER_PIECES_HELD_BYTES;
                if (this.#piecesHeld + frame.data.length > most) {
                  throw new CodecError(
                    `more than ${most} bytes of unfinished messages in pieces from all peers`,
                  );
                }
                let whole: unknown;
                try {
                  whole = pieces.push(frame);
                } finally {
                  this.#piecesHeld += pieces.buffered - held;
                }
                if (whole === undefined) {
                  if (this.#current.get(c.from) === c) this.#opts.onProgress?.(c.from);
                  continue;
                }
                frame = frameFromWire(whole);
                documents = pieces.takeDocuments();
                if (frame.kind !== "msgs") {
                  throw new CodecError(`pieces carried a "${frame.kind}" frame, not msgs`);
                }
              } else if (pieces.inProgress) {
                throw new CodecError(`a "${frame.kind}" frame between the pieces of a message`);
              }
            }
          } catch (err) {
            this.#opts.log.limited(
              "warn",
              "peer.malformed",
              c.source,
              `${this.#who(c)}: malformed frame, closing the connection: ${errorText(err)}`,
            );
            break reading;
          }
          if (c.from === undefined) {
            if (c.handshake !== undefined) {
              // Keyed, after the challenge: this must be the caller's proof.
              try {
                c.opener = c.handshake.onAuth(frame);
              } catch (err) {
                if (!(err instanceof AuthError)) throw err;
                this.#authFailed(c, c.claimed, err);
                break reading;
              }
              c.handshake = undefined;
              this.#accept(c, c.claimed!, decoder, helloTimer);
              continue;
            }
            if (frame.kind === "whois") {
              const refused = await this.#answerWhois(c, frame);
              if (refused !== undefined) {
                this.#opts.log.limited(
                  "warn",
                  "peer.bad_hello",
                  c.source,
                  `${this.#who(c)}: bad whois, closing it: ${refused}`,
                );
              }
              break reading;
            }
            const refusal = this.#checkHello(frame);
            if (refusal !== undefined || frame.kind !== "hello") {
              this.#opts.log.limited(
                "warn",
                "peer.bad_hello",
                c.source,
                `${this.#who(c)}: bad hello, closing it: ${refusal}`,
              );
              break reading;
            }
            const key = this.#opts.clusterKey;
            if (key !== undefined) {
              c.claimed = frame.from;
              c.handshake = new ResponderHandshake({
                key,
                cluster: this.#opts.cluster,
                self: this.#opts.self,
              });
              try {
                this.#sendChallenge(c, c.handshake.onHello(frame));
              } catch (err) {
                if (!(err instanceof AuthError)) throw err;
                this.#authFailed(c, c.claimed, err);
                break reading;
              }
              continue;
            }
            this.#accept(c, frame.from, decoder, helloTimer);
            continue;
          }
          if (frame.kind !== "msgs") {
            const what = frame.kind === "hello" ? "second hello" : `"${frame.kind}" frame`;
            this.#opts.log.limited(
              "warn",
              "peer.unexpected",
              c.source,
              `${this.#who(c)}: unexpected ${what}, closing the connection`,
            );
            break reading;
          }
          if (this.#current.get(c.from) !== c) break reading; // replaced meanwhile
          const preparing = this.#opts.prepare?.(c.from, frame.msgs, documents);
          if (preparing !== undefined) {
            await preparing;
            if (c.closed || this.#current.get(c.from) !== c) break reading;
          }
          this.#opts.onMessages(c.from, frame.msgs);
        }
      }
    } finally {
      this.#piecesHeld -= pieces.buffered;
      clearTimeout(helloTimer);
      this.#closeConn(c);
      this.#conns.delete(c);
      this.#unauthenticated.delete(c);
      if (c.from !== undefined && this.#current.get(c.from) === c) {
        this.#current.delete(c.from);
        if (!this.#acceptor?.closed) {
          this.#opts.log.info("peer.disconnected", `peer ${c.from} disconnected (${c.remote})`, {
            peer: c.from,
            remote: c.remote,
          });
        }
      }
    }
  }
}
