/** The control socket of a mailsubmit.conf the full parser refuses, so that mailsubmitctl reload still reaches the daemon. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { controlSocketOfBrokenConfig } from '../../src/config/control-socket-path.ts';

const dir = mkdtempSync(join(tmpdir(), 'control-socket-path-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileWith(text: string): string {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(path, text);
  return path;
}

describe('controlSocketOfBrokenConfig', () => {
  it('reads daemon.control_socket past an error elsewhere in the file', () => {
    expect(controlSocketOfBrokenConfig(fileWith('[daemon]\ncontrol_socket = "/run/x/control.sock"\nsokcet = "/x"\n'))).toBe('/run/x/control.sock');
  });

  it('gives the default when the key is absent', () => {
    expect(controlSocketOfBrokenConfig(fileWith('[limits]\nmax_recipients = "ten"\n'))).toBe('/run/mailsubmit/control.sock');
  });

  it.each([
    ['a relative path', '[daemon]\ncontrol_socket = "control.sock"\n'],
    ['a number', '[daemon]\ncontrol_socket = 5\n'],
    ['a file that is not TOML', '[daemon\n'],
  ])('gives null for %s', (_what, text) => {
    expect(controlSocketOfBrokenConfig(fileWith(text))).toBeNull();
  });

  it('gives null for a file that cannot be read', () => {
    expect(controlSocketOfBrokenConfig(join(dir, 'absent.conf'))).toBeNull();
  });
});
