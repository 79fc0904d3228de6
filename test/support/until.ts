/**
 * Waiting for something a test cannot be told about (a log line written in
 * a batch, a descriptor closed just after a reply): check, sleep, check
 * again, up to a deadline. The tests assert on what they waited for.
 */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Checks `condition` every `intervalMs` until it holds or `timeoutMs` have passed; says whether it held. */
export async function heldWithin(timeoutMs: number, condition: () => boolean | Promise<boolean>, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

/** As `heldWithin`, but throws, naming `what`, when the condition never held. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  if (!(await heldWithin(timeoutMs, condition))) throw new Error(`timed out waiting for ${what}`);
}

/** Waits until a line of `text()` matches `pattern`, and returns it; throws `failure` when none did within `timeoutMs`. */
export async function matchingLine(text: () => string, pattern: RegExp, timeoutMs: number, failure: string): Promise<string> {
  let line: string | undefined;
  if (!(await heldWithin(timeoutMs, () => (line = text().split('\n').find((l) => pattern.test(l))) !== undefined, 50))) throw new Error(failure);
  return line as string;
}
