/**
 * Throwaway certificates for TLS tests, made with `openssl` at test time in a temp dir (nothing
 * secret is committed): a CA, a server certificate (SAN `IP:127.0.0.1`, `DNS:localhost`, usable
 * by replicas both as server and as client), a client certificate signed by the same CA, and a
 * "rogue" certificate signed by another CA.
 *
 * {@link opensslSkipReason} says why TLS tests cannot run: `openssl` missing and not installable
 * (it is installed with apt-get when running as root).
 *
 * @module
 */

/** Paths of the generated PEM files. */
export interface TestCerts {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by another CA. */
  rogueCert: string;
  rogueKey: string;
  /** Makes another certificate signed by the test CA (for reload tests); returns its paths. */
  issue(name: string): Promise<{ cert: string; key: string }>;
}

async function run(program: string, args: string[], cwd?: string): Promise<Deno.CommandOutput> {
  return await new Deno.Command(program, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
}

async function hasOpenssl(): Promise<boolean> {
  try {
    return (await run("openssl", ["version"])).success;
  } catch {
    return false;
  }
}

/** Undefined when `openssl` can be run (installing it when root and missing), else why not. */
export async function opensslSkipReason(): Promise<string | undefined> {
  if (await hasOpenssl()) return undefined;
  const root = Deno.uid?.() === 0;
  if (!root) return "openssl not installed (apt-get install openssl)";
  try {
    await run("apt-get", ["update", "-qq"]);
    await run("apt-get", ["install", "-y", "-qq", "openssl"]);
  } catch {
    // reported below
  }
  return (await hasOpenssl())
    ? undefined
    : "openssl not installed and apt-get could not install it";
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await run("openssl", args, dir);
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-subj",
    `/CN=lamportkv test ${name}`,
  ]); // deno-fmt-ignore
}

async function makeCert(dir: string, name: string, ca: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=lamportkv test ${name}`,
  ]); // deno-fmt-ignore
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]); // deno-fmt-ignore
}

/** Makes the test CA and certificates in `dir`. */
export async function makeTestCerts(dir: string): Promise<TestCerts> {
  await makeCa(dir, "ca");
  await makeCa(dir, "other-ca");
  await makeCert(dir, "server", "ca");
  await makeCert(dir, "client", "ca");
  await makeCert(dir, "rogue", "other-ca");
  const p = (f: string) => `${dir}/${f}`;
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    rogueCert: p("rogue.crt"),
    rogueKey: p("rogue.key"),
    issue: async (name) => {
      await makeCert(dir, name, "ca");
      return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
    },
  };
}
