/**
 * lamportkv's version, as `INFO` (`lamportkv_version`), `GET /status` and `--version` report it.
 *
 * @module
 */

/** The version of this build. */
export const LAMPORTKV_VERSION = "0.3.0";

/** The Redis version lamportkv reports (INFO, HELLO): the one its behaviour is tested against. */
export const REDIS_VERSION = "7.0.15";
