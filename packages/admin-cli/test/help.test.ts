/**
 * `mailsubmitctl --help` lists every command an administrator can run by its
 * full name, the subcommands of a group (`config check`) included; each
 * group's own --help lists its subcommands. The commands are found by
 * walking the groups' help, so a command added later is held to it too.
 */
import { describe, expect, it } from 'vitest';
import { ctl } from './run-ctl.ts';

/** The names in a help text's Commands: block, without the help command. */
function commandNames(help: string): string[] {
  const block = help.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '';
  return [...block.matchAll(/^ {2}(\S+(?: [a-z][\w-]*)*)(?= |$)/gm)].map((m) => m[1] as string).filter((name) => name !== 'help');
}

describe('mailsubmitctl --help', () => {
  const top = ctl(['--help']);
  const listed = commandNames(top.stdout);

  it('exits 0 with a Commands: list', () => {
    expect(top.code).toBe(0);
    expect(listed.length).toBeGreaterThan(5);
  });

  it('lists config check by its full name, and no group without its subcommand', () => {
    expect(listed).toContain('config check');
    expect(listed).not.toContain('config');
  });

  it('lists every command of every group, each with a description', () => {
    const groups = new Set(listed.filter((name) => name.includes(' ')).map((name) => name.split(' ')[0] as string));
    const leaves: string[] = [];
    for (const name of listed) {
      const own = ctl([...name.split(' '), '--help']);
      expect(own.code, name).toBe(0);
      expect(own.stdout, name).toMatch(new RegExp(`^Usage: mailsubmitctl ${name} `));
      // A name listed is one that runs: not a group whose subcommands went unlisted.
      expect(commandNames(own.stdout), name).toEqual([]);
      leaves.push(name);
    }
    for (const group of groups) {
      const help = ctl([group, '--help']);
      for (const sub of commandNames(help.stdout)) expect(leaves, `${group} ${sub}`).toContain(`${group} ${sub}`);
    }
    for (const name of listed) expect(top.stdout, name).toMatch(new RegExp(`\\n {2}${name}(?: \\[options\\])?(?: [<[][^\\n]*)? {2,}\\S`));
  });
});
