/**
 * Unit tests of peer authentication (`src/net/peer_auth.ts`): the handshake's MACs from given
 * nonces and key, the state machines of both sides (wrong id, wrong key, replayed transcript,
 * reflected challenge, echoed nonce, out-of-order frames), the frame MAC layer (tampered,
 * replayed, reordered, dropped frames), the key file (`src/config/cluster_key.ts`) and the
 * `cluster-key-file` setting.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import {
  AuthError,
  FrameOpener,
  FrameSealer,
  type HandshakeParams,
  handshakeProof,
  InitiatorHandshake,
  ResponderHandshake,
  sessionKey,
  transcript,
} from "../../src/net/peer_auth.ts";
import { fromHex, toHex } from "../../src/kv/bytes.ts";
import {
  decodePeerFrame,
  encodePeerFrame,
  type PeerFrame,
  VALUE_TAG,
} from "../../src/net/peer_codec.ts";
import { encodeValue } from "../../src/codec/binary_value.ts";
import { FrameDecoder } from "../../src/net/frame.ts";
import {
  checkKeyMode,
  KeyFileError,
  loadClusterKey,
  newKeyText,
  parseKeyText,
  writeKeyFile,
} from "../../src/config/cluster_key.ts";
import { resolveSettings } from "../../src/config/settings.ts";
import { parseConfig } from "../../src/config/config.ts";

const CLUSTER = "0123456789abcdef";
const KEY = new Uint8Array(32).map((_, i) => i + 1);
const OTHER_KEY = new Uint8Array(32).map((_, i) => 100 + i);
const NI = new Uint8Array(32).fill(0xa1);
const NR = new Uint8Array(32).fill(0xb2);

function bytes(hex: string): Uint8Array {
  return fromHex(hex);
}

/** The frame through the wire codec (what the other side would decode). */
function wire(frame: PeerFrame): PeerFrame {
  return decodePeerFrame(encodePeerFrame(frame));
}

/** A complete handshake between initiator `i` and responder `r`. */
function handshake(
  opts: { iKey?: Uint8Array; rKey?: Uint8Array; i?: number; r?: number; dialled?: number } = {},
) {
  const initiator = new InitiatorHandshake({
    key: opts.iKey ?? KEY,
    cluster: CLUSTER,
    self: opts.i ?? 1,
    peer: opts.dialled ?? opts.r ?? 2,
    nonce: NI,
  });
  const responder = new ResponderHandshake({
    key: opts.rKey ?? KEY,
    cluster: CLUSTER,
    self: opts.r ?? 2,
    nonce: NR,
  });
  return { initiator, responder };
}

Deno.test("peer auth: the proofs are HMAC-SHA-256 over the length-prefixed transcript and role", () => {
  const p: HandshakeParams = {
    cluster: CLUSTER,
    initiator: 1,
    responder: 2,
    nonceI: NI,
    nonceR: NR,
  };
  const t = transcript(p);
  // "lamportkv-peer-v1" | cluster | "1" | "2" | Ni | Nr, each with a 4-byte big-endian length.
  assert.equal(t.length, 4 * 6 + 17 + 16 + 1 + 1 + 32 + 32);
  assert.deepEqual([...t.subarray(0, 4)], [0, 0, 0, 17]);
  const expected = (role: string) =>
    new Uint8Array(createHmac("sha256", KEY).update(t).update(`|${role}`).digest());
  assert.deepEqual(handshakeProof(KEY, p, "initiator"), expected("initiator"));
  assert.deepEqual(handshakeProof(KEY, p, "responder"), expected("responder"));
  assert.notDeepEqual(handshakeProof(KEY, p, "initiator"), handshakeProof(KEY, p, "responder"));
  // Every field matters, and ids cannot slide between fields ("1","12" vs "11","2").
  const variants: HandshakeParams[] = [
    { ...p, cluster: "0123456789abcdee" },
    { ...p, initiator: 3 },
    { ...p, responder: 3 },
    { ...p, initiator: 2, responder: 1 },
    { ...p, nonceI: NR, nonceR: NI },
  ];
  for (const v of variants) {
    assert.notDeepEqual(handshakeProof(KEY, v, "initiator"), handshakeProof(KEY, p, "initiator"));
  }
  assert.notDeepEqual(
    transcript({ ...p, initiator: 1, responder: 12 }),
    transcript({ ...p, initiator: 11, responder: 2 }),
  );
  assert.notDeepEqual(
    handshakeProof(OTHER_KEY, p, "initiator"),
    handshakeProof(KEY, p, "initiator"),
  );
  // Session keys: per direction, per connection (nonces), never the cluster key itself.
  const s = sessionKey(KEY, p, "initiator->responder");
  assert.equal(s.length, 32);
  assert.notDeepEqual(s, sessionKey(KEY, p, "responder->initiator"));
  assert.notDeepEqual(s, sessionKey(KEY, { ...p, nonceR: NI }, "initiator->responder"));
});

