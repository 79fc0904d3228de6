/** Turns by sender: lines take turns, each first in first out. */
import { describe, expect, it } from 'vitest';
import { DueLines } from '../../../src/5-transport/local-queue/due-lines.ts';

function drain(lines: DueLines<string>): string[] {
  const taken: string[] = [];
  for (let item = lines.take(); item !== null; item = lines.take()) taken.push(item);
  return taken;
}

describe('due lines', () => {
  it('lets the lines take turns, in the order they first had something due', () => {
    const lines = new DueLines<string>();
    for (const item of ['a1', 'a2', 'a3', 'a4']) lines.add('a', item);
    lines.add('b', 'b1');
    lines.add('c', 'c1');
    lines.add('b', 'b2');
    expect(drain(lines)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
  });

  it('puts a line that empties and fills again at the back', () => {
    const lines = new DueLines<string>();
    lines.add('a', 'a1');
    lines.add('b', 'b1');
    expect(lines.take()).toBe('a1');
    lines.add('a', 'a2');
    expect(drain(lines)).toEqual(['b1', 'a2']);
    expect(lines.take()).toBeNull();
  });
});
