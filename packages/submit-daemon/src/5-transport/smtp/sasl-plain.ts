/**
 * SASL PLAIN (RFC 4616): one message, `authzid NUL authcid NUL passwd`,
 * with an empty authorization identity (act as the user we log in as).
 * It shows the secret to the server, so smtp-auth.ts sends it only under
 * TLS unless the administrator allowed otherwise.
 */
import { SaslFailure, type SaslClient } from './sasl-mechanism.ts';

export class SaslPlainClient implements SaslClient {
  readonly mechanism = 'PLAIN';

  constructor(
    private readonly username: string,
    private readonly secret: string,
  ) {}

  initialResponse(): Buffer {
    return Buffer.from(`\u0000${this.username}\u0000${this.secret}`, 'utf8');
  }

  async respond(): Promise<Buffer> {
    throw new SaslFailure('malformed', 'the MTA sent a challenge after the PLAIN message, and PLAIN has none');
  }

  finish(): void {}
}