Deno.test("peer auth: a complete handshake yields matching sealer and opener", () => {
  const { initiator, responder } = handshake();
  const hello = wire(initiator.hello);
  assert.deepEqual(hello, { kind: "hello", from: 1, cluster: CLUSTER, nonce: toHex(NI) });
  const challenge = wire(responder.onHello(hello));
  assert.equal(challenge.kind, "challenge");
  const p: HandshakeParams = {
    cluster: CLUSTER,
    initiator: 1,
    responder: 2,
    nonceI: NI,
    nonceR: NR,
  };
  assert.deepEqual(challenge, {
    kind: "challenge",
    from: 2,
    nonce: toHex(NR),
    proof: toHex(handshakeProof(KEY, p, "responder")),
  });
  const { auth, sealer } = initiator.onChallenge(challenge);
  assert.deepEqual(auth, { kind: "auth", proof: toHex(handshakeProof(KEY, p, "initiator")) });
  const opener = responder.onAuth(wire(auth));
  for (const text of ["one", "two", ""]) {
    const frame = sealer.sealFrame(new TextEncoder().encode(text));
    const d = new FrameDecoder();
    d.push(frame);
    assert.equal(new TextDecoder().decode(opener.open(d.next()!)), text);
  }
  assert.equal(sealer.seq, 3);
  assert.equal(opener.seq, 3);
});

Deno.test("peer auth: a wrong key fails on both sides", () => {
  // The responder has another key: the initiator refuses its challenge.
  {
    const { initiator, responder } = handshake({ rKey: OTHER_KEY });
    const challenge = responder.onHello(initiator.hello);
    assert.throws(() => initiator.onChallenge(challenge), AuthError);
  }
  // The initiator has another key (it skips checking, as an attacker would): the responder
  // refuses its proof.
  {
    const { initiator, responder } = handshake({ iKey: OTHER_KEY });
    const challenge = responder.onHello(initiator.hello);
    const p: HandshakeParams = {
      cluster: CLUSTER,
      initiator: 1,
      responder: 2,
      nonceI: NI,
      nonceR: fromHex((challenge as { nonce: string }).nonce),
    };
    const forged: PeerFrame = {
      kind: "auth",
      proof: toHex(handshakeProof(OTHER_KEY, p, "initiator")),
    };
    assert.throws(() => responder.onAuth(forged), /does not match our cluster key/);
  }
});

Deno.test("peer auth: wrong ids are refused (the dialled replica, a claimed id)", () => {
  // The initiator dialled 3, but replica 2 (with the key) answers: refused by id.
  {
    const { initiator, responder } = handshake({ r: 2, dialled: 3 });
    assert.throws(
      () => initiator.onChallenge(responder.onHello(initiator.hello)),
      /comes from replica 2, we dialled 3/,
    );
  }
  // A challenge whose `from` was rewritten to the dialled id still fails: the proof binds 2.
  {
    const { initiator, responder } = handshake({ r: 2, dialled: 3 });
    const challenge = responder.onHello(initiator.hello) as PeerFrame & { kind: "challenge" };
    assert.throws(
      () => initiator.onChallenge({ ...challenge, from: 3 }),
      /does not match our cluster key/,
    );
  }
  // A MITM rewrites the hello's id (1 -> 3): the initiator's proof was made for 1, refused.
  {
    const { initiator, responder } = handshake();
    const hello = { ...initiator.hello, from: 3 } as PeerFrame;
    const challenge = responder.onHello(hello);
    // The initiator checks a proof for (1, 2), the responder made one for (3, 2).
    assert.throws(() => initiator.onChallenge(challenge), AuthError);
  }
  // ... and if the MITM also answers for the initiator with its proof of (1,2): refused.
  {
    const a = handshake();
    const challenge1 = a.responder.onHello(a.initiator.hello);
    const auth1 = a.initiator.onChallenge(challenge1).auth;
    const b = handshake();
    b.responder.onHello({ ...b.initiator.hello, from: 3 } as PeerFrame);
    assert.throws(() => b.responder.onAuth(auth1), AuthError);
  }
});

