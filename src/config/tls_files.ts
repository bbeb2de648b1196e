/**
 * Reads and checks the files the TLS settings name, at start (a problem is a {@link SettingError}
 * naming the setting's file and line: the replica refuses to start) and on reload (SIGHUP).
 *
 * Checked: each file can be read and holds PEM; the key parses and belongs to the certificate;
 * the certificate is within its validity period; with a CA file, the CA parses and, when peers
 * check each other (`tls-replication yes`), the certificate is signed by it (else no replica
 * could accept another).
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { SettingError, type SettingFile, type Settings } from "./settings.ts";
import type { TlsMaterial } from "../net/tls.ts";

/** The PEM certificates of `text`, in order. */
function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

async function readFile(file: SettingFile, name: string): Promise<string> {
  try {
    return await Deno.readTextFile(file.path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : err instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new SettingError(`${file.where}: ${name}: cannot read ${file.path}: ${why}`);
  }
}

/** Every certificate of a PEM file (at least one). */
function certificates(text: string, file: SettingFile, name: string): X509Certificate[] {
  const pems = pemCertificates(text);
  const fail = (why: string): never => {
    throw new SettingError(`${file.where}: ${name}: ${file.path}: ${why}`);
  };
  if (pems.length === 0) return fail("no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  return pems.map((pem) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      return fail(`not a valid certificate: ${(err as Error).message}`);
    }
  });
}

/**
 * The TLS material the settings name, or undefined when TLS is not configured.
 *
 * @throws {SettingError} `<file>:<line>: <setting>: <problem>` for the first file at fault.
 */
export async function loadTlsMaterial(
  settings: Settings,
  now: Date = new Date(),
): Promise<TlsMaterial | undefined> {
  const certFile = settings.tlsCertFile;
  const keyFile = settings.tlsKeyFile;
  if (certFile === undefined || keyFile === undefined) return undefined;
  const certText = await readFile(certFile, "tls-cert-file");
  const keyText = await readFile(keyFile, "tls-key-file");
  const chain = certificates(certText, certFile, "tls-cert-file");
  const cert = chain[0];
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    throw new SettingError(
      `${keyFile.where}: tls-key-file: ${keyFile.path}: not a PEM private key (unencrypted ` +
        `RSA, EC or PKCS#8): ${(err as Error).message}`,
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw new SettingError(
      `${keyFile.where}: tls-key-file: ${keyFile.path} is not the key of the certificate in ` +
        `${certFile.path}`,
    );
  }
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from || now > to) {
    throw new SettingError(
      `${certFile.where}: tls-cert-file: ${certFile.path}: the certificate is valid from ` +
        `${cert.validFrom} to ${cert.validTo}, not now`,
    );
  }
  const material: TlsMaterial = { cert: certText, key: keyText };
  const caFile = settings.tlsCaCertFile;
  if (caFile !== undefined) {
    const caText = await readFile(caFile, "tls-ca-cert-file");
    const cas = certificates(caText, caFile, "tls-ca-cert-file");
    // A chain (intermediates in the cert file) is left to the handshake to check.
    const signed = chain.length > 1 || cas.some((ca) => {
      try {
        return cert.verify(ca.publicKey);
      } catch {
        return false; // e.g. another key type
      }
    });
    if (settings.tlsReplication && !signed) {
      throw new SettingError(
        `${certFile.where}: tls-cert-file: ${certFile.path} is not signed by the CA in ` +
          `${caFile.path}, so the other replicas would refuse it (tls-replication yes)`,
      );
    }
    material.ca = caText;
  }
  return material;
}
