/**
 * Who completes a sendmail-door header: Postfix's cleanup only where every
 * downstream that takes the door is this host's MTA over SMTP with
 * XFORWARD (it then knows the mail is local); the daemon otherwise.
 */
import { describe, expect, it } from 'vitest';
import { headerCompletion } from '../../../src/3-intake/sendmail/sendmail-door.ts';
import { parseConfig } from '../../../src/config/load-config.ts';

const completion = (text: string) => headerCompletion(parseConfig(text, 'test.conf'));

describe('header completion for the sendmail door', () => {
  it('is the MTA\'s through the installed re-injection listener or a loopback SMTP port', () => {
    expect(completion('')).toBe('mta');
    expect(completion('[downstream]\ntarget = "127.0.0.1:10026"')).toBe('mta');
    expect(completion('[downstream]\ntarget = "[::1]:10026"')).toBe('mta');
  });

  it('is the daemon\'s where the downstream does not complete it: LMTP, sendmail(1), xforward off, a relay elsewhere', () => {
    expect(completion('[downstream]\ntransport = "lmtp"')).toBe('daemon');
    expect(completion('[downstream]\ntransport = "sendmail"')).toBe('daemon');
    expect(completion('[downstream]\nxforward = false')).toBe('daemon');
    expect(completion('[downstream]\ntarget = "relay.example.net:587"')).toBe('daemon');
    expect(completion('[downstream]\ntarget = "mx:example.net"')).toBe('daemon');
  });

  it('is the daemon\'s when any downstream that takes the door would not complete it; one for other doors does not count', () => {
    expect(completion('[[downstream]]\npriority = 1\n[[downstream]]\nname = "relay"\ntarget = "relay.example.net:587"')).toBe('daemon');
    expect(completion('[[downstream]]\npriority = 1\n[[downstream]]\nname = "relay"\ntarget = "relay.example.net:587"\ndoors = ["native"]')).toBe('mta');
  });
});
