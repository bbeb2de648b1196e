/**
 * `deno task bench --scrape <ms>`: fetches every replica's `GET /metrics` every `<ms>` during the
 * run, as a Prometheus server would (more often, to make the cost visible), so that throughput
 * with and without scraping can be compared. Each fetch is bounded by a timeout; a failed one is
 * counted, not fatal.
 *
 * @module
 */

/** Longest wait for one scrape. */
const SCRAPE_TIMEOUT_MS = 5000;

/** What the scraper did. */
export interface ScrapeFigures {
  /** The interval asked for, ms. */
  intervalMs: number;
  /** Replicas scraped. */
  targets: number;
  /** Scrapes answered 200 and read. */
  scrapes: number;
  /** Scrapes that failed (error, timeout or another status). */
  failures: number;
  /** Mean time of a successful scrape, ms (null without any). */
  meanMs: number | null;
  /** Mean size of a successful scrape's body, bytes (null without any). */
  meanBytes: number | null;
}

/** Scrapes `urls` every `intervalMs` until stopped. */
export class MetricsScraper {
  readonly #urls: readonly string[];
  readonly #intervalMs: number;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #scrapes = 0;
  #failures = 0;
  #totalMs = 0;
  #totalBytes = 0;

  /** `urls` are the replicas' `/metrics` URLs. */
  constructor(urls: readonly string[], intervalMs: number) {
    this.#urls = urls;
    this.#intervalMs = intervalMs;
  }

  /** Starts scraping (every target once per interval, in parallel). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops, waits for the scrapes in flight, and returns the figures. */
  async stop(): Promise<ScrapeFigures> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    const ok = this.#scrapes;
    return {
      intervalMs: this.#intervalMs,
      targets: this.#urls.length,
      scrapes: ok,
      failures: this.#failures,
      meanMs: ok === 0 ? null : Math.round((this.#totalMs / ok) * 100) / 100,
      meanBytes: ok === 0 ? null : Math.round(this.#totalBytes / ok),
    };
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const round = performance.now();
      await Promise.all(this.#urls.map((url) => this.#scrape(url)));
      const wait = this.#intervalMs - (performance.now() - round);
      if (wait > 0 && !this.#stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  async #scrape(url: string): Promise<void> {
    const started = performance.now();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
      const body = await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      this.#scrapes++;
      this.#totalMs += performance.now() - started;
      this.#totalBytes += body.byteLength;
    } catch {
      this.#failures++;
    }
  }
}

/** One line for the report's notes. */
export function describeScrapes(f: ScrapeFigures): string {
  const each = f.meanMs === null
    ? ""
    : `, ${f.meanMs} ms and ${Math.round((f.meanBytes ?? 0) / 1024)} KiB each on average`;
  return `/metrics of ${f.targets} replicas scraped every ${f.intervalMs} ms during the run: ` +
    `${f.scrapes} scrapes${f.failures > 0 ? ` (${f.failures} failed)` : ""}${each}`;
}
