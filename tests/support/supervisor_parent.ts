/**
 * A program that starts a supervised child (`supervised_child.ts`), registers the directory
 * `Deno.args[0]` for removal at unload, prints `child <pid>` once the child is ready and then exits
 * (`Deno.exit(0)`) without stopping it: the supervisor's unload handler must kill the child and
 * remove the directory. For `tests/unit/supervisor_test.ts`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { removeAtUnload, Supervisor } from "../../src/supervisor/supervisor.ts";

const CHILD = fileURLToPath(new URL("./supervised_child.ts", import.meta.url));

removeAtUnload(Deno.args[0]);
const supervisor = new Supervisor();
const child = supervisor.spawn(1, ["run", CHILD, "--id", "1", "--on-term", "ignore"]);
await supervisor.waitReady(1, 20_000);
console.log(`child ${child.pid}`);
Deno.exit(0);
