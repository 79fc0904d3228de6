/**
 * A certificate authority for tests, made by openssl in a temporary
 * directory: its root certificate is the CA file a TLS client is given, and
 * it signs server certificates for the names a test asks for. Beside them,
 * the certificates a verifying client must refuse: self-signed, expired, or
 * for another name (signed by the CA with other names).
 *
 *   const ca = TestCa.create();
 *   const server = ca.issue('relay', ['localhost', '127.0.0.1']);
 *   // server.certFile, server.keyFile, ca.caFile, server.fingerprint
 *   ca.remove();
 *
 * Keys are P-256: quick to make, and every TLS stack in the tests speaks it.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  readonly keyFile: string;
  readonly certFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
  /** SHA-256 of the DER certificate as openssl prints it (AB:CD:...), the form an admin pins. */
  readonly fingerprint: string;
  /** The same in the daemon's normalized form (lowercase hex, no colons), as it logs and compares pins. */
  readonly sha256: string;
}

export interface IssueOptions {
  /** Days of validity; negative: expired that many days ago. Default 2. */
  readonly days?: number;
  /** The subject's CN. Default: the first name. */
  readonly commonName?: string;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export class TestCa {
  private constructor(
    /** The temporary directory holding every file; removed by remove(). */
    readonly dir: string,
    /** The root certificate (PEM): what a verifying client trusts. */
    readonly caFile: string,
  ) {}

  static create(commonName = 'mailsubmit test CA'): TestCa {
    const dir = mkdtempSync(join(tmpdir(), 'mailsubmit-test-ca-'));
    // Postfix's daemons may read the files after dropping privileges.
    chmodSync(dir, 0o755);
    const ca = new TestCa(dir, join(dir, 'ca.pem'));
    ca.openssl('req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', `/CN=${commonName}`, '-days', '2');
    return ca;
  }

  /** A key and a certificate signed by this CA for DNS names and IP addresses (told apart by their form). */
  issue(name: string, names: readonly string[], options: IssueOptions = {}): TestCertificate {
    const commonName = options.commonName ?? names[0] ?? name;
    this.openssl('req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`);
    writeFileSync(join(this.dir, `${name}.ext`), `subjectAltName=${subjectAltName(names)}\n`);
    this.openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', String(options.days ?? 2), '-extfile', `${name}.ext`);
    return this.certificate(name);
  }

  /** A certificate signed by its own key: right names, no chain to any CA. */
  selfSigned(name: string, names: readonly string[], options: IssueOptions = {}): TestCertificate {
    const commonName = options.commonName ?? names[0] ?? name;
    this.openssl('req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${commonName}`, '-days', String(options.days ?? 2), '-addext', `subjectAltName=${subjectAltName(names)}`);
    return this.certificate(name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private certificate(name: string): TestCertificate {
    const keyFile = join(this.dir, `${name}.key`);
    const certFile = join(this.dir, `${name}.pem`);
    // Readable by whoever serves it (Postfix reads keys as root, other servers may not).
    chmodSync(keyFile, 0o644);
    const cert = readFileSync(certFile);
    const fingerprint = new X509Certificate(cert).fingerprint256;
    return { keyFile, certFile, key: readFileSync(keyFile), cert, fingerprint, sha256: fingerprint.replace(/:/g, '').toLowerCase() };
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

function subjectAltName(names: readonly string[]): string {
  return names.map((n) => (isIP(n) === 0 ? `DNS:${n}` : `IP:${n}`)).join(',');
}
