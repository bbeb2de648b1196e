/**
 * The cluster dashboard: `GET /` serves a static page (`src/http/dashboard/`: HTML, CSS and ES
 * modules, no build step) that polls every replica's `/status` from the browser. The files are
 * read once, when the routes are built, relative to this module; `/dashboard/<file>` serves the
 * page's assets with their content types.
 *
 * @module
 */
import type { HttpRoute } from "./http_server.ts";
import { textResponse } from "./http_server.ts";

/** The page's files, with the content type each is served with. */
export const DASHBOARD_FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
  "dashboard.js": "text/javascript; charset=utf-8",
  "chart.js": "text/javascript; charset=utf-8",
  "model.js": "text/javascript; charset=utf-8",
};

const DIR = new URL("./dashboard/", import.meta.url);

/**
 * No script from elsewhere, no inline script; `/status` of the other replicas (other ports) may be
 * fetched.
 */
const CSP = "default-src 'self'; img-src 'self' data:; connect-src *; base-uri 'none'; " +
  "form-action 'none'; frame-ancestors 'none'";

/**
 * The dashboard's routes: `/` and `/dashboard/<file>`. Reads the files now.
 *
 * @param dir where the files are (default: `dashboard/` next to this module).
 * @throws when a file cannot be read (a broken installation; nothing should start).
 */
export function dashboardRoutes(dir: URL = DIR): HttpRoute[] {
  const files = new Map<string, { body: Uint8Array; type: string }>();
  for (const [name, type] of Object.entries(DASHBOARD_FILES)) {
    files.set(name, { body: Deno.readFileSync(new URL(name, dir)), type });
  }
  const serve = (name: string): Response => {
    const file = files.get(name);
    if (file === undefined) return textResponse("not found\n", 404);
    return new Response(file.body.slice(), {
      headers: {
        "content-type": file.type,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        ...(name === "index.html" ? { "content-security-policy": CSP } : {}),
      },
    });
  };
  return [
    { methods: ["GET"], path: "/", handle: () => serve("index.html") },
    {
      methods: ["GET"],
      path: "/dashboard/",
      prefix: true,
      handle: (_req, url) => serve(url.pathname.slice("/dashboard/".length)),
    },
  ];
}
