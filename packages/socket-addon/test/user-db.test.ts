/**
 * User and group lookups, checked against the system's own databases as
 * getent(1) reports them, so NSS answers the same way for both.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeFd, dupFd, fdKind, getFileStatusFlags, lookupGroupById, lookupGroupByName, lookupUserById, setFileStatusFlags } from '../src/index.ts';

function getent(database: string, key: string): string[] | null {
  try {
    return execFileSync('getent', [database, key], { encoding: 'utf8' }).trim().split(':');
  } catch {
    return null;
  }
}

/** Every group of a user according to id(1). */
function idGroups(name: string): number[] {
  return execFileSync('id', ['-G', name], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
}

describe('lookupUserById', () => {
  it('finds root with its groups', () => {
    const user = lookupUserById(0);
    expect(user).toMatchObject({ name: 'root', uid: 0, gid: 0 });
    expect([...(user?.groupIds ?? [])].sort()).toEqual(idGroups('root').sort());
  });

  it('agrees with getent for every user in the passwd database', () => {
    const lines = readFileSync('/etc/passwd', 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      const [name, , uid, gid] = line.split(':');
      const user = lookupUserById(Number(uid));
      const expected = getent('passwd', uid as string);
      expect(user?.name, `uid ${uid}`).toBe(expected?.[0]);
      if (user && user.name === name) expect(user.gid).toBe(Number(gid));
    }
  });

  it('returns null for a uid nobody has', () => {
    expect(getent('passwd', '23456')).toBeNull();
    expect(lookupUserById(23456)).toBeNull();
  });

  it('refuses ids that are not uids', () => {
    expect(() => lookupUserById(-1)).toThrow(TypeError);
    expect(() => lookupUserById(0xffffffff)).toThrow(TypeError);
    expect(() => lookupUserById(1.5)).toThrow(TypeError);
  });
});

describe('group lookups', () => {
  it('map names and gids both ways as getent does', () => {
    const lines = readFileSync('/etc/group', 'utf8').split('\n').filter(Boolean);
    for (const line of lines) {
      const [name, , gid] = line.split(':') as [string, string, string];
      expect(lookupGroupById(Number(gid)), `gid ${gid}`).toBe(getent('group', gid)?.[0]);
      expect(lookupGroupByName(name), name).toBe(Number(getent('group', name)?.[2]));
    }
  });

  it('return null for unknown groups', () => {
    expect(lookupGroupById(12345)).toBeNull();
    expect(lookupGroupByName('no-such-group-here')).toBeNull();
  });

  it('refuse malformed names', () => {
    expect(() => lookupGroupByName('')).toThrow(TypeError);
    expect(() => lookupGroupByName('a\0b')).toThrow(TypeError);
  });
});

describe('dupFd', () => {
  it('returns a new fd sharing the open file description', () => {
    const fd = openSync('/dev/null', constants.O_RDONLY);
    const copy = dupFd(fd);
    try {
      expect(copy).not.toBe(fd);
      expect(fdKind(copy)).toEqual(fdKind(fd));
      setFileStatusFlags(copy, getFileStatusFlags(copy) | constants.O_NONBLOCK);
      expect(getFileStatusFlags(fd) & constants.O_NONBLOCK).toBe(constants.O_NONBLOCK);
    } finally {
      closeFd(copy);
      closeSync(fd);
    }
  });

  it('makes the copy close-on-exec', () => {
    const fd = openSync('/dev/null', constants.O_RDONLY);
    const copy = dupFd(fd);
    try {
      const flags = readFileSync(`/proc/self/fdinfo/${copy}`, 'utf8');
      const octal = /flags:\s+([0-7]+)/.exec(flags)?.[1] ?? '0';
      expect(Number.parseInt(octal, 8) & 0o2000000).toBe(0o2000000);
    } finally {
      closeFd(copy);
      closeSync(fd);
    }
  });
});
