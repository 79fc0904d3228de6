/**
 * Whether a one-shot message stream has been started. Once a delivery has
 * begun reading the body, trying again (another connection, another
 * downstream, the local queue) would send what is left of it as the whole
 * message; the stage of a failure alone cannot tell (a connection error
 * has none), so the stream is watched instead.
 */
export interface WatchedBody {
  readonly body: AsyncIterable<Uint8Array>;
  /** True once anything began iterating `body`. */
  readonly taken: () => boolean;
}

export function watchOneShotBody(source: AsyncIterable<Uint8Array>): WatchedBody {
  let taken = false;
  const body: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => {
      taken = true;
      return source[Symbol.asyncIterator]();
    },
  };
  return { body, taken: () => taken };
}