Deno.test("peer auth: a replayed transcript is refused (fresh nonces)", () => {
  // Record a full handshake.
  const first = handshake();
  const hello = first.initiator.hello;
  const challenge = first.responder.onHello(hello);
  const { auth } = first.initiator.onChallenge(challenge);
  first.responder.onAuth(auth);
  // Replay hello and auth to a responder with a fresh nonce (as every real one has).
  const responder = new ResponderHandshake({ key: KEY, cluster: CLUSTER, self: 2 });
  responder.onHello(hello);
  assert.throws(() => responder.onAuth(auth), /does not match/);
  // Replay the recorded challenge to an initiator with a fresh nonce.
  const initiator = new InitiatorHandshake({ key: KEY, cluster: CLUSTER, self: 1, peer: 2 });
  assert.throws(() => initiator.onChallenge(challenge), /does not match/);
});

Deno.test("peer auth: a reflected challenge or echoed nonce is refused", () => {
  // The responder's proof sent back to it as the initiator's proof.
  {
    const { initiator, responder } = handshake();
    const challenge = responder.onHello(initiator.hello) as PeerFrame & { kind: "challenge" };
    assert.throws(() => responder.onAuth({ kind: "auth", proof: challenge.proof }), /does not/);
  }
  // An attacker opens a second connection to the initiator's own responder, claiming to be
  // replica 2 with the nonce it saw, to get an initiator-role proof: the roles differ.
  {
    const { initiator } = handshake();
    const ownResponder = new ResponderHandshake({ key: KEY, cluster: CLUSTER, self: 1, nonce: NR });
    const c = ownResponder.onHello({ kind: "hello", from: 2, cluster: CLUSTER, nonce: toHex(NI) });
    const reflected = { ...(c as PeerFrame & { kind: "challenge" }), from: 2 };
    assert.throws(() => initiator.onChallenge(reflected), /does not match/);
  }
  // A challenge echoing the initiator's nonce, and a hello echoing the responder's.
  {
    const { initiator } = handshake();
    assert.throws(
      () =>
        initiator.onChallenge({ kind: "challenge", from: 2, nonce: toHex(NI), proof: toHex(NI) }),
      /echoes our own nonce/,
    );
    const responder = new ResponderHandshake({ key: KEY, cluster: CLUSTER, self: 2, nonce: NR });
    assert.throws(
      () => responder.onHello({ kind: "hello", from: 1, cluster: CLUSTER, nonce: toHex(NR) }),
      /echoes our own nonce/,
    );
  }
});

Deno.test("peer auth: the state machines take each frame once, in order", () => {
  const { initiator, responder } = handshake();
  // auth before hello; an unkeyed hello; a second hello; a non-auth frame after the challenge.
  assert.throws(() => responder.onAuth({ kind: "auth", proof: toHex(NI) }), /unexpected "auth"/);
  const r2 = new ResponderHandshake({ key: KEY, cluster: CLUSTER, self: 2 });
  assert.throws(
    () => r2.onHello({ kind: "hello", from: 1, cluster: CLUSTER }),
    /has no cluster key/,
  );
  const challenge = responder.onHello(initiator.hello);
  assert.throws(() => responder.onHello(initiator.hello), /second hello/);
  const r3 = new ResponderHandshake({ key: KEY, cluster: CLUSTER, self: 2 });
  r3.onHello(initiator.hello);
  assert.throws(() => r3.onAuth({ kind: "msgs", msgs: [] }), /expected an auth frame/);
  // The initiator takes one challenge only, and only a challenge.
  const { auth } = initiator.onChallenge(challenge);
  assert.throws(() => initiator.onChallenge(challenge), /second challenge/);
  const i2 = new InitiatorHandshake({ key: KEY, cluster: CLUSTER, self: 1, peer: 2 });
  assert.throws(() => i2.onChallenge({ kind: "msgs", msgs: [] }), /expected a challenge/);
  // After a failed auth the responder takes nothing more, not even the right proof.
  const { initiator: i4, responder: r4 } = handshake();
  r4.onHello(i4.hello);
  assert.throws(() => r4.onAuth({ kind: "auth", proof: toHex(NR) }));
  assert.throws(() => r4.onAuth(auth), /unexpected/);
});

