/** `deno task bench --scrape <ms>`: the option, and the scraper against a real HTTP server. */
import assert from "node:assert/strict";
import {
  BenchUsageError,
  MAX_SCRAPE_MS,
  MIN_SCRAPE_MS,
  parseBenchArgs,
} from "../../src/bench/args.ts";
import { describeScrapes, MetricsScraper } from "../../src/bench/scraper.ts";
import { waitFor } from "../support/cluster.ts";

Deno.test("bench --scrape: parsed in range, absent by default", () => {
  const opts = parseBenchArgs(["--scrape", "250", "c.txt"]);
  assert.ok(opts !== "help");
  assert.equal(opts.scrapeMs, 250);
  const plain = parseBenchArgs(["c.txt"]);
  assert.ok(plain !== "help" && plain.scrapeMs === undefined);
  for (const bad of [String(MIN_SCRAPE_MS - 1), String(MAX_SCRAPE_MS + 1), "x", "1.5"]) {
    assert.throws(() => parseBenchArgs(["--scrape", bad, "c.txt"]), BenchUsageError, bad);
  }
});

Deno.test("bench --scrape: scrapes every target until stopped, counting failures", async () => {
  let served = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/broken") return new Response("no", { status: 500 });
    served++;
    return new Response("x".repeat(2048));
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const scraper = new MetricsScraper([`${base}/metrics`, `${base}/broken`], 20);
    scraper.start();
    await waitFor(() => served >= 3, { timeoutMs: 10_000, message: "three scrapes" });
    const figures = await scraper.stop();
    const after = served;
    assert.ok(figures.scrapes >= 3, JSON.stringify(figures));
    assert.equal(figures.scrapes, after, "every answered scrape is counted");
    assert.ok(figures.failures >= 3, "the broken target counts as failed");
    assert.equal(figures.meanBytes, 2048);
    assert.equal(figures.targets, 2);
    assert.match(describeScrapes(figures), /^\/metrics of 2 replicas scraped every 20 ms/);
  } finally {
    await server.shutdown();
  }
});
