import assert from "node:assert/strict";
import { LoadProgress } from "../../src/runtime/load_progress.ts";

Deno.test("load progress: the snapshot file half as read, half as its keys are restored, then the log", () => {
  const reports: [number, number][] = [];
  const progress = new LoadProgress((loaded, total) => reports.push([loaded, total]));
  progress.sized(1000, 0);
  progress.read(400);
  progress.read(1000);
  progress.sized(1000, 500);
  progress.restored(1, 3);
  progress.restored(3, 3);
  progress.replayed(200);
  progress.replayed(500);
  assert.deepEqual(reports, [
    [0, 1000],
    [200, 1000],
    [500, 1000],
    [500, 1500],
    [666, 1500],
    [1000, 1500],
    [1200, 1500],
    [1500, 1500],
  ]);
  // Restored without a read reported (a store restored from a state in memory): the read half
  // counts as done; a read past the file's size counts as the whole file.
  const direct = new LoadProgress((loaded, total) => reports.push([loaded, total]));
  direct.sized(1001, 0);
  direct.read(5000);
  direct.restored(0, 2);
  direct.restored(2, 2);
  assert.deepEqual(reports.slice(-4), [[0, 1001], [500, 1001], [500, 1001], [1001, 1001]]);
  const none = new LoadProgress((loaded, total) => reports.push([loaded, total]));
  none.sized(0, 0);
  none.restored(0, 0);
  assert.deepEqual(reports.slice(-2), [[0, 0], [0, 0]], "an empty snapshot of no keys");
});
