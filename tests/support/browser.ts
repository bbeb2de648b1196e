/**
 * A real browser for e2e tests of the HTTP pages: Debian's Chromium, headless, driven by
 * `puppeteer-core` (no browser download; the system binary is used).
 *
 * ```ts
 * const skip = await chromiumSkipReason();
 * Deno.test({ name: skipName("my test", skip), ignore: skip !== undefined, fn: () =>
 *   withBrowser(async (browser) => { const page = await browser.newPage(); ... }) });
 * announceSkip("my test", skip);
 * ```
 *
 * When Chromium is missing, {@link chromiumSkipReason} tries `apt-get install -y chromium` once
 * per process (only as root with apt-get available), as `redis_server.ts` does for redis-server.
 * {@link withBrowser} always closes the browser, and kills its process if closing hangs.
 *
 * @module
 */
import puppeteer, { type Browser } from "puppeteer-core";
import { debianProgramSkipReason } from "./redis_server.ts";

/** The Chromium binary: `$LAMPORTKV_CHROMIUM` when set (no install is tried then), else Debian's. */
export const CHROMIUM: string = Deno.env.get("LAMPORTKV_CHROMIUM") || "/usr/bin/chromium";
const OVERRIDDEN = Deno.env.get("LAMPORTKV_CHROMIUM") !== undefined;

let skipReason: Promise<string | undefined> | undefined;

/**
 * Undefined when Chromium can be run; otherwise why browser tests are skipped. A missing
 * Chromium is installed with apt-get on the first call when running as root (cached).
 */
export function chromiumSkipReason(): Promise<string | undefined> {
  skipReason ??= debianProgramSkipReason(CHROMIUM, ["--version"], "chromium", {
    overridden: OVERRIDDEN ? "LAMPORTKV_CHROMIUM" : undefined,
    installTimeoutMs: 600_000,
  });
  return skipReason;
}

/** Options of {@link withBrowser}. */
export interface BrowserOptions {
  /** Deadline to launch the browser (default 20 000 ms). */
  launchTimeoutMs?: number;
  /** Deadline of one DevTools protocol call (default 20 000 ms). */
  protocolTimeoutMs?: number;
}

/** How long `browser.close()` may take before the process is killed. */
const CLOSE_DEADLINE_MS = 5000;

/**
 * Launches headless Chromium, runs `fn`, then closes the browser (on failure too); if closing
 * does not finish within a few seconds, the browser process is killed.
 */
export async function withBrowser<T>(
  fn: (browser: Browser) => Promise<T>,
  options: BrowserOptions = {},
): Promise<T> {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: options.launchTimeoutMs ?? 20_000,
    protocolTimeout: options.protocolTimeoutMs ?? 20_000,
  });
  try {
    return await fn(browser);
  } finally {
    const child = browser.process();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      browser.close().then(() => true, () => false),
      new Promise<boolean>((resolve) =>
        timer = setTimeout(() => resolve(false), CLOSE_DEADLINE_MS)
      ),
    ]);
    clearTimeout(timer);
    if (!closed && child !== null && child.exitCode === null) child.kill("SIGKILL");
  }
}
