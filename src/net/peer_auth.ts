/**
 * Mutual authentication of peer connections with a shared cluster key (`cluster-key-file`), and
 * the MAC that protects every frame after it. Everything here is synchronous and pure given the
 * key and the nonces, so the handshake is tested without sockets.
 *
 * Handshake (I = the initiator, the replica whose outgoing link connects; R = the responder):
 *
 * ```text
 * I -> R  hello      {from: I, cluster, nonce: Ni}
 * R -> I  challenge  {from: R, nonce: Nr, proof: HMAC(K, T | "responder")}
 * I -> R  auth       {proof: HMAC(K, T | "initiator")}
 * T = "lamportkv-peer-v1" | cluster | I | R | Ni | Nr     (each field length-prefixed)
 * ```
 *
 * - Both proofs cover both ids and both fresh 32-byte nonces, so a recorded proof is useless on
 *   another connection (replay), an id cannot be swapped for another (id substitution: R checks I
 *   against the hello it answered, I checks R against the replica it dialled), and the role label
 *   keeps a responder's proof from passing as an initiator's (reflection). I also refuses a
 *   challenge that echoes its own nonce.
 * - R proves first, but only over a nonce of its own choosing: a caller without the key learns a
 *   MAC it cannot use anywhere else.
 * - Each side then derives the session key `HMAC(K, "lamportkv-peer-v1 session" | dir | T)`, fresh
 *   per connection. Only I sends frames after the handshake (R never writes after its challenge).
 *
 * Frame MAC: every later frame's payload is `tag(32) | body` with
 * `tag = HMAC(session key, seq as u64 | body)`, where `seq` counts the frames of the connection
 * from 0 and is not sent: a replayed, dropped, reordered or altered frame fails its MAC and the
 * connection is closed. MACs are compared in constant time.
 *
 * Why `node:crypto`'s HMAC rather than `crypto.subtle.sign`: Web Crypto is async only, so a MAC per
 * frame would put a promise hop (and a reordering hazard) between the core's flush and the socket
 * on both ends; `createHmac` is synchronous and at least as fast for frame-sized inputs in Deno
 * (about 15-30 us either way on the reference machine). One HMAC per frame suffices since a frame
 * already batches every message of an event-loop turn to a peer. The frame layer also keeps the
 * SHA-256 states after the inner and outer padded key ({@link FrameMac}, RFC 2104) and copies
 * them per frame, which halves the cost again (about 8 us per frame of a few hundred bytes).
 *
 * An insider caveat: the key is shared by the whole cluster, so anyone holding it can act as any
 * replica. The handshake proves "holds the cluster key and is bound to this claimed id on this
 * connection", not per-replica identity.
 *
 * @module
 */
import { fromHex, toHex } from "../kv/bytes.ts";
import { createHash, createHmac, type Hash, timingSafeEqual } from "node:crypto";
import type { PeerFrame } from "./peer_codec.ts";
import type { ReplicaId } from "../core/types.ts";

/** Protocol label, the first field of every transcript. */
const AUTH_PROTOCOL = "lamportkv-peer-v1";
/** Bytes of a nonce. */
const NONCE_BYTES = 32;
/** Bytes of an HMAC-SHA-256 tag (proofs and frame MACs). */
export const MAC_BYTES = 32;
/** The fewest key bytes accepted (64 hex digits). */
export const MIN_KEY_BYTES = 32;

/**
 * Why authentication failed, for rate-limited logging (one line per source, peer and kind):
 * the peer has no key, another key, a frame failed its MAC, or the protocol was not followed.
 */
export type AuthFailure = "no-key" | "wrong-key" | "frame-mac" | "protocol";

/** A handshake or frame that fails authentication. The connection must be closed. */
export class AuthError extends Error {
  /** The kind of failure. */
  readonly failure: AuthFailure;

  /** Builds the error. */
  constructor(message: string, failure: AuthFailure = "protocol") {
    super(message);
    this.name = "AuthError";
    this.failure = failure;
  }
}

const encoder = new TextEncoder();

/** HMAC-SHA-256 of the concatenation of `parts` under `key`. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Constant-time equality of two MACs (false when the lengths differ). */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A fresh random nonce. */
export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
}

/** What both proofs of one handshake cover. */
export interface HandshakeParams {
  /** The cluster fingerprint (`clusterId`). */
  cluster: string;
  /** The replica that connected. */
  initiator: ReplicaId;
  /** The replica it connected to. */
  responder: ReplicaId;
  nonceI: Uint8Array;
  nonceR: Uint8Array;
}

