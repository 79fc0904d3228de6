/**
 * The SCRAM-SHA-256 client against an implementation it shares nothing
 * with: Cyrus SASL's server side (the one Postfix uses), through
 * sasl-sample-server from Debian's sasl2-bin (installed by
 * install/test-tools.sh), with a sasldb made by saslpasswd2. The sample
 * server speaks `S: <base64>` / `C: <base64>` lines on its standard streams;
 * the first C: line is the mechanism, a NUL, and the initial response.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SaslScramSha256Client } from '../../../src/5-transport/smtp/sasl-scram-sha-256.ts';

const USER = 'relay-user';
const REALM = 'test.realm';
const PASSWORD = 'correct horse battery staple';
// sasl-sample-server calls itself "sample" to sasl_server_init: Cyrus reads sample.conf.
const CONFIG_FILE = 'sample.conf';

let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sasl-cyrus-'));
  const sasldb = join(dir, 'sasldb2');
  execFileSync('saslpasswd2', ['-p', '-f', sasldb, '-c', '-u', REALM, USER], { input: PASSWORD, stdio: ['pipe', 'ignore', 'pipe'] });
  writeFileSync(join(dir, CONFIG_FILE), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${sasldb}\nmech_list: SCRAM-SHA-256\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface CyrusRun {
  /** Cyrus accepted the client's proof. */
  readonly serverAccepted: boolean;
  /** The identity Cyrus says logged in. */
  readonly username: string | null;
  /** The client checked Cyrus's signature (finish() did not throw). */
  readonly clientVerified: boolean;
  readonly clientError: string | null;
  /** Responses the client made to challenges (the client-final message is the first). */
  readonly responses: number;
  /** What the sample server said of failures. */
  readonly serverErrors: string;
}

async function exchange(secret: string): Promise<CyrusRun> {
  // Line-buffered, or the sample server's prompts wait in its stdio buffer.
  const child = spawn('stdbuf', ['-oL', 'sasl-sample-server', '-s', 'smtp', '-m', 'SCRAM-SHA-256', '-u', REALM], {
    env: { ...process.env, SASL_CONF_PATH: dir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const closed = new Promise((resolve) => child.once('close', resolve));
  const killer = setTimeout(() => child.kill(), 15_000);
  const client = new SaslScramSha256Client(USER, secret);
  let mechanismSent = false;
  let serverAccepted = false;
  let username: string | null = null;
  let clientError: string | null = null;
  let responses = 0;
  let serverErrors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    serverErrors += chunk.toString();
  });
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === 'Negotiation complete') serverAccepted = true;
      const who = /^Username: (.*)$/.exec(line);
      if (who !== null) username = who[1] ?? null;
      // After the negotiation the sample server sends its own test messages: not SASL.
      if (!line.startsWith('S: ') || serverAccepted) {
        if (serverAccepted && line.startsWith('S: ')) break;
        continue;
      }
      let response: Buffer;
      if (!mechanismSent) {
        mechanismSent = true;
        response = Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), client.initialResponse()]);
      } else {
        try {
          response = await client.respond(Buffer.from(line.slice(3), 'base64'));
          responses += 1;
        } catch (err) {
          clientError = (err as Error).message;
          break;
        }
      }
      child.stdin.write(`C: ${response.toString('base64')}\n`);
    }
  } finally {
    clearTimeout(killer);
    child.kill();
    // Its standard error is read to the end only once it has closed: a refusal's words may still be on the way.
    await closed;
  }
  let clientVerified = false;
  try {
    client.finish();
    clientVerified = true;
  } catch (err) {
    clientError ??= (err as Error).message;
  }
  return { serverAccepted, username, clientVerified, clientError, responses, serverErrors };
}

describe('SCRAM-SHA-256 against Cyrus SASL', () => {
  it('Cyrus accepts the proof, and the client verifies the signature Cyrus sends', async () => {
    const run = await exchange(PASSWORD);
    expect(run).toMatchObject({ serverAccepted: true, username: `${USER}@${REALM}`, clientVerified: true, clientError: null, responses: 2 });
  });

  it('Cyrus refuses a wrong secret, and the client never sees a signature it could verify', async () => {
    const run = await exchange(`${PASSWORD}!`);
    expect(run.serverAccepted).toBe(false);
    expect(run.clientVerified).toBe(false);
    // Refused on the proof, not before it (an unknown user would be refused without one).
    expect(run.responses).toBe(1);
    expect(run.serverErrors).toMatch(/authentication failure/i);
  });
});
