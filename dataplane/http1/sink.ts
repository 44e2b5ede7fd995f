// A mark shared by PyServe's HTTP/1.1 server and its upstream client.

/**
 * Marks a Writable that takes latin1 string chunks as cheaply as Buffers:
 * PyServe's H1Response joins a small string body to its head in one write.
 * The upstream client then hands such a sink small body pieces as latin1
 * strings read straight out of its shared read buffer, instead of copying
 * each into a Buffer of its own that the response turns into a string again.
 */
export const TAKES_LATIN1: unique symbol = Symbol('pyserve.takesLatin1');
