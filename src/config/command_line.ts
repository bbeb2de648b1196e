/**
 * Command-line value parsing shared by the entry points. Each caller passes the error class it
 * reports bad usage with.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { FSYNC_MODES, type FsyncMode } from "../storage/wal.ts";

/** The error an entry point throws for bad usage (its message is shown to the user). */
export type UsageErrorClass = new (message: string) => Error;

/**
 * `text` as a strict decimal integer in `[min, max]` (digits only: no sign, exponent, spaces or
 * leading `0x`), or null when it is not one. Callers word their own error.
 */
export function integerInRange(text: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  if (!/^[0-9]+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : null;
}

/**
 * `--<name>` as an integer in `[min, max]`.
 *
 * @throws `error` naming the option and the range.
 */
export function intOption(
  name: string,
  text: string,
  min: number,
  max: number,
  error: UsageErrorClass,
): number {
  const n = integerInRange(text, min, max);
  if (n === null) throw new error(`--${name} must be an integer in ${min}..${max}, got "${text}"`);
  return n;
}

/**
 * `--fsync` as a mode of the write-ahead log.
 *
 * @throws `error` naming the modes.
 */
export function fsyncOption(text: string, error: UsageErrorClass): FsyncMode {
  const mode = FSYNC_MODES.find((m) => m === text);
  if (mode === undefined) {
    throw new error(
      `--fsync must be ${FSYNC_MODES.join(", ").replace(/, (\w+)$/, " or $1")}, got "${text}"`,
    );
  }
  return mode;
}

/**
 * `parseArgs` with positionals allowed and unknown options refused, its errors thrown as `error`.
 */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
  error: UsageErrorClass,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new error(err instanceof Error ? err.message : String(err));
  }
}
