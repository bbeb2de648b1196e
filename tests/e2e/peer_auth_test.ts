/**
 * End to end: replicas that authenticate each other with a cluster key (`cluster-key-file`).
 *
 * - A keyed cluster serves and survives a kill -9 and restart of one replica; a process that
 *   knows the public cluster id but not the key completes no handshake (unkeyed hello, made-up
 *   proof); a man in the middle that flips one bit of a frame on an authenticated link gets that
 *   connection closed, and the cluster goes on serving with equal digests.
 * - A replica without the key, then with another key, never becomes a member: the others keep
 *   their view and serve, and the logs say why. With the right key it joins.
 * - A bad key file is refused at start with the setting's file:line and exit status 2; `deno task
 *   keygen` writes 0600 files and does not overwrite without `--force`.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { closedWithin, tryWriteAll } from "../support/raw_conn.ts";
import { join } from "node:path";
import { clusterId } from "../../src/config/config.ts";
import { encodeFrame, FrameDecoder } from "../../src/net/frame.ts";
import { decodePeerFrame, encodePeerFrame, type PeerFrame } from "../../src/net/peer_codec.ts";
import { newNonce } from "../../src/net/peer_auth.ts";
import { toHex } from "../../src/kv/bytes.ts";
import { newKeyText } from "../../src/config/cluster_key.ts";
import {
  NODE_PERMISSIONS,
  NODE_TS,
  PROJECT_ROOT,
  respCall,
  runCommand,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { CORRUPT } from "../support/fault_proxy.ts";

const LOOPBACK = "127.0.0.1";
const KEY_FILE = { name: "cluster.key", text: newKeyText() };
const KEYGEN_TS = join(PROJECT_ROOT, "src/cli/keygen.ts");

/** Waits until replica `id` logs a line matching `pattern` (from line `since` of the logs on). */
function waitLogged(cluster: TestCluster, id: number, pattern: RegExp, since = 0): Promise<void> {
  return waitFor(() => cluster.logs.slice(since).some((l) => l.id === id && pattern.test(l.text)), {
    timeoutMs: 10_000,
    message: `replica ${id} to log ${pattern}`,
  });
}

/** Every replica in `ids` serves a write and a read; the running ones agree afterwards. */
async function assertServing(cluster: TestCluster, tag: string, ids = cluster.ids): Promise<void> {
  for (const id of ids) {
    assert.equal(
      await respCall(cluster.clientPort(id), ["SET", `${tag}-${id}`, "v"], 10_000),
      "OK",
    );
    assert.equal(await respCall(cluster.clientPort(id), ["GET", `${tag}-${id}`], 10_000), "v");
  }
}

