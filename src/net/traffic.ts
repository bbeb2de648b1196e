/**
 * Bytes read and written on the connections of one port (clients, peers), counted where the
 * servers and links read (their read loops) and write (`ConnWriter`): one addition per call, with
 * no wrapper around the connection (a wrapper's extra promise per read and write cost 3.7% ± 1.9%
 * of SET throughput in an A/B run). `/metrics` reads the totals.
 *
 * @module
 */

/** Bytes in and out of one port's connections since start. */
export class ByteTraffic {
  /** Bytes read from the connections. */
  bytesIn = 0;
  /** Bytes written to the connections. */
  bytesOut = 0;
}
