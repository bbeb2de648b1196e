/**
 * The seeds of a seeded unit test, from the environment: `<NAME>_SEED=<n>` runs that seed alone (to
 * replay a failure), `<NAME>_SEEDS=<n>` runs seeds 1..n, and by default seeds 1..`defaultCount`.
 *
 * @module
 */

/** The seeds to run, and whether one was picked (coverage checks over many seeds then skip). */
export interface SeedChoice {
  seeds: number[];
  /** True when `<NAME>_SEED` picked one seed. */
  one: boolean;
}

/**
 * Reads `<name>_SEED` and `<name>_SEEDS`.
 *
 * @throws {Error} when either is set to something that is not a non-negative integer.
 */
export function seedsFromEnv(name: string, defaultCount: number): SeedChoice {
  const read = (variable: string): number | undefined => {
    const text = Deno.env.get(variable);
    if (text === undefined) return undefined;
    const n = Number(text);
    if (text.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
      throw new Error(`${variable}=${text}: expected a non-negative integer`);
    }
    return n;
  };
  const one = read(`${name}_SEED`);
  if (one !== undefined) return { seeds: [one], one: true };
  const count = read(`${name}_SEEDS`) ?? defaultCount;
  return { seeds: Array.from({ length: count }, (_, i) => 1 + i), one: false };
}
