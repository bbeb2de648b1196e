/**
 * End to end: a replica restarting from a data directory answers while it loads it. Replica 3 of
 * three logs 400,000 keys (400 MSETs of 1,000 keys of 100 bytes), is killed (SIGKILL) and
 * restarted; while it restores its log, its client port answers PING with the loading listener's
 * `-LOADING` (not a refused connection), INFO with `loading:1`, and its HTTP port `/readyz` with
 * 503 and `/livez` with 200 (`src/runtime/loading_listeners.ts`). Then it is a member again and
 * serves every key as before. The replies are polled from the restart on, with a deadline.
 *
 * Also a regression test: 400 large entries are fewer than the 1,000 deliveries between delivery
 * marks counted alone; the restarted replica held them all back (44 MB) and sent them in every
 * flush report, and the view changes to readmit it never ended (the whole cluster stopped
 * serving). Marks now also come after 1 MiB of delivered arguments (`deliveryMarkBytes`).
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { RespError } from "../../src/net/resp.ts";
import { parseInfo } from "../../src/net/info.ts";
import { LOADING_HTTP_REASON, LOADING_REPLY } from "../../src/runtime/loading_listeners.ts";
import { respCall, RespTestClient, withCluster } from "../support/cluster.ts";

const MSETS = 400;
const PER_MSET = 1_000;
const VALUE = "v".repeat(100);

/** What a probe saw: a refused connection, an error reply's text, or a reply. */
async function probe(port: number, argv: string[]): Promise<string> {
  try {
    const r = await respCall(port, argv, 2_000);
    return r instanceof RespError ? `-${r.message}` : String(r);
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

Deno.test({
  name: "e2e loading: a restarting replica answers LOADING while it restores its data directory",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, http: true }, async (cluster) => {
      const client = await RespTestClient.connect(cluster.clientPort(1));
      try {
        for (let m = 0; m < MSETS; m++) {
          const argv = ["MSET"];
          for (let i = m * PER_MSET; i < (m + 1) * PER_MSET; i++) argv.push(`key:${i}`, VALUE);
          assert.equal(await client.call(argv, 30_000), "OK");
        }
      } finally {
        await client.close();
      }
      await cluster.waitForAgreement({ timeoutMs: 30_000 });
      assert.equal((await cluster.kill(3)).signal, "SIGKILL");

      const port = cluster.clientPort(3);
      const loadingReply = `-${LOADING_REPLY}`;
      const seen: string[] = [];
      const loadingInfos: Record<string, string>[] = [];
      let readyz: string | undefined;
      let livez: number | undefined;
      /** INFO and the HTTP port while PING still got the loading listener's answer. */
      const sampleLoading = async () => {
        // The loading listeners answer these; the replica's own may have taken over meanwhile.
        const info = await respCall(port, ["INFO"], 2_000).catch(() => undefined);
        if (typeof info === "string" && !info.includes("# lamportkv")) {
          loadingInfos.push(parseInfo(info));
        }
        const ready = await fetch(`${cluster.httpUrl(3)}/readyz`).catch(() => undefined);
        const text = await ready?.text();
        if (ready?.status === 503 && text === `not ready: ${LOADING_HTTP_REASON}\n`) {
          readyz ??= text;
          const live = await fetch(`${cluster.httpUrl(3)}/livez`).catch(() => undefined);
          await live?.body?.cancel();
          livez ??= live?.status;
        }
      };
      let restartFailed: string | undefined;
      const restart = cluster.restart(3, 60_000);
      restart.catch((err) => restartFailed = String(err));
      // From the restart on, until the replica answers PING with PONG.
      await cluster.waitFor(async () => {
        const reply = await probe(port, ["PING"]);
        if (seen.at(-1) !== reply) {
          seen.push(reply);
          cluster.note(`replica 3 answers PING: ${reply}`);
        }
        if (reply === loadingReply) await sampleLoading();
        return reply === "PONG";
      }, {
        timeoutMs: 90_000,
        intervalMs: 5,
        message: "replica 3 to answer PONG",
        giveUpIf: () => restartFailed,
      });
      await restart;
      assert.ok(seen.includes(loadingReply), `LOADING while it loaded: ${seen}`);
      assert.equal(seen.at(-1), "PONG", "then it served");
      const loadingInfo = loadingInfos[0];
      assert.equal(loadingInfo?.loading, "1", "INFO says loading:1 meanwhile");
      assert.equal(loadingInfo?.tcp_port, String(port));
      assert.equal(loadingInfo?.delivered, undefined, "no state to report yet");
      // Progress, in bytes of the data directory: never past the total, never backwards.
      let before = 0;
      for (const info of loadingInfos) {
        const [loaded, total] = [info.loading_loaded_bytes, info.loading_total_bytes].map(Number);
        assert.ok(loaded >= before && loaded <= total, JSON.stringify(info));
        assert.equal(info.loading_start_time, loadingInfo.loading_start_time);
        const perc = total === 0 ? 0 : (100 * loaded) / total;
        assert.equal(info.loading_loaded_perc, perc.toFixed(2));
        before = loaded;
      }
      cluster.note(
        `${loadingInfos.length} INFO while loading; the last: ${
          loadingInfos.at(-1)?.loading_loaded_perc
        }% of ${loadingInfos.at(-1)?.loading_total_bytes} bytes`,
      );
      assert.ok(readyz !== undefined, "/readyz answered 503 (loading) meanwhile");
      assert.equal(livez, 200, "/livez answered 200 meanwhile");

      await cluster.waitForView({ ids: [1, 2, 3], timeoutMs: 30_000 });
      assert.equal(await respCall(port, ["DBSIZE"]), MSETS * PER_MSET);
      assert.equal(await respCall(port, ["GET", `key:${MSETS * PER_MSET - 1}`]), VALUE);
    });
  },
});
