/**
 * Health and status over HTTP: `GET /livez` (200 while the process serves HTTP at all),
 * `GET /readyz` (200 only in a normal view with a majority of the configuration, else 503 with the
 * reason as text) and `GET /status` (the {@link StatusReport} as JSON). `/status` may be read from
 * another replica's page (the dashboard polls every replica), so it allows any origin.
 *
 * @module
 */
import type { ReplicaStatus } from "../core/types.ts";
import { type HttpRoute, jsonResponse, textResponse } from "./http_server.ts";

/** Where one replica of the configuration listens. */
export interface ReplicaEndpoint {
  id: number;
  host: string;
  clientPort: number;
  peerPort: number;
  /** Absent when the replica has no HTTP port. */
  httpPort?: number;
}

/** One peer as this replica sees it. */
export interface PeerReport {
  id: number;
  /** This replica's outgoing link to the peer is connected and past its handshake. */
  linkUp: boolean;
  /** The peer's link to this replica is connected and past its handshake. */
  incoming: boolean;
  /** Milliseconds since anything was heard from the peer; null if never. */
  lastHeardMs: number | null;
  /** Entries this replica sent that the peer has not acknowledged yet; null if unknown. */
  ackedBehind: number | null;
}

/** One installed view, as the dashboard lists recent view changes. */
export interface ViewChangeReport {
  view: number;
  members: number[];
  /** Wall-clock ms when this replica installed it. */
  at: number;
  /** Why the view changed (as far as this replica knows). */
  cause: string;
}

/** `GET /status`: everything an operator or the dashboard wants to know about one replica. */
export interface StatusReport {
  id: number;
  /** lamportkv's version. */
  version: string;
  uptimeSeconds: number;
  state: ReplicaStatus["state"];
  /** True when `/readyz` answers 200. */
  ready: boolean;
  /** Why not ready (absent when ready). */
  reason?: string;
  view: number;
  members: number[];
  /** The learners of the view. */
  learners: number[];
  /** This replica's part in the configuration in force. */
  role: ReplicaStatus["role"];
  /** The voters of the configuration in force. */
  voters: number[];
  delivered: number;
  holdback: number;
  /** Own entries kept for resending until every other member acknowledged them. */
  unacked: number;
  pending: number;
  clock: number;
  keys: number;
  /** Every replica of the configuration and its ports (the dashboard finds the others here). */
  replicas: ReplicaEndpoint[];
  peers: PeerReport[];
  /** Client operations answered since start, and those whose outcome was an error (NOQUORUM,
   * UNKNOWN, REFUSED, ...; not error replies such as WRONGTYPE). */
  ops: { total: number; errors: number };
  /** Request latency over the last seconds, in milliseconds (null without requests). */
  latency: { p50Ms: number | null; p99Ms: number | null; windowSeconds: number };
  /** The data directory; absent when the replica keeps nothing on disk. */
  storage?: {
    dir: string;
    walBytes: number;
    walSegments: number;
    snapshotBytes: number;
    snapshotIndex: number;
  };
  /** Recent views installed by this replica, newest last. */
  viewChanges: ViewChangeReport[];
  /** The settings in force (names as in the config file; secrets hidden). */
  settings: Record<string, string>;
}

/** What the health routes read. */
export interface HealthSource {
  /** The full report. */
  report(): StatusReport;
}

/** The reason a replica in `state` with `status` is not ready, or null when it is. */
export function notReadyReason(status: ReplicaStatus, configured: number): string | null {
  const majority = Math.floor(configured / 2) + 1;
  if (status.role === "none") {
    return "not a member of the configuration in force (waiting to join, or removed)";
  }
  switch (status.state) {
    case "normal":
      return status.members.length >= majority
        ? null
        : `view ${status.view} has ${status.members.length} of ${configured} replicas, ` +
          `fewer than a majority (${majority})`;
    case "joining":
      return "joining: no view installed yet (loading, or no majority in reach)";
    case "changing":
    case "installing":
      return `view change in progress (last view ${status.view}); no majority agreed yet`;
  }
}

/** `/livez`, `/readyz` and `/status`. */
export function healthRoutes(source: HealthSource): HttpRoute[] {
  const cors = { "access-control-allow-origin": "*", "cache-control": "no-store" };
  return [
    {
      methods: ["GET"],
      path: "/livez",
      handle: () => textResponse("ok\n", 200, { "cache-control": "no-store" }),
    },
    {
      methods: ["GET"],
      path: "/readyz",
      handle: () => {
        const r = source.report();
        return r.ready
          ? textResponse(`ok: normal in view ${r.view}\n`, 200, cors)
          : textResponse(`not ready: ${r.reason ?? r.state}\n`, 503, cors);
      },
    },
    {
      methods: ["GET"],
      path: "/status",
      handle: () => jsonResponse(source.report(), 200, cors),
    },
  ];
}
