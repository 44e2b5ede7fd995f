// The part of incremental HTTP/1.1 parsing that requests and responses share
// (RFC 9112): finding the end of a head, and reading a body framed by
// Content-Length or chunked coding. Strict where leniency would let one
// message be read two ways: a bare LF, a malformed chunk size or stray bytes
// after chunk data are errors, never guessed at. Subclasses parse the head's
// first line and fields and choose the framing.
import { isFieldValue } from './syntax.ts';

/** Where a parser sends body bytes and completion. */
export interface BodyEvents {
  /**
   * Body bytes. `latin1` is the same bytes as a string when the parser
   * decoded them already (read with the head): a sink that takes strings
   * can have it without another decode.
   */
  onBody(chunk: Buffer, latin1?: string): void;
  onComplete(): void;
}

/** Parser states (plain numbers: a switch over small integers stays fast). */
export const State = { Head: 0, Length: 1, Close: 2, ChunkSize: 3, ChunkData: 4, ChunkDataEnd: 5, Trailers: 6, Done: 7 } as const;
export type State = (typeof State)[keyof typeof State];

const HEX = /^[0-9a-fA-F]{1,13}$/;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** Bytes decoded at most to look for a head's end as a string (readHead). */
const HEAD_WINDOW = 2048;
/** A chunk-size line, extensions included, may not be longer than this. */
export const MAX_CHUNK_LINE = 4096;

/** What went wrong, for the subclass to turn into its own error type. */
export type ParseFailure =
  | 'head-too-large' | 'bare-lf-head'
  | 'chunk-line-too-long' | 'bare-lf-chunked' | 'stray-cr-chunked' | 'chunk-too-long' | 'bad-chunk-size'
  | 'trailers-too-large' | 'bad-trailer';

/**
 * One message at a time: `execute` feeds bytes and returns how many belonged
 * to the current message (fewer than given only once it is complete).
 * Errors are thrown, as whatever {@link MessageParser.fail} builds.
 */
export abstract class MessageParser {
  protected readonly maxHeadBytes: number;
  protected events: BodyEvents | undefined;
  protected state: State = State.Done;
  protected remaining = 0;
  #head: Buffer | undefined;
  // What readHead decoded of the `data` being executed, from `#decodedAt`.
  #decoded: string | undefined;
  #decodedAt = 0;
  #line = '';
  #trailerBytes = 0;

  constructor(maxHeadBytes: number) {
    this.maxHeadBytes = maxHeadBytes;
  }

  /** The error to throw for `failure`; `buffered` is the head so far for head failures. */
  protected abstract fail(failure: ParseFailure, buffered?: Buffer): Error;

  /**
   * Parse a complete head, `text` up to `size` (where its final CRLFCRLF
   * starts; `text` may go on past it), and set `state` for the body. The
   * same head as bytes: `bytes[base + i]` is `text`'s character `i`.
   */
  protected abstract parseHead(text: string, size: number, bytes: Uint8Array, base: number): void;

  /** Start a new message. */
  protected reset(events: BodyEvents): void {
    this.events = events;
    this.state = State.Head;
    this.#head = undefined;
    this.#line = '';
    this.#trailerBytes = 0;
  }

  /** The message is complete. */
  get done(): boolean {
    return this.state === State.Done;
  }

  /** Bytes of the message are pending (a head or body has started). */
  get started(): boolean {
    return this.state !== State.Head || this.#head !== undefined;
  }

  /** Consume bytes; returns how many belonged to the current message. */
  execute(data: Buffer): number {
    // Set only while this `data` is parsed (a throw may leave it behind).
    this.#decoded = undefined;
    let offset = 0;
    while (offset < data.length && this.state !== State.Done) {
      switch (this.state) {
        case State.Head:
          offset = this.readHead(data, offset);
          break;
        case State.Length:
          offset = this.#readCounted(data, offset, State.Done);
          break;
        case State.Close: {
          const chunk = offset === 0 ? data : data.subarray(offset);
          offset = data.length;
          this.events!.onBody(chunk);
          break;
        }
        case State.ChunkSize:
        case State.ChunkDataEnd:
        case State.Trailers:
          offset = this.#readChunkLine(data, offset);
          break;
        case State.ChunkData:
          offset = this.#readCounted(data, offset, State.ChunkDataEnd);
          break;
      }
    }
    this.#decoded = undefined;
    return offset;
  }

