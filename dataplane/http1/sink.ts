// A mark shared by PyServe's HTTP/1.1 server and its upstream client.

/**
 * Marks a Writable that takes latin1 string chunks as cheaply as Buffers:
 * PyServe's H1Response joins a small string body to its head in one write.
 * The upstream client then hands such a sink small body pieces as latin1
 * strings read straight out of its shared read buffer, instead of copying
 * each into a Buffer of its own that the response turns into a string again.
 */
export const TAKES_LATIN1: unique symbol = Symbol('pyserve.takesLatin1');

/**
 * Marks a Writable that can be lent a chunk: a sink that implements
 * {@link Lending}. The upstream client copies body pieces out of its shared
 * read buffer into a few spare buffers that it fills again as soon as the
 * sink says nothing refers to them any more, instead of allocating a buffer
 * per piece (a 16 KiB `allocUnsafeSlow` and its first touch cost ~3 µs, the
 * copy 0.2; docs/benchmarks.md item 20).
 */
export const LENDING: unique symbol = Symbol('pyserve.lending');

/** What a Writable marked {@link LENDING} does besides write() and end(). */
export interface Lending {
  /** A chunk written now would go straight to the socket: nothing is queued before it. */
  lendable(): boolean;
  /**
   * write(chunk), or end(chunk) when `end`; true when nothing refers to
   * `chunk` once this returns (its bytes are in the kernel or were refused),
   * so the caller may overwrite it. On false the caller must leave that
   * memory alone for good: the sink, or the socket under it, still holds it.
   */
  writeLent(chunk: Buffer, end: boolean): boolean;
}