function lengthPrefixed(fields: Uint8Array[]): Uint8Array {
  const total = fields.reduce((n, f) => n + 4 + f.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const f of fields) {
    view.setUint32(at, f.length);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  return out;
}

/** The canonical, unambiguous encoding of the handshake's transcript. */
export function transcript(p: HandshakeParams): Uint8Array {
  return lengthPrefixed([
    encoder.encode(AUTH_PROTOCOL),
    encoder.encode(p.cluster),
    encoder.encode(String(p.initiator)),
    encoder.encode(String(p.responder)),
    p.nonceI,
    p.nonceR,
  ]);
}

/** The proof one side sends: HMAC(key, transcript | role). */
export function handshakeProof(
  key: Uint8Array,
  p: HandshakeParams,
  role: "initiator" | "responder",
): Uint8Array {
  return hmac(key, transcript(p), encoder.encode(`|${role}`));
}

/** The per-connection key for frames in one direction. */
export function sessionKey(
  key: Uint8Array,
  p: HandshakeParams,
  direction: "initiator->responder" | "responder->initiator",
): Uint8Array {
  return hmac(key, encoder.encode(`${AUTH_PROTOCOL} session ${direction}|`), transcript(p));
}

/**
 * HMAC-SHA-256 under one fixed key, with the hash states after the padded key precomputed: each
 * MAC copies them instead of hashing the key blocks again (same result as {@link hmac}).
 */
export class FrameMac {
  readonly #inner: Hash;
  readonly #outer: Hash;

  /** Precomputes the states for `key`. */
  constructor(key: Uint8Array) {
    const k = key.length > 64 ? new Uint8Array(createHash("sha256").update(key).digest()) : key;
    const ipad = new Uint8Array(64).fill(0x36);
    const opad = new Uint8Array(64).fill(0x5c);
    for (let i = 0; i < k.length; i++) {
      ipad[i] ^= k[i];
      opad[i] ^= k[i];
    }
    this.#inner = createHash("sha256").update(ipad);
    this.#outer = createHash("sha256").update(opad);
  }

  /** The MAC of the concatenation of `parts`. */
  mac(...parts: Uint8Array[]): Uint8Array {
    const inner = this.#inner.copy();
    for (const p of parts) inner.update(p);
    return new Uint8Array(this.#outer.copy().update(inner.digest()).digest());
  }
}

function seqBytes(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq));
  return b;
}

/** Adds the MAC to the frames one side sends, numbering them from 0. */
export class FrameSealer {
  readonly #mac: FrameMac;
  #seq = 0;

  /** Seals with `sessionKey`. */
  constructor(sessionKey: Uint8Array) {
    this.#mac = new FrameMac(sessionKey);
  }

  /** Frames sealed so far. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * The whole frame for `body`: the 4-byte length prefix, the tag, then `body` (one buffer).
   * The length prefix counts tag and body.
   */
  sealFrame(body: Uint8Array): Uint8Array {
    const tag = this.#mac.mac(seqBytes(this.#seq++), body);
    const out = new Uint8Array(4 + MAC_BYTES + body.length);
    new DataView(out.buffer).setUint32(0, MAC_BYTES + body.length);
    out.set(tag, 4);
    out.set(body, 4 + MAC_BYTES);
    return out;
  }
}

/** Checks the MAC of the frames one side receives, in order. */
export class FrameOpener {
  readonly #mac: FrameMac;
  #seq = 0;

  /** Opens with `sessionKey`. */
  constructor(sessionKey: Uint8Array) {
    this.#mac = new FrameMac(sessionKey);
  }

  /** Frames opened so far. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * The body of the next frame's payload (`tag | body`), a view into `payload`.
   *
   * @throws {AuthError} when the payload is too short or its tag is not the MAC of the body as
   * the next frame (tampered, replayed, reordered, or a frame was dropped before it). The opener
   * is then broken: the connection must be closed.
   */
  open(payload: Uint8Array): Uint8Array {
    if (this.#seq < 0) throw new AuthError("frame MAC already failed on this connection");
    if (payload.length < MAC_BYTES) {
      this.#seq = -1;
      throw new AuthError(`frame of ${payload.length} bytes is too short for its MAC`, "frame-mac");
    }
    const body = payload.subarray(MAC_BYTES);
    const want = this.#mac.mac(seqBytes(this.#seq), body);
    if (!macEqual(payload.subarray(0, MAC_BYTES), want)) {
      const at = this.#seq;
      this.#seq = -1;
      throw new AuthError(
        `frame ${at} fails its MAC (altered, replayed, reordered or a frame is missing)`,
        "frame-mac",
      );
    }
    this.#seq++;
    return body;
  }
}

/** Options of an {@link InitiatorHandshake}. */
export interface InitiatorOptions {
  key: Uint8Array;
  cluster: string;
  /** Our id. */
  self: ReplicaId;
  /** The replica we dialled. */
  peer: ReplicaId;
  /** For tests: our nonce (default fresh random bytes). */
  nonce?: Uint8Array;
}

/** The connecting side: sends {@link hello}, checks the challenge, answers with an auth frame. */
export class InitiatorHandshake {
  readonly #opts: InitiatorOptions;
  readonly #nonce: Uint8Array;
  #done = false;

