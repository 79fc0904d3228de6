/**
 * Edits of the authorization list that keep its comments and layout, written
 * atomically: a temporary file in the same directory, fsync, rename over the
 * list, fsync of the directory. A reader (the daemon, the helper) sees the
 * old list or the new one, never a half-written file, even across a crash.
 */
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  formatEntry,
  formatPrincipal,
  parseAuthorizationList,
  type AuthorizationEntry,
  type Principal,
} from '@mailsubmit/shared';

export function readEntries(path: string): AuthorizationEntry[] {
  return parseAuthorizationList(readFileSync(path, 'utf8'), path);
}

/** Adds the entry, or replaces the line of the same principal. Returns whether it was new. */
export function upsertEntry(path: string, entry: AuthorizationEntry): boolean {
  const lines = readFileSync(path, 'utf8').split('\n');
  const existing = findLine(path, lines, entry.principal);
  if (existing === null) {
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    lines.push(formatEntry(entry), '');
  } else {
    lines[existing] = formatEntry(entry);
  }
  writeAtomically(path, lines.join('\n'));
  return existing === null;
}

/** Removes the principal's line. Returns whether it was there. */
export function removeEntry(path: string, principal: Principal): boolean {
  const lines = readFileSync(path, 'utf8').split('\n');
  const existing = findLine(path, lines, principal);
  if (existing === null) return false;
  lines.splice(existing, 1);
  writeAtomically(path, lines.join('\n'));
  return true;
}

function findLine(path: string, lines: readonly string[], principal: Principal): number | null {
  const key = formatPrincipal(principal);
  const entry = parseAuthorizationList(lines.join('\n'), path).find((e) => formatPrincipal(e.principal) === key);
  return entry === undefined ? null : entry.line - 1;
}

export function writeAtomically(path: string, text: string): void {
  // Validate before replacing: a list the daemon would refuse is never written.
  parseAuthorizationList(text, path);
  // The list's owner, group and mode carry over: set-gid installs make it
  // 0640 root:GROUP, the helper reading it through its group.
  const old = statSync(path);
  const temporary = join(dirname(path), `.${process.pid}.authorized.tmp`);
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    fchownSync(fd, old.uid, old.gid);
    fchmodSync(fd, old.mode & 0o777);
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temporary);
    throw err;
  }
  closeSync(fd);
  renameSync(temporary, path);
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
