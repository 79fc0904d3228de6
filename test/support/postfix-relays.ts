/**
 * Several downstreams for one daemon: three private Postfix instances on
 * loopback, all relaying to the same recording sink, each under its own
 * myhostname so a test can tell which one delivered a message (Postfix
 * greets the sink with EHLO <myhostname> and names itself in Received).
 *
 *   local     the plain re-injection listener, as install/ adds it
 *   starttls  the same listener offering STARTTLS with a certificate from
 *             the bed's test CA, for localhost and 127.0.0.1
 *   auth      STARTTLS too, and relaying only for a client that
 *             authenticated (Cyrus SASL: SCRAM-SHA-256, PLAIN, LOGIN, offered
 *             only under TLS); others are refused 554 at RCPT
 *
 *   const sink = new RecordingSink();
 *   const relays = await PostfixRelays.start(sink, { user: 'relay', password: 'secret' });
 *   // relays.starttls.port, relays.ca.caFile, relays.certificate.fingerprint
 *   await relays.local.stopMailSystem();   // one downstream down
 *   relays.via(message);                   // 'starttls'
 *   await relays.stop(); await sink.close();
 */
import { PrivatePostfix, type ListenerTls, type PrivatePostfixOptions } from './private-postfix.ts';
import type { RecordedMessage, RecordingSink } from './recording-sink.ts';
import { TestCa, type TestCertificate } from './test-ca.ts';

export type RelayName = 'local' | 'starttls' | 'auth';

export const RELAY_NAMES: readonly RelayName[] = ['local', 'starttls', 'auth'];

export interface PostfixRelaysOptions {
  /** The auth instance's user. Default relay-user. */
  readonly user?: string;
  /** The auth instance's password. Default a fixed test secret. */
  readonly password?: string;
  /** The certificate the starttls and auth instances present. Default: issued by the bed's CA for localhost and 127.0.0.1. */
  readonly certificate?: (ca: TestCa) => TestCertificate;
  /** smtpd_tls_security_level of the starttls and auth instances. Default may. */
  readonly tlsLevel?: ListenerTls['level'];
  /** What every instance gets besides (mainCf lines, listener options). */
  readonly postfix?: Pick<PrivatePostfixOptions, 'mainCf' | 'listenerOptions'>;
  /** The sink's port when it already listens; otherwise the bed starts it listening. */
  readonly relayPort?: number;
}

/** The myhostname of each instance: what it says in EHLO to the sink. */
export function relayHostname(name: RelayName): string {
  return `${name}.relays.test`;
}

export class PostfixRelays {
  private constructor(
    readonly ca: TestCa,
    /** What the starttls and auth instances present. */
    readonly certificate: TestCertificate,
    readonly user: string,
    readonly password: string,
    private readonly instances: Readonly<Record<RelayName, PrivatePostfix>>,
  ) {}

  static async start(sink: RecordingSink, options: PostfixRelaysOptions = {}): Promise<PostfixRelays> {
    const ca = TestCa.create();
    const certificate = (options.certificate ?? ((c: TestCa) => c.issue('relay', ['localhost', '127.0.0.1'])))(ca);
    const user = options.user ?? 'relay-user';
    const password = options.password ?? 'relay-secret-2026';
    const relayPort = options.relayPort ?? (await sink.listen());
    const tls: ListenerTls = { certFile: certificate.certFile, keyFile: certificate.keyFile, level: options.tlsLevel ?? 'may' };
    const own: Record<RelayName, Partial<PrivatePostfixOptions>> = { local: {}, starttls: { tls }, auth: { tls, auth: { user, password } } };
    const started = await Promise.allSettled(RELAY_NAMES.map((name) => PrivatePostfix.start({ ...options.postfix, ...own[name], relayPort, hostname: relayHostname(name) })));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
      ca.remove();
      throw failed.reason;
    }
    const [local, starttls, auth] = started.map((s) => (s as PromiseFulfilledResult<PrivatePostfix>).value) as [PrivatePostfix, PrivatePostfix, PrivatePostfix];
    return new PostfixRelays(ca, certificate, user, password, { local, starttls, auth });
  }

  /** A: the plain re-injection listener. */
  get local(): PrivatePostfix {
    return this.instances.local;
  }

  /** B: STARTTLS with the bed's certificate. */
  get starttls(): PrivatePostfix {
    return this.instances.starttls;
  }

  /** C: STARTTLS, and SMTP AUTH required to relay. */
  get auth(): PrivatePostfix {
    return this.instances.auth;
  }

  instance(name: RelayName): PrivatePostfix {
    return this.instances[name];
  }

  /** Which instance handed this message to the sink, by the EHLO it greeted the sink with. */
  via(message: RecordedMessage): RelayName | undefined {
    const hostname = message.ehlo.replace(/^(?:EHLO|HELO) /i, '');
    return RELAY_NAMES.find((name) => relayHostname(name) === hostname);
  }

  /** Stops every instance and removes their directories and the CA's (the sink is the test's). */
  async stop(): Promise<void> {
    await Promise.all(RELAY_NAMES.map((name) => this.instances[name].stop()));
    this.ca.remove();
  }
}
