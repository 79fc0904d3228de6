/**
 * The end of an end-to-end test file: the daemon under test, then Postfix,
 * then the sink, then the test accounts, each even when an earlier one was
 * never started (a failed beforeAll).
 */
import type { MailsubmitUnderTest } from './mailsubmit-under-test.ts';
import type { PrivatePostfix } from './private-postfix.ts';
import type { RecordingSink } from './recording-sink.ts';
import { removeAll } from './test-accounts.ts';

export async function tearDown(ms: MailsubmitUnderTest | undefined, postfix: PrivatePostfix | undefined, sink: RecordingSink): Promise<void> {
  await ms?.stop();
  await postfix?.stop();
  await sink.close();
  removeAll();
}
