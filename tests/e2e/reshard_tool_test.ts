/**
 * The resharding tool end to end: 2 replica groups × 3 real replica processes (g1 owns slots
 * 0-8191 and is the control group, g2 8192-16383). Concurrent lamportkv clients (following MOVED,
 * ASK and TRYAGAIN) run a random SET/GET/DEL/EXISTS workload over keys of the moving slots and
 * others while slots 0-3999 (4,000 slots, the issue's number) move back and forth between the
 * groups, with preloaded keys of 100 bytes in them:
 *
 * 1. g1 -> g2 by the module (`src/client/reshard.ts` over one client per group); after its first
 *    batch, replica 3 (g1) and replica 6 (g2) are killed with kill -9; the move goes on through
 *    the others; both are restarted.
 * 2. g2 -> g1 by the command-line tool (`reshard --slots 0-3999 --to g1`), killed with kill -9
 *    once it printed its first batch, then run again: it resumes and ends.
 * 3. more moves back and forth by the module while the time budget lasts (at least one).
 *
 * Then: the workload's history is linearizable per key; every preloaded key is read back with its
 * value; each key is in exactly one group, the owner of its slot (GETKEYSINSLOT at both groups'
 * leaders), and both groups hold the same slot map.
 *
 * Bounded: the workload stops after the moves (and at most 1,500 ops per client); the extra moves
 * stop after about 20 s.
 *
 * Sanitizers: off (child processes outlive single ops).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CLIENT_TS,
  respCall,
  runClient,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { HistoryRecorder, randomOp, workloadSeed } from "../support/history.ts";
import { checkLinearizable } from "../support/linearizability.ts";
import { Prng } from "../support/prng.ts";
import { ClientError, LamportClient } from "../../src/client/client.ts";
import { ClientGroups } from "../../src/client/reshard_cli.ts";
import { reshard, type ReshardSummary } from "../../src/client/reshard.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { RespError } from "../../src/net/resp.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const MOVING = { start: 0, end: 3999 };
/** Preloaded keys (100-byte values) in the moving slots. */
const PRELOADED = 600;
const WORKLOAD_CLIENTS = 6;
const MAX_OPS_PER_CLIENT = 1500;
/** Extra moves stop starting after this long. */
const EXTRA_MOVES_MS = 20_000;

/** `count` keys `<prefix><n>` whose slot is (or is not, `inside` false) in the moving range. */
function keysOf(prefix: string, count: number, inside: boolean): string[] {
  const keys: string[] = [];
  for (let n = 0; keys.length < count && n < 100_000; n++) {
    const slot = keySlot(`${prefix}${n}`);
    if ((slot >= MOVING.start && slot <= MOVING.end) === inside) keys.push(`${prefix}${n}`);
  }
  return keys;
}

/** A lamportkv client of the cluster (short attempts: replicas get killed). */
function clientOf(cluster: TestCluster, preferredReplica?: number): LamportClient {
  return new LamportClient(cluster.config, {
    preferredReplica,
    deadlineMs: 8000,
    attemptTimeoutMs: 1500,
  });
}

/** Runs the reshard tool as a process and kills it (kill -9) once it printed a batch's progress. */
async function killToolMidway(config: string, args: string[]): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", CLIENT_TS, config, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  let seen = "";
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!/^move .*: moved [1-9]/m.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGKILL");
    await reader.cancel();
  } finally {
    clearTimeout(timer);
    await child.status;
  }
  return seen;
}

