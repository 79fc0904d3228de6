/**
 * The table of mailsubmit.conf keys against what an administrator reads:
 * mailsubmit.conf(5) must describe every key of the table and no other,
 * with the table's type, range, default and reload effect, opening with
 * the table's sentence; the file install.sh writes must show the table's
 * defaults and name the table's restart keys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RESTART_KEYS } from '../../src/config/config-changes.ts';
import { CONFIG_KEYS, writtenDefault, type ConfigKey } from '../../src/config/config-keys.ts';
import { SECONDS } from '../../src/config/config-value-types.ts';
import { parseConfig } from '../../src/config/load-config.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const BY_KEY = new Map<string, ConfigKey>(CONFIG_KEYS.map((k) => [k.key, k]));

/** Markdown as it reads once rendered: no emphasis, no code marks, no escapes, one space between words. */
function plain(markdown: string): string {
  return markdown.replace(/\\(.)/g, '$1').replace(/\*\*|[*`]/g, '').replace(/\s+/g, ' ').trim();
}

interface DocumentedKey {
  readonly described: string;
  readonly body: string;
}

/** The KEYS section of mailsubmit.conf(5): its introduction, and each `* \`name\` (type):` entry by table.key. */
function manPageKeys(): { intro: string; keys: Map<string, DocumentedKey> } {
  const page = readFileSync(join(ROOT, 'docs', 'man', 'mailsubmit.conf.5.md'), 'utf8');
  const section = page.split(/^## KEYS$/m)[1]?.split(/^## /m)[0] ?? '';
  const keys = new Map<string, DocumentedKey>();
  let table: string | null = null;
  let entry: { key: string; described: string; lines: string[] } | null = null;
  const close = () => {
    if (entry !== null) keys.set(entry.key, { described: plain(entry.described), body: plain(entry.lines.join('\n')) });
    entry = null;
  };
  for (const line of section.split('\n')) {
    const heading = /^### \[(\w+)\]$/.exec(line);
    const item = /^\* `(\w+)` \((.*)\):$/.exec(line);
    if (heading !== null || item !== null || /^\S/.test(line)) close();
    if (heading !== null) table = heading[1] as string;
    if (item !== null) {
      expect(table, `${item[1]} is under a [table] heading`).not.toBeNull();
      const key = `${table}.${item[1]}`;
      expect(keys.has(key), `${key} is described once`).toBe(false);
      entry = { key, described: item[2] as string, lines: [] };
    } else if (entry !== null) {
      (entry as { lines: string[] }).lines.push(line);
    }
  }
  close();
  return { intro: plain(section.split(/^### /m)[0] ?? ''), keys };
}

describe('mailsubmit.conf(5) against the table of keys', () => {
  const { intro, keys } = manPageKeys();

  it('describes every key of the table, under its table, and no other', () => {
    expect(CONFIG_KEYS.length).toBeGreaterThan(30);
    expect([...keys.keys()].sort()).toEqual(CONFIG_KEYS.map((k) => k.key).sort());
  });

  it.each(CONFIG_KEYS.map((k) => [k.key, k] as const))('%s: type and range, opening sentence, default and reload effect', (name, key) => {
    const documented = keys.get(name);
    expect(documented, name).toBeDefined();
    const { described, body } = documented as DocumentedKey;
    expect(described).toBe(key.type.described);
    expect(body.startsWith(key.doc), `${name} opens with ${JSON.stringify(key.doc)}; it reads ${JSON.stringify(body.slice(0, 120))}`).toBe(true);
    const written = writtenDefault(key);
    if (written === null) {
      expect(body).toContain('No default');
    } else {
      expect(body).toMatch(new RegExp(`Default ${written.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[\\s.,;)]|$)`));
    }
    expect(/\bRestart\.(?:\s|$)/.test(body), `${name} is marked Restart. exactly when only a restart applies it`).toBe(key.applies === 'restart');
  });

  it('gives the range of every time', () => {
    expect(intro).toContain(`times are whole seconds, from ${SECONDS.min} to ${SECONDS.max}`);
  });
});

/** install/files/mailsubmit.conf, line by line: `[table]`, `key = value` (chosen by install.sh), `#key = value` (a default). */
function installerLines(): { key: string; value: string; commented: boolean }[] {
  const lines: { key: string; value: string; commented: boolean }[] = [];
  let table = '';
  for (const line of readFileSync(join(ROOT, 'install', 'files', 'mailsubmit.conf'), 'utf8').split('\n')) {
    table = /^\[(\w+)\]$/.exec(line)?.[1] ?? table;
    const setting = /^(#?)(\w+) = (.+)$/.exec(line);
    if (setting !== null) lines.push({ key: `${table}.${setting[2]}`, value: setting[3] as string, commented: setting[1] === '#' });
  }
  return lines;
}

describe('the mailsubmit.conf install.sh writes, against the table of keys', () => {
  const lines = installerLines();

  it('sets or shows only keys of the table, each once', () => {
    expect(lines.length).toBeGreaterThan(30);
    for (const { key } of lines) expect(BY_KEY.has(key), `${key} is in the table`).toBe(true);
    expect(new Set(lines.map((l) => l.key)).size).toBe(lines.length);
  });

  it('shows each key it leaves commented out with the table\'s default, or an example of a key without one', () => {
    for (const { key, value } of lines.filter((l) => l.commented)) {
      const spec = BY_KEY.get(key) as ConfigKey;
      if (spec.default === null) {
        expect(() => parseConfig(`[${spec.table}]\n${spec.name} = ${value}`), key).not.toThrow();
        expect(manPageKeys().keys.get(key)?.body, `mailsubmit.conf(5) gives the example ${value} too`).toContain(value);
      } else expect(value, key).toBe(writtenDefault(spec));
    }
  });

  it('is the defaults, with install.sh\'s choices at theirs and every default uncommented', () => {
    let table = '';
    const text = readFileSync(join(ROOT, 'install', 'files', 'mailsubmit.conf'), 'utf8')
      .split('\n')
      .map((line) => {
        table = /^\[(\w+)\]$/.exec(line)?.[1] ?? table;
        const setting = /^#?(\w+) = (.+)$/.exec(line);
        const spec = setting === null ? undefined : BY_KEY.get(`${table}.${setting[1]}`);
        if (spec === undefined || spec.default === null) return line;
        if (line.startsWith('#')) return line.slice(1);
        return /^"@\w+@"$/.test(setting?.[2] ?? '') ? `${spec.name} = ${writtenDefault(spec)}` : line;
      })
      .join('\n');
    expect(text).not.toMatch(/^\w+ = .*@\w+@/m);
    expect(parseConfig(text, 'install/files/mailsubmit.conf')).toEqual(parseConfig('', 'install/files/mailsubmit.conf'));
  });

  it('names exactly the keys that need a restart', () => {
    const text = readFileSync(join(ROOT, 'install', 'files', 'mailsubmit.conf'), 'utf8');
    const sentence = /need a restart: ((?:[^.]|\.(?=\w))+)\./.exec(text.replace(/\n# /g, ' '))?.[1];
    expect(sentence).toBeDefined();
    const named = (sentence as string).split(/,\s*(?:and\s+)?/).map((name) => (name.includes('.') ? name : `daemon.${name}`));
    expect(named.sort()).toEqual([...RESTART_KEYS].sort());
  });
});
