/**
 * The seeded generator of simulations and workloads: the state machine's own (`src/kv/prng.ts`).
 *
 * @module
 */
export { Prng } from "../../src/kv/prng.ts";
