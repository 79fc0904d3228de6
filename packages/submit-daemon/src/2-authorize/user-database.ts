/**
 * Who a uid is: login name and every group it belongs to, from the system's
 * user and group databases (getpwuid_r and getgrouplist through the addon,
 * so NSS sources such as LDAP count the same as for the set-gid helper).
 * This is the only input to authorization besides the kernel's SO_PEERCRED.
 */
import { gecosFullName, type CallerIdentity } from '@mailsubmit/shared';
import { lookupGroupById, lookupGroupByName, lookupUserById } from '@mailsubmit/socket-addon';

export function identityOf(uid: number): CallerIdentity {
  const user = lookupUserById(uid);
  if (user === null) return { uid, userName: null, groupNames: [] };
  const groupNames: string[] = [];
  for (const gid of user.groupIds) {
    const name = lookupGroupById(gid);
    if (name !== null && !groupNames.includes(name)) groupNames.push(name);
  }
  return { uid, userName: user.name, groupNames, fullName: gecosFullName(user.gecos ?? '', user.name) };
}

/** The gid of a group name, or null when the group database has no such group. */
export function groupIdOf(name: string): number | null {
  return lookupGroupByName(name);
}
