/**
 * The path an end-to-end test sends mail along: a private Postfix that
 * relays everything to the test's recording sink, and a mailsubmit under
 * test whose downstream is that Postfix's re-injection listener.
 *
 *   const sink = new RecordingSink();
 *   const { postfix, ms } = await startMailPath(sink);
 *   ...
 *   await tearDown(ms, postfix, sink);
 */
import { MailsubmitUnderTest, type StartOptions } from './mailsubmit-under-test.ts';
import { PrivatePostfix, type PrivatePostfixOptions } from './private-postfix.ts';
import type { RecordingSink } from './recording-sink.ts';

export type MailsubmitOptions = Omit<StartOptions, 'downstreamPort'>;

export interface MailPathOptions {
  readonly postfix?: Omit<PrivatePostfixOptions, 'relayPort'>;
  /** The mailsubmit's options, or a function of the Postfix (for its directory or port). */
  readonly mailsubmit?: MailsubmitOptions | ((postfix: PrivatePostfix) => MailsubmitOptions);
}

export interface MailPath {
  readonly postfix: PrivatePostfix;
  readonly ms: MailsubmitUnderTest;
}

/** Starts the sink listening, then Postfix, then mailsubmit; a Postfix whose mailsubmit did not start is stopped again. */
export async function startMailPath(sink: RecordingSink, options: MailPathOptions = {}): Promise<MailPath> {
  const postfix = await PrivatePostfix.start({ ...options.postfix, relayPort: await sink.listen() });
  try {
    const mailsubmit = typeof options.mailsubmit === 'function' ? options.mailsubmit(postfix) : options.mailsubmit;
    const ms = await MailsubmitUnderTest.start({ ...mailsubmit, downstreamPort: postfix.port });
    return { postfix, ms };
  } catch (error) {
    await postfix.stop();
    throw error;
  }
}
