/**
 * Bounded mutation fuzzer over the submission reader (envelope parser and
 * message encoder together) and the SMTP command builders.
 *
 * Seeds are the golden corpus. Each execution mutates a seed, feeds it whole
 * and in random chunks, and checks the invariants that matter on the wire:
 *   - nothing but a SubmissionError ever escapes (never an 'internal' verdict)
 *   - the verdict is the same however the input is chunked
 *   - accepted output is CRLF-only, dot-stuffed, ends in CRLF, and cannot end DATA early
 *   - SMTP command lines built from an accepted envelope carry no CR, LF or NUL
 *
 *   npm run fuzz -- [--runs N] [--seconds S] [--seed N]
 * Exits 1 and writes the input under fuzz/findings/ at the first violation.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isSubmissionError, mailFromCommand, parseEhloReply, rcptToCommand, SubmissionReader, xforwardCommands, type Envelope } from '@mailsubmit/shared';
import { mutate, Random } from './mutators.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200000' },
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
  },
});
const maxRuns = Number(values.runs);
const deadline = Date.now() + Number(values.seconds) * 1000;
const random = new Random(Number(values.seed));

const corpusRoot = join(import.meta.dirname, '..', 'test', 'fixtures', 'validate');
const seeds: Buffer[] = readdirSync(corpusRoot).flatMap((group) =>
  readdirSync(join(corpusRoot, group))
    .filter((file) => file.endsWith('.in'))
    .map((file) => readFileSync(join(corpusRoot, group, file))),
);

const ALL_CAPABILITIES = parseEhloReply([
  'localhost',
  'PIPELINING',
  'SIZE 0',
  '8BITMIME',
  'SMTPUTF8',
  'DSN',
  'ENHANCEDSTATUSCODES',
  'XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT',
]);

interface Outcome {
  readonly verdict: string;
  readonly output?: Buffer;
  readonly envelope?: Envelope;
}

function run(input: Buffer, chunkSizes: (() => number) | null): Outcome {
  const reader = new SubmissionReader();
  const out: Buffer[] = [];
  try {
    if (chunkSizes === null) out.push(reader.write(input));
    else {
      for (let i = 0; i < input.length; ) {
        const size = chunkSizes();
        out.push(reader.write(input.subarray(i, i + size)));
        i += size;
      }
    }
    out.push(reader.end());
  } catch (err) {
    if (!isSubmissionError(err)) throw err;
    return { verdict: `${err.outcome}: ${err.message}` };
  }
  return { verdict: 'ok', output: Buffer.concat(out), envelope: reader.envelope as Envelope };
}

function wireProblem(output: Buffer): string | null {
  if (output.length < 2 || output[output.length - 2] !== 0x0d || output[output.length - 1] !== 0x0a) return 'output does not end in CRLF';
  for (let i = output.indexOf(0x0d); i !== -1; i = output.indexOf(0x0d, i + 1)) {
    if (output[i + 1] !== 0x0a) return `bare CR at ${i}`;
  }
  for (let i = output.indexOf(0x0a); i !== -1; i = output.indexOf(0x0a, i + 1)) {
    if (i === 0 || output[i - 1] !== 0x0d) return `bare LF at ${i}`;
    if (output[i + 1] === 0x2e && output[i + 2] !== 0x2e) return `unstuffed dot after offset ${i}`;
  }
  if (output[0] === 0x2e && output[1] !== 0x2e) return 'unstuffed dot at the start';
  if (output.includes(0)) return 'NUL in output';
  return null;
}

function commandProblem(envelope: Envelope): string | null {
  const lines = [
    mailFromCommand(envelope, { eightBit: true, sizeEstimate: 1 }, ALL_CAPABILITIES).line,
    ...envelope.recipients.map((r) => rcptToCommand(r, ALL_CAPABILITIES).line),
    ...xforwardCommands(envelope.client, ALL_CAPABILITIES),
  ];
  const bad = lines.find((line) => /[\x00-\x1f\x7f]/.test(line));
  return bad === undefined ? null : `control character in command: ${JSON.stringify(bad)}`;
}

function check(input: Buffer): string | null {
  let whole: Outcome;
  let split: Outcome;
  try {
    whole = run(input, null);
    split = run(input, () => 1 + random.below(random.below(2) === 0 ? 8 : 4096));
  } catch (err) {
    return `escaped a non-SubmissionError: ${err instanceof Error ? err.stack : String(err)}`;
  }
  if (whole.verdict !== split.verdict) return `verdict depends on chunking: ${whole.verdict} / ${split.verdict}`;
  if (whole.output && split.output && !whole.output.equals(split.output)) return 'output depends on chunking';
  if (whole.output) {
    const problem = wireProblem(whole.output);
    if (problem) return problem;
  }
  if (whole.envelope) {
    try {
      return commandProblem(whole.envelope);
    } catch (err) {
      if (!isSubmissionError(err)) return `command builder threw: ${String(err)}`;
    }
  }
  return null;
}

const started = Date.now();
let executions = 0;
let accepted = 0;
const outcomes = new Map<string, number>();
while (executions < maxRuns && Date.now() < deadline) {
  const input = mutate(seeds[random.below(seeds.length)] as Buffer, seeds, random);
  const problem = check(input);
  executions++;
  if (problem !== null) {
    const dir = join(import.meta.dirname, 'findings');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `finding-${Date.now()}.in`);
    writeFileSync(file, input);
    console.error(`fuzz: FINDING after ${executions} executions: ${problem}\nfuzz: input written to ${file}`);
    process.exit(1);
  }
  const verdict = run(input, null).verdict;
  if (verdict === 'ok') accepted++;
  const key = verdict.split(':')[0] ?? verdict;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}
const seconds = (Date.now() - started) / 1000;
console.log(`fuzz: ${executions} executions in ${seconds.toFixed(1)} s (seed ${values.seed}, ${seeds.length} seeds), 0 findings`);
console.log(`fuzz: ${accepted} accepted; outcomes: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
