/**
 * Unit tests of the probes of the other groups' replicas (a sharded cluster): a replica that
 * answers PING (or anything but -LOADING, or nothing, as a TLS port does) is up; one that says
 * -LOADING or cannot be reached is not. Real TCP on loopback.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ReplicaAddress } from "../../src/config/config.ts";
import { GroupProbe, pingProbe } from "../../src/runtime/group_probe.ts";
import { deadPort, FakeRespServer, reply } from "../support/fake_resp_server.ts";
import { waitFor } from "../support/cluster.ts";

const at = (port: number, id = 1): ReplicaAddress => ({
  id,
  host: "127.0.0.1",
  clientPort: port,
  peerPort: 1,
});

Deno.test("group probe: PING answered, LOADING, silent, unreachable", async () => {
  const pong = FakeRespServer.start(() => reply.ok());
  const noauth = FakeRespServer.start(() => reply.error("NOAUTH Authentication required."));
  const loading = FakeRespServer.start(() => reply.error("LOADING not serving yet"));
  const silent = FakeRespServer.start(() => "hang");
  try {
    assert.equal(await pingProbe(at(pong.port), 2000), true);
    assert.deepEqual(pong.requests.map((r) => r.argv), [["PING"]]);
    assert.equal(await pingProbe(at(noauth.port), 2000), true);
    assert.equal(await pingProbe(at(loading.port), 2000), false);
    assert.equal(await pingProbe(at(silent.port), 200), true, "connected: up");
    assert.equal(await pingProbe(at(deadPort()), 2000), false);
  } finally {
    for (const s of [pong, noauth, loading, silent]) await s.close();
  }
});

Deno.test("group probe: rounds record each target's last result", async () => {
  const up = new Set([1, 3]);
  const probe = new GroupProbe({
    targets: [at(1, 1), at(2, 2), at(3, 3)],
    intervalMs: 10,
    probe: (t) => Promise.resolve(up.has(t.id)),
  });
  assert.equal(probe.online(1), undefined, "nothing known before the first round");
  probe.start();
  try {
    await waitFor(() => probe.online(1) === true);
    assert.equal(probe.online(2), false);
    assert.equal(probe.online(3), true);
    up.delete(1);
    await waitFor(() => probe.online(1) === false);
  } finally {
    probe.stop();
  }
});