  /** Starts a handshake with a fresh nonce. */
  constructor(options: InitiatorOptions) {
    this.#opts = options;
    this.#nonce = options.nonce ?? newNonce();
  }

  /** The hello frame to send first. */
  get hello(): PeerFrame {
    const { self, cluster } = this.#opts;
    return { kind: "hello", from: self, cluster, nonce: toHex(this.#nonce) };
  }

  /**
   * Checks the responder's challenge; returns the auth frame to send and the sealer of every
   * later frame. Accepts one challenge only.
   *
   * @throws {AuthError} naming the problem (not a challenge, another replica, echoed nonce, a
   * proof that does not match our key).
   */
  onChallenge(frame: PeerFrame): { auth: PeerFrame; sealer: FrameSealer } {
    if (this.#done) throw new AuthError("a second challenge on one connection");
    this.#done = true;
    const { key, cluster, self, peer } = this.#opts;
    if (frame.kind !== "challenge") {
      throw new AuthError(`expected a challenge, got a "${frame.kind}" frame`);
    }
    if (frame.from !== peer) {
      throw new AuthError(`the challenge comes from replica ${frame.from}, we dialled ${peer}`);
    }
    const nonceR = fromHex(frame.nonce);
    if (macEqual(nonceR, this.#nonce)) throw new AuthError("the challenge echoes our own nonce");
    const p: HandshakeParams = {
      cluster,
      initiator: self,
      responder: peer,
      nonceI: this.#nonce,
      nonceR,
    };
    if (!macEqual(fromHex(frame.proof), handshakeProof(key, p, "responder"))) {
      throw new AuthError(
        "its proof does not match our cluster key (different cluster-key-file contents)",
        "wrong-key",
      );
    }
    return {
      auth: { kind: "auth", proof: toHex(handshakeProof(key, p, "initiator")) },
      sealer: new FrameSealer(sessionKey(key, p, "initiator->responder")),
    };
  }
}

/** Options of a {@link ResponderHandshake}. */
export interface ResponderOptions {
  key: Uint8Array;
  cluster: string;
  /** Our id. */
  self: ReplicaId;
  /** For tests: our nonce (default fresh random bytes). */
  nonce?: Uint8Array;
}

/**
 * The accepting side: answers a keyed hello with a challenge, then checks the auth frame. The
 * caller has already checked the hello's cluster and `from` (a configured peer, not us).
 */
export class ResponderHandshake {
  readonly #opts: ResponderOptions;
  readonly #nonce: Uint8Array;
  #params: HandshakeParams | undefined;
  #state: "hello" | "auth" | "done" = "hello";

  /** Starts a handshake with a fresh nonce. */
  constructor(options: ResponderOptions) {
    this.#opts = options;
    this.#nonce = options.nonce ?? newNonce();
  }

  /**
   * The challenge answering `hello`.
   *
   * @throws {AuthError} when not expecting a hello, or the hello has no nonce (an unkeyed peer).
   */
  onHello(hello: PeerFrame): PeerFrame {
    if (this.#state !== "hello") throw new AuthError("a second hello on one connection");
    this.#state = "auth";
    if (hello.kind !== "hello") throw new AuthError(`expected a hello, got "${hello.kind}"`);
    if (hello.nonce === undefined) {
      throw new AuthError(
        "it has no cluster key, but this replica requires one (set the same cluster-key-file)",
        "no-key",
      );
    }
    const { key, cluster, self } = this.#opts;
    const nonceI = fromHex(hello.nonce);
    if (macEqual(nonceI, this.#nonce)) throw new AuthError("the hello echoes our own nonce");
    this.#params = {
      cluster,
      initiator: hello.from,
      responder: self,
      nonceI,
      nonceR: this.#nonce,
    };
    return {
      kind: "challenge",
      from: self,
      nonce: toHex(this.#nonce),
      proof: toHex(handshakeProof(key, this.#params, "responder")),
    };
  }

  /**
   * Checks the initiator's auth frame; returns the opener of every later frame.
   *
   * @throws {AuthError} when not expecting it, or its proof does not match.
   */
  onAuth(frame: PeerFrame): FrameOpener {
    if (this.#state !== "auth" || this.#params === undefined) {
      throw new AuthError(`unexpected "${frame.kind}" frame during the handshake`);
    }
    this.#state = "done";
    if (frame.kind !== "auth") {
      throw new AuthError(`expected an auth frame, got a "${frame.kind}" frame`);
    }
    const { key } = this.#opts;
    if (!macEqual(fromHex(frame.proof), handshakeProof(key, this.#params, "initiator"))) {
      throw new AuthError(
        "its proof does not match our cluster key (different cluster-key-file contents)",
        "wrong-key",
      );
    }
    return new FrameOpener(sessionKey(key, this.#params, "initiator->responder"));
  }
}

/** Protocol label of the cluster id discovery proof (kept apart from the handshake's). */
const DISCOVERY_PROTOCOL = "lamportkv-discover-v1";

/** What the proof of a cluster id discovery answer covers. */
export interface DiscoveryParams {
  /** The cluster id answered. */
  cluster: string;
  /** The joining replica that asked. */
  joiner: ReplicaId;
  /** The replica that answered. */
  responder: ReplicaId;
  /** The joiner's fresh nonce. */
  nonce: Uint8Array;
}

/**
 * The proof a keyed replica adds to its answer to a `whois`: HMAC(K, "lamportkv-discover-v1" |
 * cluster | joiner | responder | nonce), each field length-prefixed. It tells the joiner that a
 * holder of the cluster key answered this very request (the nonce is the joiner's) with this
 * cluster id. Its own protocol label keeps it from passing as a handshake proof.
 */
export function discoveryProof(key: Uint8Array, p: DiscoveryParams): Uint8Array {
  return hmac(
    key,
    lengthPrefixed([
      encoder.encode(DISCOVERY_PROTOCOL),
      encoder.encode(p.cluster),
      encoder.encode(String(p.joiner)),
      encoder.encode(String(p.responder)),
      p.nonce,
    ]),
  );
}

/**
 * The joining side of a cluster id discovery: the `whois` frame to send, and the check of the
 * answer. With a key the answer must carry the proof for our nonce; without one the answer is
 * taken as it is (as an unkeyed replica trusts any peer's hello).
 */
export class DiscoveryRequest {
  readonly #self: ReplicaId;
  readonly #peer: ReplicaId;
  readonly #key: Uint8Array | undefined;
  readonly #nonce: Uint8Array | undefined;

  /** A request from `self` to the replica `peer` (the one dialled). */
  constructor(options: { self: ReplicaId; peer: ReplicaId; key?: Uint8Array; nonce?: Uint8Array }) {
    this.#self = options.self;
    this.#peer = options.peer;
    this.#key = options.key;
    this.#nonce = options.key === undefined ? undefined : options.nonce ?? newNonce();
  }

  /** The frame to send. */
  get whois(): PeerFrame {
    return this.#nonce === undefined
      ? { kind: "whois", from: this.#self }
      : { kind: "whois", from: this.#self, nonce: toHex(this.#nonce) };
  }

  /**
   * The cluster id in the answer `frame`.
   *
   * @throws {AuthError} when it is not an identity frame of the dialled replica, or (with a key)
   * has no proof or a proof that does not match our key and nonce.
   */
  onAnswer(frame: PeerFrame): string {
    if (frame.kind !== "identity") {
      throw new AuthError(`expected an identity frame, got a "${frame.kind}" frame`);
    }
    if (frame.from !== this.#peer) {
      throw new AuthError(`the answer comes from replica ${frame.from}, we dialled ${this.#peer}`);
    }
    if (this.#key === undefined || this.#nonce === undefined) {
      if (frame.proof !== undefined) {
        throw new AuthError(
          "it uses a cluster key but this replica has none (set cluster-key-file)",
          "no-key",
        );
      }
      return frame.cluster;
    }
    if (frame.proof === undefined) {
      throw new AuthError("it has no cluster key, but this replica has one", "no-key");
    }
    const want = discoveryProof(this.#key, {
      cluster: frame.cluster,
      joiner: this.#self,
      responder: this.#peer,
      nonce: this.#nonce,
    });
    if (!macEqual(fromHex(frame.proof), want)) {
      throw new AuthError(
        "its proof does not match our cluster key (different cluster-key-file contents)",
        "wrong-key",
      );
    }
    return frame.cluster;
  }
}
