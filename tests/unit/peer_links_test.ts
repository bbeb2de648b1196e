/**
 * `PeerLinks` over real TCP on loopback: `update` opens links to new peers, closes those of peers
 * no longer listed, and re-dials a peer whose address changed; the peer servers at the other end
 * see the connections come and go.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ReplicaAddress } from "../../src/config/config.ts";
import { PeerLink } from "../../src/net/peer_link.ts";
import { PeerServer } from "../../src/net/peer_server.ts";
import { PeerLinks } from "../../src/runtime/peer_links.ts";
import type { PeerMessage } from "../../src/core/types.ts";
import { waitFor } from "../support/cluster.ts";
import { SILENT } from "../../src/log/logger.ts";

const HOST = "127.0.0.1";
const CLUSTER = "5eed5eed5eed5eed";

/** A listening peer server of replica `self`; what it receives goes to `got`. */
function server(self: number, got: { from: number; msgs: PeerMessage[] }[]): PeerServer {
  const s = new PeerServer({
    hostname: HOST,
    port: 0,
    self,
    cluster: CLUSTER,
    log: SILENT,
    onMessages: (from, msgs) => {
      got.push({ from, msgs });
    },
  });
  s.listen();
  return s;
}

function addressOf(id: number, s: PeerServer): ReplicaAddress {
  return { id, host: HOST, clientPort: 1, peerPort: s.addr.port };
}

const probe = (round: number): PeerMessage => ({ type: "probe", view: 0, ts: 1, round });

Deno.test("peer links: update opens, closes and re-addresses links", async () => {
  const got2: { from: number; msgs: PeerMessage[] }[] = [];
  const got2b: { from: number; msgs: PeerMessage[] }[] = [];
  const got3: { from: number; msgs: PeerMessage[] }[] = [];
  const two = server(2, got2);
  const twoMoved = server(2, got2b);
  const three = server(3, got3);
  const ups: number[] = [];
  const links = new PeerLinks({
    self: 1,
    create: (peer) =>
      new PeerLink({
        self: 1,
        peer: peer.id,
        hostname: peer.host,
        port: peer.peerPort,
        cluster: CLUSTER,
        log: SILENT,
        minBackoffMs: 10,
        maxBackoffMs: 50,
        onUp: () => ups.push(peer.id),
      }),
  });
  try {
    const me: ReplicaAddress = { id: 1, host: HOST, clientPort: 1, peerPort: 1 };
    // Our own line is skipped; links are created stopped.
    assert.deepEqual(links.update([me, addressOf(2, two), addressOf(3, three)]), {
      added: [2, 3],
      removed: [],
      readdressed: [],
    });
    assert.deepEqual(links.peers, [2, 3]);
    assert.equal(links.get(1), undefined);
    assert.equal(links.get(2)!.attempts, 0, "not started yet");
    links.start();
    await waitFor(() => two.connectedPeers.includes(1) && three.connectedPeers.includes(1), {
      message: "links to 2 and 3 to come up",
    });
    assert.ok(links.get(2)!.up && links.get(3)!.up);
    assert.ok(links.get(3)!.send([probe(1)]));
    await waitFor(() => got3.length === 1, { message: "the frame to reach 3" });

    // The same list again changes nothing (client port changes do not concern links).
    const link2 = links.get(2);
    assert.deepEqual(
      links.update([me, { ...addressOf(2, two), clientPort: 9 }, addressOf(3, three)]),
      {
        added: [],
        removed: [],
        readdressed: [],
      },
    );
    assert.equal(links.get(2), link2, "the same link");
    assert.equal(links.address(2)!.clientPort, 9);

    // 3 removed: its link is closed, the server sees it go.
    const link3 = links.get(3)!;
    assert.deepEqual(links.update([me, addressOf(2, two)]), {
      added: [],
      removed: [3],
      readdressed: [],
    });
    assert.equal(links.get(3), undefined);
    await waitFor(() => three.connectedPeers.length === 0, { message: "3 to lose the link" });
    assert.equal(link3.up, false);
    assert.equal(link3.send([probe(2)]), false, "a removed link sends nothing");

    // 2 moved to another address: the old connection is closed, the new address dialled (and
    // started at once, since the set is started); 3 comes back.
    assert.deepEqual(links.update([addressOf(2, twoMoved), addressOf(3, three)]), {
      added: [3],
      removed: [],
      readdressed: [2],
    });
    await waitFor(
      () =>
        twoMoved.connectedPeers.includes(1) && three.connectedPeers.includes(1) &&
        two.connectedPeers.length === 0,
      { message: "2 re-dialled at its new address, 3 linked again" },
    );
    assert.notEqual(links.get(2), link2);
    assert.equal(link2!.up, false);
    assert.ok(links.get(2)!.send([probe(3)]));
    await waitFor(() => got2b.length === 1, { message: "the frame to reach 2 at its new address" });
    assert.deepEqual(got2b, [{ from: 1, msgs: [probe(3)] }]);
    assert.deepEqual(got2, [], "nothing went to the old address");
    assert.deepEqual(ups.toSorted((a, b) => a - b), [2, 2, 3, 3]);

    assert.throws(() => links.update([addressOf(2, two), addressOf(2, three)]), /listed twice/);
  } finally {
    await links.close();
    await waitFor(
      () => [two, twoMoved, three].every((s) => s.connectedPeers.length === 0),
      { message: "every link to be closed" },
    );
    await Promise.all([two.close(), twoMoved.close(), three.close()]);
  }
  // Closed: updates are ignored.
  assert.deepEqual(links.update([addressOf(2, two)]), { added: [], removed: [], readdressed: [] });
  assert.deepEqual(links.peers, []);
});
