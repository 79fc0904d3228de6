import { describe, expect, it } from 'vitest';
import { parseSendmailCommand } from '../../src/sendmail/sendmail-command.ts';
import { expectSubmissionError } from '../envelope/expect-submission-error.ts';

const texts = (args: string[]) => parseSendmailCommand(args).recipients.map((r) => r.text);

describe('parseSendmailCommand', () => {
  it('takes -f clustered or separate, and the recipients after the options', () => {
    expect(parseSendmailCommand(['-fuser@x.example', 'a@y.example']).sender?.text).toBe('user@x.example');
    const separate = parseSendmailCommand(['-f', 'user@x.example', 'a@y.example', 'b@y.example']);
    expect(separate.sender?.text).toBe('user@x.example');
    expect(separate.recipients.map((r) => r.text)).toEqual(['a@y.example', 'b@y.example']);
  });

  it('takes an empty -f and -f <> as the null sender; no -f leaves the sender to the caller', () => {
    expect(parseSendmailCommand(['-f', '', 'a@y.example']).sender).toMatchObject({ text: '' });
    expect(parseSendmailCommand(['-f<>', 'a@y.example']).sender).toMatchObject({ text: '' });
    expect(parseSendmailCommand(['a@y.example']).sender).toBeUndefined();
  });

  it('reads flag clusters: -ti, -it, -t -i, -oi, and a value after flags (-tfuser)', () => {
    expect(parseSendmailCommand(['-ti'])).toMatchObject({ extractRecipients: true, ignoreDots: true });
    expect(parseSendmailCommand(['-it'])).toMatchObject({ extractRecipients: true, ignoreDots: true });
    expect(parseSendmailCommand(['-t', '-i'])).toMatchObject({ extractRecipients: true, ignoreDots: true });
    expect(parseSendmailCommand(['-oi', 'a@y.example'])).toMatchObject({ extractRecipients: false, ignoreDots: true });
    expect(parseSendmailCommand(['-o', 'i', 'a@y.example']).ignoreDots).toBe(true);
    const cluster = parseSendmailCommand(['-tfuser@x.example']);
    expect(cluster.extractRecipients).toBe(true);
    expect(cluster.sender?.text).toBe('user@x.example');
    expect(parseSendmailCommand(['a@y.example'])).toMatchObject({ extractRecipients: false, ignoreDots: false, verbose: false });
  });

  it('takes -N, -R and -V through the envelope validators', () => {
    const command = parseSendmailCommand(['-N', 'delay,failure', '-Rhdrs', '-V', 'id+1=x', 'a@y.example']);
    expect(command.notify).toEqual(['DELAY', 'FAILURE']);
    expect(command.returnOption).toBe('HDRS');
    expect(command.envelopeId).toBe('id+1=x');
    expect(parseSendmailCommand(['-Nnever', '-R', 'full', 'a@y.example'])).toMatchObject({ notify: ['NEVER'], returnOption: 'FULL' });
  });

  it("accepts what Postfix's sendmail accepts and ignores: cron's -B8BITMIME -oem, mutt's -oem, -h, -L, -O, -U, -bm", () => {
    // Debian cron: sendmail -FCronDaemon -i -B8BITMIME -oem root
    const cron = parseSendmailCommand(['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root']);
    expect(cron).toMatchObject({ fullName: 'CronDaemon', ignoreDots: true, extractRecipients: false });
    expect(cron.recipients.map((r) => r.text)).toEqual(['root']);
    const plain = parseSendmailCommand(['a@y.example']);
    for (const args of [['-oem'], ['-om'], ['-o7'], ['-o8'], ['-oee'], ['-B', '7BIT'], ['-h', '20'], ['-L', 'label'], ['-O', 'x=y'], ['-U'], ['-bm'], ['-m'], ['-c'], ['-x'], ['-e', 'm'], ['-Am'], ['-C', '/etc/postfix'], ['-oA/etc/aliases'], ['-p', 'smtp']]) {
      expect(parseSendmailCommand([...args, 'a@y.example']), args.join(' ')).toEqual(plain);
    }
  });

  it('ignores -N, -R and -V values the validators refuse, as Postfix ignores a bad -N or -V and every -R', () => {
    const plain = parseSendmailCommand(['a@y.example']);
    for (const args of [['-N', 'sometimes'], ['-N', 'never,success'], ['-R', 'body'], ['-R', '100'], ['-V', 'has space'], ['-V', 'x'.repeat(101)]]) {
      expect(parseSendmailCommand([...args, 'a@y.example']), args.join(' ')).toEqual(plain);
    }
    // A good value is still used, and a later bad one does not undo it.
    expect(parseSendmailCommand(['-N', 'failure', '-N', 'sometimes', 'a@y.example']).notify).toEqual(['FAILURE']);
  });

  it('takes -r as -f, and -o followed by i as -oi', () => {
    expect(parseSendmailCommand(['-r', 'user@x.example', 'a@y.example']).sender?.text).toBe('user@x.example');
    expect(parseSendmailCommand(['-oitrue', 'a@y.example']).ignoreDots).toBe(true);
  });

  it('accepts -G and -v; -F keeps the name', () => {
    const command = parseSendmailCommand(['-G', '-v', '-F', 'Nightly Job', 'a@y.example']);
    expect(command.verbose).toBe(true);
    expect(command.fullName).toBe('Nightly Job');
  });

  it('ends the options at --, and at the first recipient', () => {
    expect(texts(['--', '-dash@y.example'])).toEqual(['-dash@y.example']);
    expect(texts(['-i', '--', 'a@y.example', '-b@y.example'])).toEqual(['a@y.example', '-b@y.example']);
  });

  it('reads recipient arguments as address lists', () => {
    expect(texts(['Bob <bob@x.example>, carol@y.example', 'dave'])).toEqual(['bob@x.example', 'carol@y.example', 'dave']);
  });

  it.each([
    [['-bs'], /^option -bs is not supported \(see mailsubmit-sendmail\(8\)\)$/],
    [['-q1h'], /^option -q1h is not supported/],
    [['-tq'], /^option -q is not supported/],
    [['-bv', 'a@y.example'], /^option -bv is not supported/],
    [['-bp'], /^option -bp is not supported/],
    [['-B', '8bitmime', 'a@y.example'], /^option -B needs 8BITMIME or 7BIT/],
    [['-oA', 'a@y.example'], /^option -oA needs a path name/],
    [['-XV', 'a@y.example'], /^option -XV is not supported/],
    [['-n', 'a@y.example'], /^option -n is not supported/],
    [['-f'], /^option -f needs a value/],
    [['-t', '-N'], /^option -N needs a value/],
    [['a@y.example', '-f', 'b@y.example'], /^option -f after the recipient a@y\.example: options go before the recipients/],
    [['-F', 'Evil\nBcc: all@x.example', 'a@y.example'], /^option -F: the name has a line feed/],
    [['-F', 'x'.repeat(201), 'a@y.example'], /^option -F: the name is longer than 200 octets/],
  ])('refuses %j as a bad command line', (args, detail) => {
    expectSubmissionError(() => parseSendmailCommand(args), { outcome: 'usage', detail });
  });

  it('refuses an argument that is not UTF-8', () => {
    expectSubmissionError(() => parseSendmailCommand([Buffer.from([0x61, 0xff])]), { outcome: 'usage', detail: /argument 1 is not valid UTF-8/ });
  });

  it('refuses bad addresses with the address outcomes, as a native envelope would', () => {
    expectSubmissionError(() => parseSendmailCommand(['-f', 'a b@x.example', 'c@y.example']), { outcome: 'sender-syntax', attribute: 'sender' });
    expectSubmissionError(() => parseSendmailCommand(['a@y.example\r\nRCPT TO:<b@y.example>']), { outcome: 'recipient-syntax', attribute: 'recipient' });
    expectSubmissionError(() => parseSendmailCommand(['Nobody <>']), { outcome: 'recipient-syntax', detail: /null address/ });
    expectSubmissionError(() => parseSendmailCommand([`${'a'.repeat(300)}@y.example`]), { outcome: 'address-too-long' });
  });
});