  // Body bytes of a known count (Content-Length, or one chunk); `after` is the state once they are all read.
  #readCounted(data: Buffer, offset: number, after: State): number {
    const n = Math.min(this.remaining, data.length - offset);
    this.remaining -= n;
    if (this.remaining === 0) this.state = after;
    const decoded = this.#decoded;
    const from = offset - this.#decodedAt;
    const latin1 = decoded !== undefined && from + n <= decoded.length ? decoded.slice(from, from + n) : undefined;
    this.events!.onBody(data.subarray(offset, offset + n), latin1);
    if (this.state === State.Done) this.events!.onComplete();
    return offset + n;
  }

  /** Read up to the end of the head; subclasses may skip bytes before it first. */
  protected readHead(data: Buffer, offset: number): number {
    if (this.#head === undefined) {
      // The usual case, a whole head in one read: decoded once and searched
      // as a string. Buffer.indexOf with a Buffer needle costs ~1,000
      // instructions a call in Node's C++ (docs/benchmarks.md item 22), more
      // than decoding a few hundred bytes. Past HEAD_WINDOW (a large body
      // read with its head), or without an end in it, the Buffer path below.
      const n = Math.min(data.length - offset, HEAD_WINDOW);
      const text = data.toString('latin1', offset, offset + n);
      const end = text.indexOf('\r\n\r\n');
      if (end >= 0 && end + 4 <= this.maxHeadBytes) {
        this.#decoded = text;
        this.#decodedAt = offset;
        this.parseHead(text, end, data, offset);
        if (this.state === State.Done) this.events!.onComplete();
        return offset + end + 4;
      }
    }
    let buf: Buffer;
    let searchFrom: number;
    if (this.#head === undefined) {
      buf = offset === 0 ? data : data.subarray(offset);
      searchFrom = 0;
    } else {
      searchFrom = Math.max(0, this.#head.length - 3);
      buf = Buffer.concat([this.#head, data.subarray(offset)]);
    }
    const end = buf.indexOf(CRLF_CRLF, searchFrom);
    if (end < 0) {
      if (buf.length > this.maxHeadBytes) throw this.fail('head-too-large', buf);
      // A head of bare-LF lines never shows the CRLFCRLF that ends it: refuse
      // it now rather than at a timeout. (In a complete head, the name,
      // value and first-line checks catch a stray LF.)
      for (let lf = buf.indexOf(0x0a, searchFrom); lf >= 0; lf = buf.indexOf(0x0a, lf + 1)) {
        if (lf === 0 || buf[lf - 1] !== 0x0d) throw this.fail('bare-lf-head');
      }
      this.checkPartialHead(buf);
      // Copied when it is still the caller's memory: that may be a read
      // buffer used again (upstream `onread`), and a view would keep a whole
      // read alive for a few bytes.
      this.#head = buf.buffer === data.buffer ? Buffer.from(buf) : buf;
      return data.length;
    }
    if (end + 4 > this.maxHeadBytes) throw this.fail('head-too-large', buf);
    const priorBytes = this.#head === undefined ? 0 : this.#head.length;
    this.#head = undefined;
    const used = offset + end + 4 - priorBytes;
    this.parseHead(buf.toString('latin1', 0, end), end, buf, 0);
    if (this.state === State.Done) this.events!.onComplete();
    return used;
  }

  /** Hook for refusing an incomplete head early (a request line over the URI limit). */
  protected checkPartialHead(_buf: Buffer): void {}

  // Chunk-size lines, the CRLF after chunk data, and trailer lines: all CRLF-terminated lines.
  #readChunkLine(data: Buffer, offset: number): number {
    const lf = data.indexOf(0x0a, offset);
    const stop = lf < 0 ? data.length : lf + 1;
    this.#line += data.toString('latin1', offset, stop);
    if (lf < 0) {
      // The same verdicts, however the line is split: the limits of a whole
      // line apply to the part in hand (a trailing CR may still be the CRLF's).
      const line = this.#line;
      const content = line.charCodeAt(line.length - 1) === 0x0d ? line.length - 1 : line.length;
      if (this.state === State.ChunkDataEnd) {
        if (content > 0) throw this.fail('chunk-too-long');
      } else if (this.state === State.Trailers) {
        if (this.#trailerBytes + line.length > this.maxHeadBytes) throw this.fail('trailers-too-large');
      } else if (content > MAX_CHUNK_LINE) {
        throw this.fail('chunk-line-too-long');
      }
      return stop;
    }
    const line = this.#line;
    this.#line = '';
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 0x0d) throw this.fail('bare-lf-chunked');
    const content = line.slice(0, -2);
    if (content.includes('\r')) throw this.fail('stray-cr-chunked');
    if (this.state === State.ChunkDataEnd) {
      if (content !== '') throw this.fail('chunk-too-long');
      this.state = State.ChunkSize;
    } else if (this.state === State.ChunkSize) {
      if (content.length > MAX_CHUNK_LINE) throw this.fail('chunk-line-too-long');
      const semi = content.indexOf(';');
      let hex = semi < 0 ? content : content.slice(0, semi);
      // BWS is allowed before a chunk extension (RFC 9112 §7.1.1).
      if (semi >= 0) hex = hex.replace(/[ \t]+$/, '');
      if (!HEX.test(hex)) throw this.fail('bad-chunk-size');
      const size = parseInt(hex, 16);
      if (size === 0) {
        this.state = State.Trailers;
      } else {
        this.remaining = size;
        this.state = State.ChunkData;
      }
    } else {
      // Trailers are read and dropped: a proxy's HTTP/1.1 peers rarely use them.
      this.#trailerBytes += line.length;
      if (this.#trailerBytes > this.maxHeadBytes) throw this.fail('trailers-too-large');
      if (content === '') {
        this.state = State.Done;
        this.events!.onComplete();
      } else if (content.indexOf(':') <= 0 || !isFieldValue(content, 0, content.length)) {
        throw this.fail('bad-trailer');
      }
    }
    return stop;
  }
}
