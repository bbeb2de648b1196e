/**
 * A joining replica learns the cluster id from real peer servers on loopback
 * (`src/net/cluster_discovery.ts` against `PeerServer`'s `whois` answer): without a key from the
 * first replica that answers, with a key only from one proving it; refusals are logged by both
 * sides; a replica that does not answer is skipped.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ReplicaAddress } from "../../src/config/config.ts";
import { discoverClusterId, DiscoveryError } from "../../src/net/cluster_discovery.ts";
import { PeerServer } from "../../src/net/peer_server.ts";
import { DiscoveryRequest } from "../../src/net/peer_auth.ts";
import { freePorts } from "../support/cluster.ts";
import { logTo } from "../support/log_capture.ts";
import { makeTestCerts, opensslSkipReason } from "../support/tls_certs.ts";
import { withTempDir } from "../support/temp_dir.ts";
import { TlsContext } from "../../src/net/tls.ts";

const HOST = "127.0.0.1";
const CLUSTER = "c1c1c1c1c1c1c1c1";
const KEY = new Uint8Array(32).fill(7);
const OTHER_KEY = new Uint8Array(32).fill(9);

/** A listening peer server of replica `self`. */
function server(self: number, logs: string[], clusterKey?: Uint8Array): PeerServer {
  const s = new PeerServer({
    hostname: HOST,
    port: 0,
    self,
    cluster: CLUSTER,
    clusterKey,
    log: logTo(logs, { rateLimit: { intervalMs: 0 } }),
    onMessages: () => {
      throw new Error("a whois must not deliver messages");
    },
  });
  s.listen();
  return s;
}

function addressOf(id: number, port: number): ReplicaAddress {
  return { id, host: HOST, clientPort: 1, peerPort: port };
}

Deno.test("discovery: without a key, the first replica that answers tells the id", async () => {
  const serverLogs: string[] = [];
  const logs: string[] = [];
  const two = server(2, serverLogs);
  const [closedPort] = freePorts(1); // nothing listens there: replica 3 is down
  try {
    const found = await discoverClusterId({
      self: 4,
      peers: [addressOf(3, closedPort), addressOf(4, 1), addressOf(2, two.addr.port)],
      log: logTo(logs),
      rounds: 1,
    });
    assert.deepEqual(found, { cluster: CLUSTER, from: 2 });
    assert.ok(logs.some((l) => /cannot learn the cluster id from replica 3/.test(l)), logs.join());
    assert.ok(logs.some((l) => /learned cluster id c1c1c1c1c1c1c1c1 from replica 2/.test(l)));
    assert.ok(serverLogs.some((l) => /replica 4 asked for the cluster id/.test(l)));
    assert.deepEqual(two.connectedPeers, [], "a whois is not a peer connection");
  } finally {
    await two.close();
  }
});

Deno.test("discovery: with a key, only an answer proving the key is taken", async () => {
  const serverLogs: string[] = [];
  const logs: string[] = [];
  const wrong = server(2, serverLogs, OTHER_KEY);
  const unkeyed = server(3, serverLogs);
  const right = server(5, serverLogs, KEY);
  try {
    const found = await discoverClusterId({
      self: 4,
      peers: [
        addressOf(2, wrong.addr.port),
        addressOf(3, unkeyed.addr.port),
        addressOf(5, right.addr.port),
      ],
      clusterKey: KEY,
      log: logTo(logs),
      rounds: 1,
    });
    assert.deepEqual(found, { cluster: CLUSTER, from: 5 });
    const text = logs.join("\n");
    assert.match(text, /replica 2 .*: its proof does not match our cluster key/);
    // The unkeyed replica refuses a keyed whois (and says why in its log).
    assert.match(text, /replica 3 .*: closed without an answer/);
    assert.match(serverLogs.join("\n"), /bad whois.*uses a cluster key but this replica has none/);

    // Nobody with the key: no id, after the rounds asked for.
    await assert.rejects(
      () =>
        discoverClusterId({
          self: 4,
          peers: [addressOf(2, wrong.addr.port)],
          clusterKey: KEY,
          log: logTo([]),
          rounds: 2,
          minBackoffMs: 1,
        }),
      (e: unknown) => e instanceof DiscoveryError && /told the cluster id/.test(e.message),
    );
    // A keyed replica refuses an unkeyed whois.
    await assert.rejects(
      () =>
        discoverClusterId({
          self: 4,
          peers: [addressOf(5, right.addr.port)],
          log: logTo([]),
          rounds: 1,
        }),
      DiscoveryError,
    );
    assert.match(serverLogs.join("\n"), /bad whois.*has no cluster key/);
  } finally {
    await Promise.all([wrong.close(), unkeyed.close(), right.close()]);
  }
});

Deno.test("discovery: answers are checked against the replica dialled and the nonce", () => {
  const request = new DiscoveryRequest({ self: 4, peer: 2, key: KEY, nonce: new Uint8Array(32) });
  const whois = request.whois;
  assert.equal(whois.kind, "whois");
  assert.throws(
    () => request.onAnswer({ kind: "identity", from: 3, cluster: CLUSTER, proof: "0".repeat(64) }),
    /the answer comes from replica 3, we dialled 2/,
  );
  assert.throws(
    () => request.onAnswer({ kind: "identity", from: 2, cluster: CLUSTER }),
    /has no cluster key/,
  );
  assert.throws(
    () => request.onAnswer({ kind: "identity", from: 2, cluster: CLUSTER, proof: "0".repeat(64) }),
    /proof does not match/,
  );
  assert.throws(() => request.onAnswer({ kind: "auth", proof: "0".repeat(64) }), /identity frame/);
  // Nobody else to ask.
  return assert.rejects(
    () => discoverClusterId({ self: 1, peers: [addressOf(1, 1)], log: logTo([]) }),
    /no other replica/,
  );
});

const tlsSkip = await opensslSkipReason();

Deno.test({
  name: "discovery: over TLS (tls-replication), with the replica's certificate",
  ignore: tlsSkip !== undefined,
  async fn() {
    await withTempDir("lamportkv-discovery-tls-", async (dir) => {
      const certs = await makeTestCerts(dir);
      const read = (path: string) => Deno.readTextFileSync(path);
      const ca = read(certs.caCert);
      const context = new TlsContext({
        cert: read(certs.serverCert),
        key: read(certs.serverKey),
        ca,
      });
      const serverLogs: string[] = [];
      const two = new PeerServer({
        hostname: HOST,
        port: 0,
        self: 2,
        cluster: CLUSTER,
        log: logTo(serverLogs, { rateLimit: { intervalMs: 0 } }),
        onMessages: () => {},
        tls: { context, clientAuth: "yes" },
      });
      await two.open();
      try {
        const found = await discoverClusterId({
          self: 4,
          peers: [addressOf(2, two.addr.port)],
          log: logTo([]),
          rounds: 1,
          tls: () => ({ caCerts: [ca], cert: read(certs.clientCert), key: read(certs.clientKey) }),
        });
        assert.deepEqual(found, { cluster: CLUSTER, from: 2 });
        // A certificate of another CA gets no answer.
        await assert.rejects(
          () =>
            discoverClusterId({
              self: 4,
              peers: [addressOf(2, two.addr.port)],
              log: logTo([]),
              rounds: 1,
              tls: () => ({
                caCerts: [ca],
                cert: read(certs.rogueCert),
                key: read(certs.rogueKey),
              }),
            }),
          DiscoveryError,
        );
      } finally {
        await two.close();
      }
    });
  },
});
