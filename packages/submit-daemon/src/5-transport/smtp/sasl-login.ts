/**
 * SASL LOGIN (draft-murchison-sasl-login): the server asks "Username:" and
 * then "Password:", each a base64 challenge, and the client answers each.
 * Never standardized, but it is what older servers and Microsoft's offer.
 * The prompts are checked rather than answered by position, so that a
 * confused server never gets the secret in answer to something else.
 */
import { SaslFailure, type SaslClient } from './sasl-mechanism.ts';

const USER_PROMPT = /^user ?name:?$/i;
const PASSWORD_PROMPT = /^password:?$/i;

export class SaslLoginClient implements SaslClient {
  readonly mechanism = 'LOGIN';
  private step: 'username' | 'password' | 'done' = 'username';

  constructor(
    private readonly username: string,
    private readonly secret: string,
  ) {}

  initialResponse(): null {
    return null;
  }

  async respond(challenge: Buffer): Promise<Buffer> {
    const prompt = challenge.toString('utf8').trim();
    if (this.step === 'username' && USER_PROMPT.test(prompt)) {
      this.step = 'password';
      return Buffer.from(this.username, 'utf8');
    }
    if (this.step === 'password' && PASSWORD_PROMPT.test(prompt)) {
      this.step = 'done';
      return Buffer.from(this.secret, 'utf8');
    }
    const expected = this.step === 'done' ? 'no further challenge' : `a ${this.step} prompt`;
    throw new SaslFailure('malformed', `the MTA's LOGIN challenge is not ${expected}`);
  }

  finish(): void {}
}
