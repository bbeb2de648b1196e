/**
 * `ReplicaHost.setPeers` on a real host over loopback: links follow the peer set (the peer
 * servers at the other end see them come and go), and `/status` (`report()`) and `/metrics`
 * report the current set, with no entry left for a removed peer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig, type ReplicaAddress } from "../../src/config/config.ts";
import { PeerServer } from "../../src/net/peer_server.ts";
import { ReplicaHost } from "../../src/runtime/replica_host.ts";
import { clusterId } from "../../src/config/config.ts";
import { freePorts, waitFor } from "../support/cluster.ts";
import { SILENT } from "../../src/log/logger.ts";

const HOST = "127.0.0.1";

Deno.test("replica host: setPeers opens and closes links; status and metrics follow", async () => {
  const [c1, p1, c2, c3, c4] = freePorts(5);
  // Peers 2, 3 and 4 are bare peer servers (their client ports are never used).
  const text = `1 ${HOST} ${c1} ${p1}\n`;
  const cluster = "abababababababab";
  const servers = new Map<number, PeerServer>();
  for (const id of [2, 3, 4]) {
    const s = new PeerServer({
      hostname: HOST,
      port: 0,
      self: id,
      cluster,
      log: SILENT,
      onMessages: () => {},
    });
    s.listen();
    servers.set(id, s);
  }
  const address = (id: number, clientPort: number): ReplicaAddress => ({
    id,
    host: HOST,
    clientPort,
    peerPort: servers.get(id)!.addr.port,
  });
  const config = parseConfig(
    text +
      [address(2, c2), address(3, c3)].map((a) =>
        `${a.id} ${a.host} ${a.clientPort} ${a.peerPort}\n`
      ).join(""),
    "peers.txt",
  );
  assert.notEqual(clusterId(config), cluster, "the host uses the id it is given");
  const host = new ReplicaHost({
    config,
    id: 1,
    cluster,
    log: SILENT,
    backoff: { minMs: 5, maxMs: 50 },
    listen: { clientPort: 0, peerPort: 0, httpPort: 0 },
  });
  const linkedTo = (id: number) => servers.get(id)!.connectedPeers.includes(1);
  const metrics = async () => {
    const res = await fetch(`http://${HOST}:${host.httpAddr!.port}/metrics`);
    return await res.text();
  };
  try {
    await host.start();
    await waitFor(() => linkedTo(2) && linkedTo(3), { message: "links to 2 and 3" });
    assert.deepEqual(host.peers, [2, 3]);
    assert.deepEqual(host.report().replicas.map((r) => r.id), [1, 2, 3]);
    assert.deepEqual(host.report().peers.map((p) => p.id), [2, 3]);
    assert.match(await metrics(), /lamportkv_peer_link_up\{peer="3"\}/);

    // 3 leaves, 4 arrives (the list may include us).
    host.setPeers([config.replicas[0], address(2, c2), address(4, c4)]);
    await waitFor(() => linkedTo(4) && !linkedTo(3), { message: "link to 4 up, to 3 closed" });
    assert.deepEqual(host.peers, [2, 4]);
    assert.deepEqual(host.connectedPeers().outgoing, [2, 4]);
    const report = host.report();
    assert.deepEqual(report.replicas.map((r) => r.id), [1, 2, 4]);
    assert.deepEqual(report.replicas.find((r) => r.id === 1)?.clientPort, c1);
    assert.deepEqual(report.peers.map((p) => p.id), [2, 4]);
    const text = await metrics();
    assert.doesNotMatch(text, /peer="3"|replica="3"/, "a removed peer is still reported");
    assert.match(text, /lamportkv_peer_link_up\{peer="4"\} 1/);
    assert.match(text, /lamportkv_configured_replicas 3/);

    // Without our own line, we are still reported as configured.
    host.setPeers([address(2, c2)]);
    await waitFor(() => !linkedTo(4), { message: "link to 4 closed" });
    assert.deepEqual(host.report().replicas.map((r) => r.id), [1, 2]);
  } finally {
    await host.stop();
    await Promise.all([...servers.values()].map((s) => s.close()));
  }
});