/** The next frame from `conn`, or null at EOF (or after `timeoutMs`). */
async function readFrame(conn: Deno.Conn, timeoutMs: number): Promise<PeerFrame | null> {
  const decoder = new FrameDecoder(4096);
  const buf = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(resolve, timeoutMs, "late"));
  try {
    for (;;) {
      const payload = decoder.next();
      if (payload !== null) return decodePeerFrame(payload);
      // The deadline holds while a read is pending too (a silent peer must not hang the test).
      const n = await Promise.race([conn.read(buf).catch(() => null), late]);
      if (n === null || n === "late") return null;
      decoder.push(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}

function frame(f: PeerFrame): Uint8Array {
  return encodeFrame(encodePeerFrame(f));
}

/** INFO `state`/`view`/`members` of replica `id`. */
async function standing(cluster: TestCluster, id: number): Promise<string> {
  const info = await cluster.info(id, 5000);
  return `state=${info.state} view=${info.view} members=${info.members}`;
}

/**
 * For `ms`: replicas 1 and 2 stay normal in `view` with members 1,2, and replica 3 is never
 * normal.
 */
async function assertKeptOut(cluster: TestCluster, view: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (const id of [1, 2]) {
      assert.equal(await standing(cluster, id), `state=normal view=${view} members=1,2`);
    }
    const three = await cluster.info(3, 5000);
    assert.notEqual(
      three.state,
      "normal",
      `replica 3 became normal: ${await standing(cluster, 3)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

Deno.test({
  name: "e2e peer auth: a keyed cluster serves, survives kill -9, refuses forgers and a MITM",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({
      replicas: 3,
      proxy: true,
      settings: [`cluster-key-file ${KEY_FILE.name}`],
      files: [KEY_FILE],
    }, async (cluster) => {
      for (const id of cluster.ids) {
        assert.ok(cluster.logged(id, /peer connections are authenticated with the cluster key/));
        assert.ok(cluster.logged(id, /peer \d (re)?connected from .*\(authenticated\)/));
      }
      await assertServing(cluster, "keyed");
      await cluster.waitForAgreement();

      // kill -9 and restart one replica: the others serve meanwhile; it rejoins.
      await cluster.kill(3, "SIGKILL");
      await assertServing(cluster, "without-3", [1, 2]);
      await cluster.restart(3);
      await cluster.waitForView({ timeoutMs: 20_000 });
      await assertServing(cluster, "rejoined");
      await cluster.waitForAgreement();

      // A forger that knows the public cluster id but not the key, straight at the private peer
      // ports. (1) Today's attack, an unkeyed hello then messages: closed after the hello.
      const cluster_ = clusterId(cluster.config);
      const plain = await Deno.connect({ hostname: LOOPBACK, port: cluster.listenPeerPort(1) });
      try {
        await tryWriteAll(plain, frame({ kind: "hello", from: 3, cluster: cluster_ }));
        await tryWriteAll(plain, frame({ kind: "msgs", msgs: [] }));
        assert.ok(await closedWithin(plain, 5000), "an unkeyed hello was not refused");
      } finally {
        plain.close();
      }
      await waitLogged(
        cluster,
        1,
        /claiming replica 3: authentication failed.*has no cluster key, but this replica requires/,
      );
      // (2) A keyed hello gets a challenge; a made-up proof closes the connection.
      const forger = await Deno.connect({ hostname: LOOPBACK, port: cluster.listenPeerPort(2) });
      try {
        await tryWriteAll(
          forger,
          frame({ kind: "hello", from: 3, cluster: cluster_, nonce: toHex(newNonce()) }),
        );
        const challenge = await readFrame(forger, 5000);
        assert.equal(challenge?.kind, "challenge");
        await tryWriteAll(forger, frame({ kind: "auth", proof: toHex(newNonce()) }));
        await tryWriteAll(forger, frame({ kind: "msgs", msgs: [] }));
        assert.ok(await closedWithin(forger, 5000), "a made-up proof was not refused");
      } finally {
        forger.close();
      }
      await waitLogged(
        cluster,
        2,
        /claiming replica 3: authentication failed.*proof does not match our cluster key/,
      );

      // (3) A man in the middle on the authenticated link 2 -> 1 flips one bit of a frame.
      const mark = cluster.logs.length;
      cluster.network().setRule(2, 1, CORRUPT);
      await waitFor(async () => {
        await respCall(cluster.clientPort(2), ["INCR", "mitm"], 10_000);
        return cluster.logs.some((l) => /proxy 2 -> 1: flipped a bit/.test(l.text));
      }, { timeoutMs: 10_000, message: "the proxy to flip a bit on link 2 -> 1" });
      await waitLogged(
        cluster,
        1,
        /peer 2 \(.*\): (authentication failed, closing it: frame \d+ fails its MAC|malformed)/,
        mark,
      );
      await waitLogged(cluster, 1, /peer 2 (re)?connected from .*\(authenticated\)/, mark);
      await assertServing(cluster, "after-mitm");
      const { digest } = await cluster.waitForAgreement();
      cluster.note(`equal digests after the MITM: ${digest}`);
      for (const id of cluster.ids) assert.ok(cluster.running(id), `replica ${id} stopped`);
      assert.equal(
        await respCall(cluster.clientPort(1), ["GET", "mitm"], 10_000),
        await respCall(cluster.clientPort(3), ["GET", "mitm"], 10_000),
      );
    });
  },
});

Deno.test({
  name: "e2e peer auth: a replica without the key, or with another key, is kept out",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const keyed = ["--cluster-key-file", KEY_FILE.name];
    await withCluster({
      replicas: 3,
      files: [KEY_FILE, { name: "wrong.key", text: newKeyText() }],
      replicaArgs: { 1: keyed, 2: keyed, 3: [] },
      waitForView: false,
    }, async (cluster) => {
      const view = await cluster.waitForView({ ids: [1, 2], timeoutMs: 20_000 });
      await assertServing(cluster, "no-key", [1, 2]);
      // Replica 3 has no key: both sides say why.
      await waitLogged(cluster, 3, /replica [12] uses a cluster key but this replica has none/);
      await waitLogged(
        cluster,
        1,
        /claiming replica 3: authentication failed.*has no cluster key, but this replica requires/,
      );
      await assertKeptOut(cluster, view, 2500);

      // Replica 3 with another key.
      await cluster.kill(3, "SIGKILL");
      cluster.setArgs(3, ["--cluster-key-file", "wrong.key"]);
      await cluster.restart(3);
      await waitLogged(
        cluster,
        3,
        /cannot authenticate with peer [12] .*proof does not match our cluster key/,
      );
      // The responder proves first, so each side finds the other's proof wrong as initiator.
      await waitLogged(
        cluster,
        1,
        /cannot authenticate with peer 3 .*proof does not match our cluster key/,
      );
      await assertKeptOut(cluster, view, 2500);
      await assertServing(cluster, "wrong-key", [1, 2]);
      await cluster.waitForAgreement({ ids: [1, 2] });

      // With the right key it joins and catches up.
      await cluster.kill(3, "SIGKILL");
      cluster.setArgs(3, keyed);
      await cluster.restart(3);
      await cluster.waitForView({ timeoutMs: 20_000 });
      await assertServing(cluster, "joined");
      await cluster.waitForAgreement();
    });
  },
});

Deno.test({
  name: "e2e peer auth: bad key files are refused at start; keygen writes 0600 files",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lamportkv-keyfile-" });
    try {
      const hex = "ab".repeat(32);
      const files: [string, string, number][] = [
        ["short.key", "abcd\n", 0o600],
        ["nothex.key", `${hex.slice(2)}zz\n`, 0o600],
        ["open.key", `${hex}\n`, 0o644],
      ];
      for (const [name, text, mode] of files) {
        await Deno.writeTextFile(join(dir, name), text, { mode });
        await Deno.chmod(join(dir, name), mode);
      }
      const cases: [string, RegExp][] = [
        ["missing.key", /missing\.key: cannot read: no such file/],
        ["short.key", /short\.key: is too short: 4 hex digits, at least 64/],
        ["nothex.key", /nothex\.key: is not hex: "z" at column 63/],
        ["open.key", /open\.key: may be read or written by group or others \(mode 0644\)/],
      ];
      const configPath = join(dir, "cluster.txt");
      for (const [name, pattern] of cases) {
        await Deno.writeTextFile(
          configPath,
          `1 127.0.0.1 1 2\n2 127.0.0.1 3 4\n\ncluster-key-file ${name}\n`,
        );
        const run = await runCommand(Deno.execPath(), [
          "run",
          ...NODE_PERMISSIONS,
          NODE_TS,
          "1",
          configPath,
        ]);
        assert.equal(run.code, 2, `${name}: ${run.stderr}`);
        assert.match(run.stderr, new RegExp(`cluster\\.txt:4: cluster-key-file: ${dir}/`));
        assert.match(run.stderr, pattern);
      }
      // The flag form names the flag.
      const flagged = await runCommand(Deno.execPath(), [
        "run",
        ...NODE_PERMISSIONS,
        NODE_TS,
        "1",
        configPath,
        "--cluster-key-file",
        join(dir, "short.key"),
      ]);
      assert.equal(flagged.code, 2);
      assert.match(
        flagged.stderr,
        /--cluster-key-file: cluster-key-file: .*short\.key: is too short/,
      );

      // keygen: 0600, no overwrite without --force, --help.
      const keygen = (...args: string[]) =>
        runCommand(Deno.execPath(), ["run", "--allow-read", "--allow-write", KEYGEN_TS, ...args]);
      const path = join(dir, "new.key");
      const made = await keygen(path);
      assert.equal(made.code, 0, made.stderr);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      const first = await Deno.readTextFile(path);
      assert.match(first, /^[0-9a-f]{64}\n$/);
      const again = await keygen(path);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists; refusing to overwrite it \(use --force\)/);
      assert.equal(await Deno.readTextFile(path), first);
      await Deno.chmod(path, 0o644);
      const forced = await keygen("--force", path);
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(await Deno.readTextFile(path), first);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      const help = await keygen("--help");
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage: deno task keygen <path> \[--force\]/);
      const usage = await keygen();
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /expected the path of the key file/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
