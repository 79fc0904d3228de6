/**
 * Due messages waiting for a delivery slot, in turns: one line per sender,
 * first in first out within a line, and the lines take turns, so that one
 * sender's thousand messages do not keep another's one waiting behind them
 * (Postfix's queue manager is fair between destinations the same way).
 */
export class DueLines<T> {
  /** The Map's order is whose turn it is. */
  private readonly lines = new Map<string, T[]>();

  add(line: string, item: T): void {
    const waiting = this.lines.get(line);
    if (waiting !== undefined) waiting.push(item);
    else this.lines.set(line, [item]);
  }

  /** The first line's first item; that line, if it has more, goes to the back. Null when nothing waits. */
  take(): T | null {
    for (const [line, waiting] of this.lines) {
      this.lines.delete(line);
      const item = waiting.shift() as T;
      if (waiting.length > 0) this.lines.set(line, waiting);
      return item;
    }
    return null;
  }
}