/** A sealer/opener pair of one connection, and frames sealed in order. */
function sealedFrames(count: number): { opener: FrameOpener; payloads: Uint8Array[] } {
  const p: HandshakeParams = {
    cluster: CLUSTER,
    initiator: 1,
    responder: 2,
    nonceI: NI,
    nonceR: NR,
  };
  const k = sessionKey(KEY, p, "initiator->responder");
  const sealer = new FrameSealer(k);
  const payloads = Array.from({ length: count }, (_, i) => {
    const frame = sealer.sealFrame(new TextEncoder().encode(`{"frame":${i}}`));
    return frame.subarray(4); // without the length prefix, as the decoder returns it
  });
  return { opener: new FrameOpener(k), payloads };
}

Deno.test("peer auth: a frame's tag is HMAC-SHA-256(session key, seq as u64 | body)", () => {
  for (const key of [KEY, new Uint8Array(100).fill(7)]) {
    const sealer = new FrameSealer(key);
    for (let seq = 0; seq < 3; seq++) {
      const body = new TextEncoder().encode(`{"n":${seq}}`.repeat(seq * 50 + 1));
      const frame = sealer.sealFrame(body);
      assert.equal(new DataView(frame.buffer).getUint32(0), 32 + body.length);
      const seqBytes = new Uint8Array(8);
      new DataView(seqBytes.buffer).setBigUint64(0, BigInt(seq));
      const want = createHmac("sha256", key).update(seqBytes).update(body).digest();
      assert.deepEqual(frame.subarray(4, 36), new Uint8Array(want));
      assert.deepEqual(frame.subarray(36), body);
    }
  }
});

Deno.test("peer auth: frame MACs refuse tampered, replayed, reordered and dropped frames", () => {
  {
    const { opener, payloads } = sealedFrames(3);
    for (const p of payloads) opener.open(p);
    assert.throws(() => opener.open(payloads[2]), /frame 3 fails its MAC/); // replayed
    assert.throws(() => opener.open(payloads[0]), /already failed/); // broken for good
  }
  {
    const { opener, payloads } = sealedFrames(3);
    opener.open(payloads[0]);
    assert.throws(() => opener.open(payloads[2]), /frame 1 fails its MAC/); // dropped / reordered
  }
  {
    const { opener, payloads } = sealedFrames(2);
    assert.throws(() => opener.open(payloads[1]), /frame 0 fails/); // reordered
  }
  // Every single bit flip, in the tag or the body, is refused.
  const { payloads } = sealedFrames(1);
  for (let i = 0; i < payloads[0].length; i++) {
    for (const bit of [0x01, 0x80]) {
      const { opener } = sealedFrames(0);
      const bad = payloads[0].slice();
      bad[i] ^= bit;
      assert.throws(() => opener.open(bad), AuthError, `byte ${i} bit ${bit}`);
    }
  }
  // Too short to hold a tag; a tag made with another session key (another connection).
  assert.throws(() => sealedFrames(0).opener.open(new Uint8Array(31)), /too short/);
  const other = new FrameSealer(sessionKey(KEY, {
    cluster: CLUSTER,
    initiator: 1,
    responder: 2,
    nonceI: NI,
    nonceR: NI,
  }, "initiator->responder"));
  const foreign = other.sealFrame(new TextEncoder().encode('{"frame":0}')).subarray(4);
  assert.throws(() => sealedFrames(0).opener.open(foreign), /fails its MAC/);
});

