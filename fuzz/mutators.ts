/**
 * Byte-level mutations for the fuzzer, biased toward what breaks line-oriented
 * protocols: line ends, dots at line starts, colons, NUL, 8-bit octets, and
 * splices of other inputs.
 */

/** A small seeded PRNG (mulberry32), so a finding can be replayed with --seed. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

const INTERESTING: readonly Buffer[] = [
  '\r', '\n', '\r\n', '\n.\n', '\r\n.\r\n', '.', ':', ': ', ' ', '\t', '\0', '\x7f', '\x1b', '<', '>', '<>', '@', '+', '=',
  '\xff', 'é', '\u{1F600}', 'recipient: x@y\n', 'sender: <>\n', 'size: 1\n', 'dsn-notify-options: never\n', '\n\n',
  ' NOTIFY=NEVER', '\r\nRCPT TO:<evil@example>\r\n',
].map((s) => Buffer.from(s, s === '\xff' ? 'latin1' : 'utf8'));

type Mutation = (input: Buffer, seeds: readonly Buffer[], random: Random) => Buffer;

const mutations: readonly Mutation[] = [
  // Flip one bit.
  (input, _s, r) => {
    if (input.length === 0) return input;
    const copy = Buffer.from(input);
    const at = r.below(copy.length);
    copy[at] = (copy[at] as number) ^ (1 << r.below(8));
    return copy;
  },
  // Insert an interesting token.
  (input, _s, r) => {
    const at = r.below(input.length + 1);
    return Buffer.concat([input.subarray(0, at), INTERESTING[r.below(INTERESTING.length)] as Buffer, input.subarray(at)]);
  },
  // Delete a range.
  (input, _s, r) => {
    const at = r.below(input.length + 1);
    return Buffer.concat([input.subarray(0, at), input.subarray(at + 1 + r.below(16))]);
  },
  // Duplicate a range (repeated lines, long lines).
  (input, _s, r) => {
    const at = r.below(input.length + 1);
    const piece = input.subarray(at, at + 1 + r.below(64));
    return Buffer.concat([input.subarray(0, at), ...Array<Buffer>(1 + r.below(32)).fill(piece), input.subarray(at)]);
  },
  // Splice with another seed.
  (input, seeds, r) => {
    const other = seeds[r.below(seeds.length)] as Buffer;
    return Buffer.concat([input.subarray(0, r.below(input.length + 1)), other.subarray(r.below(other.length + 1))]);
  },
  // Convert all line ends one way.
  (input, _s, r) => {
    const text = input.toString('latin1');
    return Buffer.from(r.below(2) === 0 ? text.replace(/\r?\n/g, '\r\n') : text.replace(/\r\n/g, '\n'), 'latin1');
  },
  // Truncate.
  (input, _s, r) => input.subarray(0, r.below(input.length + 1)),
];

export function mutate(seed: Buffer, seeds: readonly Buffer[], random: Random): Buffer {
  let input = seed;
  const rounds = 1 + random.below(4);
  for (let i = 0; i < rounds; i++) input = (mutations[random.below(mutations.length)] as Mutation)(input, seeds, random);
  return input;
}
