import assert from "node:assert/strict";
import { LoadProgress } from "../../src/runtime/load_progress.ts";

Deno.test("load progress: the snapshot file's share of the keys restored, then the log's bytes", () => {
  const reports: [number, number][] = [];
  const progress = new LoadProgress((loaded, total) => reports.push([loaded, total]));
  progress.sized(1000, 500);
  progress.restored(1, 3);
  progress.restored(3, 3);
  progress.replayed(200);
  progress.replayed(500);
  assert.deepEqual(reports, [[0, 1500], [333, 1500], [1000, 1500], [1200, 1500], [1500, 1500]]);
  const none = new LoadProgress((loaded, total) => reports.push([loaded, total]));
  none.sized(0, 0);
  none.restored(0, 0);
  assert.deepEqual(reports.slice(-2), [[0, 0], [0, 0]], "an empty snapshot of no keys");
});
