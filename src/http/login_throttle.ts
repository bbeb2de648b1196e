/**
 * Rate limiting of failed HTTP logins, per client host, on the schedule a RESP connection has
 * (`src/net/session.ts`): the first two failures are answered at once, then each answer waits
 * 25 ms, doubling per failure up to 1 s, after the previous one (so parallel guesses queue up).
 * Successful logins are never delayed and, as on a connection, do not reset the count; a minute
 * without failures forgets the host. Pure: the caller passes the clock.
 *
 * @module
 */

/** Failed logins answered at once. */
const FAILURES_UNDELAYED = 2;
/** Delay of the first delayed failure's answer; doubles with each further one. */
const FAILURE_DELAY_MS = 25;
/** Most delay of one failure's answer. */
const MAX_FAILURE_DELAY_MS = 1000;
/** A host without failures this long starts over. */
const FORGET_AFTER_MS = 60_000;
/** Most hosts remembered (the oldest are forgotten first). */
const MAX_HOSTS = 10_000;

interface HostFailures {
  count: number;
  /** When the last failure's answer is due (ms). */
  notBefore: number;
  last: number;
}

/** Failed logins per host. */
export class LoginThrottle {
  readonly #hosts = new Map<string, HostFailures>();

  /**
   * Notes a failed login from `host` at `now` (ms); returns how many ms to wait before answering.
   */
  failed(host: string, now: number): number {
    let f = this.#hosts.get(host);
    if (f !== undefined && now - f.last > FORGET_AFTER_MS) f = undefined;
    f ??= { count: 0, notBefore: 0, last: now };
    this.#hosts.delete(host); // re-inserted last: the map stays ordered by last failure
    f.count++;
    f.last = now;
    const delayed = f.count - FAILURES_UNDELAYED;
    const delay = delayed <= 0
      ? 0
      : Math.min(FAILURE_DELAY_MS * 2 ** (delayed - 1), MAX_FAILURE_DELAY_MS);
    f.notBefore = Math.max(now, f.notBefore) + delay;
    this.#hosts.set(host, f);
    while (this.#hosts.size > MAX_HOSTS) this.#hosts.delete(this.#hosts.keys().next().value!);
    return f.notBefore - now;
  }

  /** Hosts remembered (tests). */
  get size(): number {
    return this.#hosts.size;
  }
}
