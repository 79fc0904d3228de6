/**
 * Admission of a new connection, from the kernel's word only (SO_PEERCRED):
 * is this uid on the authorization list, did it come through the set-gid
 * helper when that is how mailsubmit is installed, and is there room for it.
 * The helper's own check is a courtesy; this is the one that counts.
 *
 * A user database that cannot answer (out of descriptors or memory, a
 * directory server away) is this side's trouble: 75, never 77. The addon
 * reports an NSS lookup made without a free descriptor as EMFILE rather
 * than "no such user" (packages/socket-addon/src/user-db.c).
 */
import { authorize, SubmissionError, type CallerIdentity, type Grant } from '@mailsubmit/shared';
import type { PeerCredentials } from '@mailsubmit/socket-addon';
import type { AuthorizationStore } from '../2-authorize/authorization-store.ts';
import type { DaemonConfig } from '../config/daemon-config.ts';
import { IdentityCache } from '../2-authorize/identity-cache.ts';
import { isResourceShortage } from '../util/resource-shortage.ts';

export interface Admitted {
  readonly caller: CallerIdentity;
  readonly grant: Grant;
}

export class Admission {
  private readonly perUid = new Map<number, number>();
  private total = 0;
  /** Facts from the user database only; the decision below is made afresh every time. */
  private readonly identities = new IdentityCache();
  /** The list's load time the cached identities belong to: a reloaded list starts them afresh. */
  private identitiesFor = -1;

  constructor(
    private config: DaemonConfig,
    private readonly authorizations: AuthorizationStore,
    /** The mailsubmit group's gid in set-gid mode; null in open mode. */
    private readonly helperGid: number | null,
  ) {}

  /** A reload's new limits; connections already admitted keep their slots. */
  configure(config: DaemonConfig): void {
    this.config = config;
  }

  get inFlight(): number {
    return this.total;
  }

  /** Decides; throws a SubmissionError (77 or 75). On success a slot is held until release(). */
  admit(credentials: PeerCredentials): Admitted {
    if (this.authorizations.loadedAtMs !== this.identitiesFor) {
      this.identities.clear();
      this.identitiesFor = this.authorizations.loadedAtMs;
    }
    const caller = this.lookUp(credentials.uid);
    const who = caller.userName === null ? `uid ${credentials.uid}` : `user ${caller.userName} (uid ${credentials.uid})`;
    const grant = authorize(this.authorizations.entries, caller);
    if (grant === null) {
      throw new SubmissionError('not-authorized', `${who} is not on the authorization list; the administrator can run: mailsubmitctl allow ${caller.userName ?? `uid:${credentials.uid}`}`);
    }
    if (this.helperGid !== null && credentials.gid !== this.helperGid) {
      throw new SubmissionError('not-authorized', `${who} did not connect through the mailsubmit helper (set-gid install)`);
    }
    const { maxConnections, maxPerUid } = this.config.limits;
    if (this.total >= maxConnections) throw new SubmissionError('overload', `${maxConnections} submissions are already in progress`);
    const mine = this.perUid.get(credentials.uid) ?? 0;
    if (mine >= maxPerUid) throw new SubmissionError('overload', `${who} already has ${maxPerUid} submissions in progress`);
    this.total++;
    this.perUid.set(credentials.uid, mine + 1);
    return { caller, grant };
  }

  private lookUp(uid: number): CallerIdentity {
    try {
      return this.identities.identityOf(uid);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (isResourceShortage(err)) {
        throw new SubmissionError('overload', `mailsubmitd is short of resources to look up uid ${uid} (${why}); try again shortly`);
      }
      throw new SubmissionError('internal', `the user database could not say who uid ${uid} is (${why}); try again later`);
    }
  }

  release(uid: number): void {
    this.total--;
    const left = (this.perUid.get(uid) ?? 1) - 1;
    if (left <= 0) this.perUid.delete(uid);
    else this.perUid.set(uid, left);
  }
}