Deno.test("peer codec: handshake frames round-trip and are validated", () => {
  const hex = "ab".repeat(32);
  for (
    const f of [
      { kind: "hello", from: 1, cluster: CLUSTER, nonce: hex },
      { kind: "challenge", from: 2, nonce: hex, proof: hex },
      { kind: "auth", proof: hex },
    ] as PeerFrame[]
  ) {
    assert.deepEqual(wire(f), f);
  }
  const bad = (value: unknown, pattern: RegExp) =>
    assert.throws(() => decodePeerFrame(encodeValue(value, VALUE_TAG)), pattern);
  bad({ kind: "hello", from: 1, cluster: "c", nonce: "AB" }, /nonce: expected 64 lowercase hex/);
  bad({ kind: "auth", proof: hex, from: 1 }, /unknown field "from"/);
  bad({ kind: "challenge", from: 2, nonce: hex }, /missing field "proof"/);
  bad({ kind: "auth", proof: "AB".repeat(32) }, /proof: expected 64 lowercase hex/);
});

Deno.test("cluster key: the file's text", () => {
  const hex = "0f".repeat(32);
  assert.deepEqual(parseKeyText(`${hex}\n`), bytes(hex));
  assert.deepEqual(parseKeyText(`  ${hex.toUpperCase()}  \r\n`), bytes(hex));
  assert.equal(parseKeyText("ab".repeat(100)).length, 100);
  const refused: [string, RegExp][] = [
    ["", /is empty/],
    ["\n\n", /is empty/],
    ["ab".repeat(31), /too short: 62 hex digits, at least 64/],
    [`${hex}\n${hex}\n`, /more than one line/],
    [`${hex.slice(0, 10)}xy${hex.slice(12)}`, /not hex: "x" at column 11/],
    [`${hex}a`, /odd number of hex digits \(65\)/],
    ["ab".repeat(513), /too long/],
  ];
  for (const [text, pattern] of refused) {
    assert.throws(
      () => parseKeyText(text),
      (e: Error) => e instanceof KeyFileError && pattern.test(e.message),
      text,
    );
  }
  assert.match(newKeyText(), /^[0-9a-f]{64}\n$/);
  assert.notEqual(newKeyText(), newKeyText());
  checkKeyMode(0o100600);
  checkKeyMode(0o400);
  checkKeyMode(null);
  assert.throws(() => checkKeyMode(0o100644), /group or others \(mode 0644\).*chmod 600/);
  assert.throws(() => checkKeyMode(0o660), /mode 0660/);
});

Deno.test("cluster key: key files on disk, keygen's writer, and the setting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-key-" });
  try {
    const path = join(dir, "cluster.key");
    await writeKeyFile(path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const key = await loadClusterKey(path);
    assert.equal(key.length, 32);
    await assert.rejects(() => writeKeyFile(path), /already exists; refusing to overwrite/);
    assert.deepEqual(await loadClusterKey(path), key);
    await Deno.chmod(path, 0o644);
    await assert.rejects(() => loadClusterKey(path), /cluster\.key: may be read .*mode 0644/);
    await writeKeyFile(path, true);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.notDeepEqual(await loadClusterKey(path), key);
    await assert.rejects(
      () => loadClusterKey(join(dir, "nope")),
      /nope: cannot read: no such file/,
    );
    await assert.rejects(() => loadClusterKey(dir), /is not a regular file/);
    await Deno.writeTextFile(join(dir, "short"), "abcd\n", { mode: 0o600 });
    await assert.rejects(() => loadClusterKey(join(dir, "short")), /short: is too short/);

    // The setting: relative to the config file's directory on a file line, to the working
    // directory as a flag; the flag wins.
    const cfg = parseConfig("1 h 1 2\ncluster-key-file keys/c.key\n", join(dir, "cluster.txt"));
    const s = resolveSettings(cfg.settings!);
    assert.deepEqual(s.clusterKeyFile, {
      path: join(dir, "keys/c.key"),
      where: `${join(dir, "cluster.txt")}:2`,
    });
    const abs = resolveSettings(parseConfig("1 h 1 2\ncluster-key-file /k\n", "c.txt").settings!);
    assert.equal(abs.clusterKeyFile?.path, "/k");
    const flag = resolveSettings([
      ...cfg.settings!,
      { name: "cluster-key-file", value: "x.key", where: "--cluster-key-file" },
    ]);
    assert.deepEqual(flag.clusterKeyFile, { path: "x.key", where: "--cluster-key-file" });
    assert.equal(resolveSettings([]).clusterKeyFile, undefined);
    assert.throws(
      () => parseConfig("1 h 1 2\ncluster-key-file\n", "c.txt"),
      /c\.txt:2: cluster-key-file: expected the path/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