Deno.test({
  name: "e2e reshard tool: 4,000 slots back and forth under a linearizable workload, kill -9s",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 6, groups: 2 }, async (cluster) => {
      const port = (id: number) => cluster.clientPort(id);
      await waitFor(async () => {
        for (const id of cluster.ids) {
          const info = String(await respCall(port(id), ["CLUSTER", "INFO"]));
          if (!info.includes("cluster_state:ok")) return false;
        }
        return true;
      }, { message: "every replica's CLUSTER INFO to say cluster_state:ok", timeoutMs: 15_000 });

      // Preload: keys of 100 bytes in the moving slots, written by a few clients at once.
      const preloaded = keysOf("pre:", PRELOADED, true);
      const value = (k: string) => k.padEnd(100, ".");
      const writers = Array.from({ length: 6 }, (_, i) => clientOf(cluster, 1 + (i % 6)));
      try {
        await Promise.all(writers.map(async (w, i) => {
          for (let k = i; k < preloaded.length; k += writers.length) {
            assert.equal(await w.command(["SET", preloaded[k], value(preloaded[k])]), "OK");
          }
        }));
      } finally {
        await Promise.all(writers.map((w) => w.close()));
      }

      // The workload: keys in the moving slots and outside them.
      const seed = workloadSeed();
      console.log(`workload seed ${seed} (LAMPORTKV_SEED=${seed} replays it)`);
      const rng = new Prng(seed);
      const keys = [...keysOf("w:", 16, true), ...keysOf("w:", 4, false)];
      const history = new HistoryRecorder();
      let stop = false;
      const outcomes = { ok: 0, unknown: 0, refused: 0 };
      const switches: Record<string, number> = {};
      const workload = Promise.all(
        Array.from({ length: WORKLOAD_CLIENTS }, async (_, c) => {
          const client = clientOf(cluster, 1 + (c % 6));
          client.onSwitch = (e) => switches[e.reason] = (switches[e.reason] ?? 0) + 1;
          const own = new Prng(rng.int(0, 2 ** 32 - 1));
          try {
            for (let i = 0; i < MAX_OPS_PER_CLIENT && !stop; i++) {
              const op = randomOp(own, keys, c, i);
              const argv = op.kind === "put"
                ? ["SET", op.key, op.value!]
                : [op.kind === "get" ? "GET" : op.kind === "delete" ? "DEL" : "EXISTS", op.key];
              const h = history.begin(c, op);
              try {
                const reply = await client.command(argv);
                if (reply instanceof RespError && /^(TRYAGAIN|MOVED|ASK)$/.test(reply.code)) {
                  // Refused, not applied (the client's retries ran out).
                  history.failed(h);
                  outcomes.refused++;
                } else {
                  history.record(h, reply);
                  outcomes.ok++;
                }
              } catch (e) {
                if (!(e instanceof ClientError)) throw e;
                if (e.maybeApplied) history.unknown(h);
                else history.failed(h);
                outcomes.unknown++;
              }
            }
          } finally {
            await client.close();
          }
        }),
      );

      const config = cluster.configPath;
      const summaries: ReshardSummary[] = [];
      const groups = new ClientGroups(cluster.config, (id) => clientOf(cluster, id));
      try {
        // 1. g1 -> g2; one replica of each group killed after the first batch, then restarted.
        let killed: Promise<unknown> | null = null;
        summaries.push(
          await reshard(groups, MOVING, "g2", {
            batch: 40,
            onProgress: (p) => {
              if (killed === null && p.keys > 0) {
                killed = Promise.all([cluster.kill(3), cluster.kill(6)]);
              }
            },
          }),
        );
        assert.ok(killed !== null, "killed mid-migration");
        await killed;
        assert.equal(summaries[0].moves.length, 1);
        assert.ok(summaries[0].keys >= PRELOADED, `${summaries[0].keys} keys moved`);
        await Promise.all([cluster.restart(3), cluster.restart(6)]);

        // 2. g2 -> g1 by the tool, killed after its first batch, then run again: it resumes.
        const tool = ["reshard", "--slots", "0-3999", "--to", "g1", "--batch", "20"];
        const cut = await killToolMidway(config, tool);
        assert.match(cut, /^move 1\/1: g2 -> g1 slots 0-3999: moved [1-9]/m);
        const resumed = await runClient([config, ...tool]);
        assert.equal(resumed.code, 0, JSON.stringify(resumed));
        assert.match(resumed.stdout, /^done: 4000 slots in 1 moves, moved \d+ keys/m);
        const again = await runClient([config, ...tool]);
        assert.match(again.stdout, /^nothing to move/m, JSON.stringify(again));

        // 3. Back and forth while the budget lasts.
        const until = performance.now() + EXTRA_MOVES_MS;
        let to = "g2";
        do {
          summaries.push(await reshard(groups, MOVING, to, { batch: 100 }));
          to = to === "g2" ? "g1" : "g2";
        } while (performance.now() < until && summaries.length < 8);
        // The workload ran all along (not out of ops before the last move).
        assert.ok(
          outcomes.ok + outcomes.unknown + outcomes.refused < WORKLOAD_CLIENTS * MAX_OPS_PER_CLIENT,
        );
      } finally {
        stop = true;
        await workload;
        await groups.close();
      }
      const moves = summaries.length + 1;
      console.log(
        `${moves} moves of 4,000 slots; workload: ${outcomes.ok} ops answered, ` +
          `${outcomes.unknown} failed or unknown, ${outcomes.refused} refused after retries; ` +
          `client switches ${JSON.stringify(switches)}; moves: ` +
          summaries.map((s) => `${s.keys} keys in ${Math.round(s.elapsedMs)} ms`).join(", "),
      );
      assert.ok(outcomes.ok > 100, `${outcomes.ok} ops answered`);
      assert.ok(
        (switches.ask ?? 0) > 0 && (switches.moved ?? 0) > 0,
        "clients followed ASK, MOVED",
      );

      // The history is linearizable per key.
      const verdict = checkLinearizable(history.ops());
      assert.ok(verdict.ok, verdict.ok ? "" : `${verdict.key}: ${verdict.message}`);

      // Both groups hold the same map; every key is in exactly one group, its slot's owner.
      const maps = await Promise.all(
        [1, 4].map((id) => respCall(port(id), ["CLUSTER", "SLOTMAP"])),
      );
      assert.deepEqual(maps[0], maps[1]);
      const last = summaries.at(-1)!;
      const owner = last.moves[0].to;
      assert.equal(
        JSON.stringify(maps[0]),
        JSON.stringify([
          last.epoch,
          ...(owner === "g1"
            ? [[0, 8191, "g1"], [8192, 16383, "g2"]]
            : [[0, 3999, "g2"], [4000, 8191, "g1"], [8192, 16383, "g2"]]),
        ]),
      );
      const holders = new Map<string, string[]>();
      const slots = new Set([...preloaded, ...keys].map(keySlot));
      for (const [group, id] of [["g1", 1], ["g2", 4]] as const) {
        for (const slot of slots) {
          const found = await respCall(
            port(id),
            ["CLUSTER", "GETKEYSINSLOT", String(slot), "1000"],
          ) as string[];
          const count = await respCall(port(id), ["CLUSTER", "COUNTKEYSINSLOT", String(slot)]);
          assert.equal(count, found.length);
          for (const k of found) holders.set(k, [...holders.get(k) ?? [], group]);
        }
      }
      const ownerOf = (k: string) =>
        keySlot(k) <= MOVING.end ? owner : keySlot(k) < 8192 ? "g1" : "g2";
      for (const [k, where] of holders) {
        assert.deepEqual(where, [ownerOf(k)], `key ${k} is in ${where.join(", ")}`);
      }
      // No preloaded key lost, each with its value.
      const reader = clientOf(cluster);
      try {
        for (const k of preloaded) {
          assert.deepEqual(holders.get(k), [owner], `preloaded key ${k}`);
          assert.equal(await reader.command(["GET", k]), value(k), k);
        }
      } finally {
        await reader.close();
      }
    });
  },
});
