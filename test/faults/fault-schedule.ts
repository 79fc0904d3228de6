/**
 * The fault kinds the fault-injecting proxy knows, and a seeded schedule
 * that deals them out. A shuffled deck (reshuffled when used up) instead of
 * independent draws: a short campaign still sees every kind a few times, so
 * a test that asserts "each kind happened" cannot pass by luck or fail by
 * bad luck; the seed makes the order reproducible.
 */

/** The SMTP replies the proxy gives itself, with enhanced codes chosen to exercise the status table. */
export const INJECTED_CODES = [421, 451, 452, 550, 554] as const;
export type InjectedCode = (typeof INJECTED_CODES)[number];

/** Faults decided when the daemon opens a connection (they hit the handshake). */
export const CONNECTION_FAULTS = ['stall-greeting', 'stall-ehlo', ...INJECTED_CODES.map((code) => `ehlo-${code}` as const)] as const;
export type ConnectionFault = (typeof CONNECTION_FAULTS)[number];

/** Faults decided at MAIL FROM (they hit one transaction, named by its sender). */
export const TRANSACTION_FAULTS = [
  ...INJECTED_CODES.map((code) => `mail-${code}` as const),
  ...INJECTED_CODES.map((code) => `rcpt-${code}` as const),
  ...INJECTED_CODES.map((code) => `data-end-${code}` as const),
  // The connection closed (FIN or RST, chosen per fault) at MAIL, at DATA,
  // half-way through the message, at the final dot without passing it on,
  // and after Postfix accepted the dot without passing its reply on.
  'drop-at-mail',
  'drop-before-data',
  'drop-during-data',
  'drop-after-dot',
  'drop-after-relay',
  // Postfix's reply to RCPT held back for a second (less than any timeout):
  // time for the caller to go away while the transaction is open.
  'slow-rcpt',
  // No reply (or no reading) until the daemon gives up.
  'stall-mail',
  'stall-rcpt',
  'stall-data-init',
  'stall-data',
  'stall-data-end',
  'stall-after-relay',
] as const;
export type TransactionFault = (typeof TRANSACTION_FAULTS)[number];

export type FaultKind = ConnectionFault | TransactionFault;
export const ALL_FAULTS: readonly FaultKind[] = [...CONNECTION_FAULTS, ...TRANSACTION_FAULTS];

/**
 * Faults after which Postfix may hold the message although the daemon could
 * not learn it: the only ones where a non-zero exit with a delivery (the
 * documented duplicate risk) is allowed.
 */
export const AFTER_COMMIT_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>(['drop-after-relay', 'stall-after-relay']);

/** mulberry32: small, fast, and good enough to shuffle decks and pick moments. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultRates {
  /** Share of new connections that get a connection fault. */
  readonly connection: number;
  /** Share of transactions that get a transaction fault. */
  readonly transaction: number;
}

/** One deck of fault kinds, dealt in a seeded shuffled order. */
class Deck<T> {
  private cards: T[] = [];
  constructor(
    private readonly kinds: readonly T[],
    private readonly random: () => number,
  ) {}

  deal(): T {
    if (this.cards.length === 0) {
      this.cards = [...this.kinds];
      for (let i = this.cards.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [this.cards[i], this.cards[j]] = [this.cards[j] as T, this.cards[i] as T];
      }
    }
    return this.cards.pop() as T;
  }
}

export class FaultSchedule {
  readonly random: () => number;
  private readonly connections: Deck<ConnectionFault>;
  private readonly transactions: Deck<TransactionFault>;

  private readonly hasConnectionFaults: boolean;
  private readonly hasTransactionFaults: boolean;

  /** `only`: deal just these kinds (to look at one fault on its own); `reset`: the share of drops sent as RST. */
  constructor(
    readonly seed: number,
    readonly rates: FaultRates,
    only: readonly FaultKind[] = ALL_FAULTS,
    private readonly reset = 0.5,
  ) {
    this.random = seededRandom(seed);
    const connectionKinds = CONNECTION_FAULTS.filter((kind) => only.includes(kind));
    const transactionKinds = TRANSACTION_FAULTS.filter((kind) => only.includes(kind));
    this.hasConnectionFaults = connectionKinds.length > 0;
    this.hasTransactionFaults = transactionKinds.length > 0;
    this.connections = new Deck(connectionKinds, this.random);
    this.transactions = new Deck(transactionKinds, this.random);
  }

  /** The fault for a new connection, or null. */
  forConnection(): ConnectionFault | null {
    return this.hasConnectionFaults && this.random() < this.rates.connection ? this.connections.deal() : null;
  }

  /** The fault for a new transaction, or null. */
  forTransaction(): TransactionFault | null {
    return this.hasTransactionFaults && this.random() < this.rates.transaction ? this.transactions.deal() : null;
  }

  /** A drop closes with RST about half the time, so both ways a peer can vanish are seen. */
  resetOnDrop(): boolean {
    return this.random() < this.reset;
  }
}

/** The reply the proxy gives for an injected code at a stage. */
export function injectedReply(code: InjectedCode, stage: 'ehlo' | 'mail' | 'rcpt' | 'data-end'): string {
  const text: Record<InjectedCode, string> = {
    421: '421 4.3.2 fault proxy: service shutting down',
    451: '451 4.3.0 fault proxy: local error in processing',
    452: '452 4.3.1 fault proxy: insufficient system storage',
    // At RCPT a 550 is about the address (5.1.1); elsewhere a policy refusal.
    550: stage === 'rcpt' ? '550 5.1.1 fault proxy: no such user' : '550 5.7.1 fault proxy: refused by policy',
    554: '554 5.7.1 fault proxy: transaction failed',
  };
  return text[code];
}

/** The code of an injected-reply fault, or null for drops and stalls. */
export function injectedCode(fault: FaultKind): InjectedCode | null {
  const match = /-(\d{3})$/.exec(fault);
  return match ? (Number(match[1]) as InjectedCode) : null;
}
