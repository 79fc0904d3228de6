/**
 * Admission when the user database cannot answer: the shortage is the
 * daemon's (75, try again), never the caller's refusal (77). The addon turns
 * an NSS lookup made at the fd limit into EMFILE (socket-addon/test/process.test.ts);
 * here that error, and a directory server that does not answer, meet admission.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { statusOf } from '@mailsubmit/shared';
import { SocketError } from '@mailsubmit/socket-addon';
import type { AuthorizationStore } from '../../src/2-authorize/authorization-store.ts';
import type { DaemonConfig } from '../../src/config/daemon-config.ts';

const lookup = vi.hoisted(() => ({ fail: null as Error | null }));

vi.mock('../../src/2-authorize/user-database.ts', () => ({
  identityOf: (uid: number) => {
    if (lookup.fail !== null) throw lookup.fail;
    return { uid, userName: 'alice', groupNames: [] };
  },
  groupIdOf: () => null,
}));

const { Admission } = await import('../../src/1-accept/admission.ts');

const store = { entries: [{ principal: { kind: 'user', name: 'alice' }, capabilities: [], senders: { kind: 'any' } }], loadedAtMs: 1 } as unknown as AuthorizationStore;
const config = { limits: { maxConnections: 10, maxPerUid: 10 } } as unknown as DaemonConfig;
const credentials = { uid: 1234, gid: 1234, pid: 1 };

function refusal(action: () => unknown): { outcome?: string; message?: string } {
  try {
    action();
  } catch (err) {
    return err as { outcome?: string; message?: string };
  }
  throw new Error('admitted');
}

describe('admission when the user database cannot answer', () => {
  beforeEach(() => {
    lookup.fail = null;
  });

  it.each(['EMFILE', 'ENFILE', 'ENOMEM'])('answers %s with 75 (overload), never 77', (code) => {
    lookup.fail = new SocketError(code, `getpwuid_r ${code}`, 0, 'getpwuid_r');
    const admission = new Admission(config, store, null);
    const error = refusal(() => admission.admit(credentials));
    expect(error.outcome).toBe('overload');
    expect(statusOf(error.outcome as string).exitCode).toBe(75);
    expect(error.message).toMatch(new RegExp(code));
    expect(admission.inFlight).toBe(0);
  });

  it('answers a directory server that does not answer with 75 (internal)', () => {
    lookup.fail = new SocketError('ETIMEDOUT', 'getpwuid_r ETIMEDOUT', 0, 'getpwuid_r');
    const error = refusal(() => new Admission(config, store, null).admit(credentials));
    expect(error.outcome).toBe('internal');
    expect(statusOf(error.outcome as string).exitCode).toBe(75);
  });

  it('admits the same listed user once the database answers again (nothing was cached from the failure)', () => {
    const admission = new Admission(config, store, null);
    lookup.fail = new SocketError('EMFILE', 'getpwuid_r EMFILE', 0, 'getpwuid_r');
    expect(refusal(() => admission.admit(credentials)).outcome).toBe('overload');
    lookup.fail = null;
    expect(admission.admit(credentials).caller.userName).toBe('alice');
  });
});
