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
    for (const args of [['-N', 'sometimes'], ['-N', 'never,success'], ['-R', 'body'], ['-R', '100'], ['-V', 'tab\there'], ['-V', 'é'], ['-V', 'x'.repeat(101)]]) {
      expect(parseSendmailCommand([...args, 'a@y.example']), args.join(' ')).toEqual(plain);
    }
    // A good value is still used, and a later bad one does not undo it.
    expect(parseSendmailCommand(['-N', 'failure', '-N', 'sometimes', 'a@y.example']).notify).toEqual(['FAILURE']);
  });

  it('takes -r as -f, and -o followed by i as -oi', () => {
    expect(parseSendmailCommand(['-r', 'user@x.example', 'a@y.example']).sender?.text).toBe('user@x.example');
    expect(parseSendmailCommand(['-oitrue', 'a@y.example']).ignoreDots).toBe(true);
  });

  it('takes an argument after the first recipient as a recipient, option-like or not, as Postfix does', () => {
    const command = parseSendmailCommand(['a@y.example', '-f', 'b@y.example']);
    expect(command.recipients.map((r) => r.text)).toEqual(['a@y.example', '-f', 'b@y.example']);
    expect(command.sender).toBeUndefined();
  });

  it('takes any -F text, control characters included, as Postfix does (the From writer neutralises them)', () => {
    expect(parseSendmailCommand(['-F', 'Tab\there\nBcc: all@x.example', 'a@y.example']).fullName).toBe('Tab\there\nBcc: all@x.example');
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
    [['-bu'], /^option -bu is not supported \(see mailsubmit-sendmail\(8\)\)$/],
    [['-b'], /^option -b needs a value/],
    [['-qx'], /^option -qx is not supported/],
    [['-tq', 'a@y.example'], /^option -qa is not supported/],
    [['-qR'], /^option -qR needs a site name/],
    [['-qI'], /^option -qI needs a queue id/],
    [['-bs', 'a@y.example'], /^stand-alone mode requires no recipient$/],
    [['-bp', 'a@y.example'], /^display queue mode requires no recipient$/],
    [['-q', 'a@y.example'], /^flush queue mode requires no recipient$/],
    [['-bi', 'a@y.example'], /^alias initialization mode requires no recipient$/],
    [['-I', 'a@y.example'], /^alias initialization mode requires no recipient$/],
    [['-bd', 'a@y.example'], /^daemon mode requires no recipient$/],
    [['-qRsite', 'a@y.example'], /^flush site requires no recipient$/],
    [['-qIABC', 'a@y.example'], /^flush queue_id requires no recipient$/],
    [['-bp', '-qRsite'], /^-qR can be used only in delivery mode$/],
    [['-t', '-bs'], /^-t can be used only in delivery mode$/],
    [['-bv'], /^recipient addresses must be specified/],
    [['-bv', '-t', 'a@y.example'], /^-t option cannot be used with -bv$/],
    [['-bv', '-N', 'success', 'a@y.example'], /^-N option cannot be used with -bv$/],
    [['-bv', '-v', 'a@y.example'], /^-v option cannot be used with -bv$/],
    [['-B', '8bitmime', 'a@y.example'], /^option -B needs 8BITMIME or 7BIT/],
    [['-oA', 'a@y.example'], /^option -oA needs a path name/],
    [['-X', 'a@y.example'], /^option -Xa is not supported/],
    [['-XVab', 'a@y.example'], /^option -XV needs two characters from -=\+/],
    [['-Vab', 'a@y.example'], /^option -XV needs two characters/],
    [['-n', 'a@y.example'], /^option -n is not supported/],
    [['-SMTPUTF8', 'a@y.example'], /^option -SMTPUTF8 is not supported/],
    [['-f'], /^option -f needs a value/],
    [['-t', '-N'], /^option -N needs a value/],
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

  it('keeps a -V value with spaces, as Postfix does: printable ASCII, at most 100 characters', () => {
    expect(parseSendmailCommand(['-V', 'an envid with spaces', 'a@y.example']).envelopeId).toBe('an envid with spaces');
    expect(parseSendmailCommand(['-V', 'x'.repeat(100), 'a@y.example']).envelopeId).toBe('x'.repeat(100));
  });

  it('reads the mode as Postfix does: the last -b, -I or -q wins, -bm is delivery', () => {
    const mode = (args: string[]) => parseSendmailCommand(args).mode;
    expect(mode(['a@y.example'])).toBe('deliver');
    expect(mode(['-bs'])).toBe('smtp');
    expect(mode(['-bsx'])).toBe('smtp');
    expect(mode(['-bp'])).toBe('list-queue');
    expect(mode(['-q'])).toBe('flush-queue');
    expect(mode(['-qRsite'])).toBe('flush-queue');
    expect(mode(['-qIABC'])).toBe('flush-queue');
    expect(mode(['-bi'])).toBe('aliases');
    expect(mode(['-I'])).toBe('aliases');
    expect(mode(['-bd'])).toBe('daemon');
    expect(mode(['-bl'])).toBe('daemon');
    expect(mode(['-bd', '-q'])).toBe('daemon');
    expect(mode(['-q', '-bd'])).toBe('daemon');
    expect(mode(['-bh'])).toBe('nothing');
    expect(mode(['-bH', 'a@y.example'])).toBe('nothing');
    expect(mode(['-q1h'])).toBe('nothing');
    expect(mode(['-q30m', 'a@y.example'])).toBe('nothing');
    expect(mode(['-bd', '-q1h'])).toBe('daemon');
    expect(mode(['-bp', '-bm', 'a@y.example'])).toBe('deliver');
    expect(mode(['-bs', '-bm', 'a@y.example'])).toBe('deliver');
  });

  it('-bv is delivery mode with verification asked; -vv (Postfix: verbose logging) goes with -bv', () => {
    expect(parseSendmailCommand(['-bv', 'a@y.example'])).toMatchObject({ mode: 'deliver', verify: true });
    expect(parseSendmailCommand(['-bv', '-vv', 'a@y.example'])).toMatchObject({ mode: 'deliver', verify: true, verbose: true });
    expect(parseSendmailCommand(['a@y.example']).verify).toBe(false);
  });

  it('takes -XV, -XV with two delimiters and the old -V spellings of VERP, and ignores them', () => {
    const plain = parseSendmailCommand(['a@y.example']);
    for (const args of [['-XV'], ['-XV+='], ['-XV-='], ['-V+=']]) expect(parseSendmailCommand([...args, 'a@y.example']), args.join(' ')).toEqual(plain);
    // -V followed by two characters is Postfix's old -XV, and the two characters are then the first recipient.
    expect(texts(['-V', 'ab', 'c@y.example'])).toEqual(['ab', 'c@y.example']);
  });
});
