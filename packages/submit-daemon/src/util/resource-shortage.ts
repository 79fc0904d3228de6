/**
 * Errors that mean this process (or the system) is short of something a
 * moment later may be free again: descriptors, memory, buffers. A
 * submission that meets one is answered 75 (try again), never with a code
 * that blames the caller or refuses it for good.
 */
const SHORTAGE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'ENOBUFS', 'EAGAIN']);

export function isResourceShortage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SHORTAGE_CODES.has(code);
}
