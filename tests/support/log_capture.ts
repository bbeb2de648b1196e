/**
 * A {@link Logger} for tests that keeps what is logged in an array instead of writing it.
 *
 * @module
 */
import { Logger } from "../../src/log/logger.ts";
import type { LogRecord } from "../../src/log/format.ts";
import type { RateLimitOptions } from "../../src/log/rate_limit.ts";

/** Options of {@link logTo}. */
export interface LogToOptions {
  /** The replica id of the records (default 0). */
  id?: number;
  /** The rate limit of `Log.limited` (default: the replica's). */
  rateLimit?: RateLimitOptions;
  /** What is pushed for a record (default: its message). */
  show?: (record: LogRecord) => string;
  /** Every record is pushed here as well. */
  records?: LogRecord[];
}

/** A logger at level `debug` that pushes each record's message (or `show(record)`) to `lines`. */
export function logTo(lines: string[], options: LogToOptions = {}): Logger {
  const show = options.show ?? ((r: LogRecord) => r.msg);
  return new Logger({
    id: options.id ?? 0,
    level: "debug",
    rateLimit: options.rateLimit,
    sink: (r) => {
      lines.push(show(r));
      options.records?.push(r);
    },
  });
}
