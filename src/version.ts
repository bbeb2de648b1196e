/**
 * lamportkv's version, as `INFO` (`lamportkv_version`), `GET /status` and `--version` report it.
 *
 * @module
 */

/** The version of this build. */
export const LAMPORTKV_VERSION = "0.3.0";
