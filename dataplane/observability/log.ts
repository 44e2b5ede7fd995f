// Loggers on one stdout: diagnostics obey --log-level; the access log is on
// unless --access-log off; the "listening" announcement is always written,
// because parents and log pipelines depend on it whatever the settings.
//
// Stdout is buffered ({@link LineBuffer}): access lines are gathered and
// written a batch at a time instead of one write(2) per request, which was a
// measurable share of the request path. Diagnostic lines and the announcement
// are written at once (after whatever access lines precede them), and every
// exit path flushes. Why not `pino.destination({ sync: false, minLength })`:
// sonic-boom's batches grow past PIPE_BUF while a write is in flight, so the
// lines of several cluster workers sharing the pod's stdout pipe could
// interleave mid-line; a `flushSync()` during an asynchronous write can put
// lines out of order; and on a pinned core the thread pool's write costs the
// same CPU as a synchronous one.
import { writeSync } from 'node:fs';
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';

/** Loggers of a dataplane. */
export interface DataplaneLoggers {
  /** Diagnostics, at the configured level. */
  log: Logger;
  /** One line per request, at `info`; `silent` with `--access-log off`. */
  access: Logger;
  /** The startup announcement (`listening`): always written, and at once. */
  announce: Logger;
  /** Write out buffered lines now, synchronously: on shutdown and before exiting. */
  flush(): void;
}

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Options of {@link createLoggers}. */
export interface LoggerOptions {
  /** Write the per-request access log. Default true. */
  accessLog?: boolean;
}

/**
 * Create the loggers. By default they write to stdout through one shared
 * {@link LineBuffer} (flushed on process exit); with `destination`, every
 * line goes straight to it, unbuffered (embedders and tests).
 */
export function createLoggers(level: Level | 'silent', destination?: DestinationStream, opts: LoggerOptions = {}): DataplaneLoggers {
  let buffered: DestinationStream;
  let prompt: DestinationStream;
  let flush: () => void;
  if (destination === undefined) {
    const out = stdoutBuffer();
    buffered = out;
    prompt = { write: (line: string) => out.writeNow(line) };
    flush = () => out.flushSync();
  } else {
    buffered = prompt = destination;
    flush = () => (destination as { flushSync?: () => void }).flushSync?.();
  }
  return {
    log: pino({ level, base: { component: 'dataplane' } }, prompt),
    access: pino({ level: opts.accessLog === false ? 'silent' : 'info', base: undefined }, buffered),
    announce: pino({ level: 'info', base: undefined }, prompt),
    flush,
  };
}

/** Options of {@link LineBuffer}. */
export interface LineBufferOptions {
  /**
   * Largest write, in bytes; a single longer line is written alone. Default
   * 4096, Linux's PIPE_BUF: a pipe write up to that size is atomic, so
   * processes sharing one stdout pipe (cluster workers) never interleave
   * inside a line.
   */
  batchBytes?: number;
  /** Longest time a line waits in the buffer. Default 100 ms. */
  flushIntervalMs?: number;
  /** Where batches go; default `writeSync` to file descriptor 1. Tests pass their own. */
  write?: (chunk: string) => void;
}

/**
 * Whole log lines, written synchronously in batches: when the next line would
 * not fit in `batchBytes`, `flushIntervalMs` after the first buffered line,
 * or on {@link flushSync}. Writing never throws: a closed stdout (EPIPE)
 * stops the output, as pino's own destination does.
 */
export class LineBuffer implements DestinationStream {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private broken = false;
  private readonly batchBytes: number;
  private readonly flushIntervalMs: number;
  private readonly sink: (chunk: string) => void;

  constructor(opts: LineBufferOptions = {}) {
    this.batchBytes = opts.batchBytes ?? 4096;
    this.flushIntervalMs = opts.flushIntervalMs ?? 100;
    this.sink = opts.write ?? ((chunk) => writeAll(1, chunk));
  }

  /** Buffer one line (pino calls this). */
  write(line: string): boolean {
    if (this.broken) return true;
    const n = Buffer.byteLength(line);
    if (this.bytes + n > this.batchBytes) this.flushSync();
    this.lines.push(line);
    this.bytes += n;
    if (this.bytes >= this.batchBytes) this.flushSync();
    else this.timer ??= setTimeout(this.onTimer, this.flushIntervalMs).unref();
    return true;
  }

  /** Write `line` now, after the lines already buffered. */
  writeNow(line: string): void {
    this.write(line);
    this.flushSync();
  }

  /** Write every buffered line now. */
  flushSync(): void {
    if (this.lines.length === 0) return;
    const chunk = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    if (this.broken) return;
    try {
      this.sink(chunk);
    } catch (err) {
      // Nobody reads stdout any more: stop writing. Anything else loses this batch only.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE' || code === 'EBADF') this.broken = true;
    }
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flushSync();
  };
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** `writeSync` the whole chunk: retries short writes, and EAGAIN (a non-blocking stdout that is full). */
function writeAll(fd: number, chunk: string): void {
  // The string as is first: no Buffer to allocate in the usual case, one whole write.
  const written = retryingEagain(() => writeSync(fd, chunk));
  if (written === Buffer.byteLength(chunk)) return;
  const buf = Buffer.from(chunk);
  for (let off = written; off < buf.length;) off += retryingEagain(() => writeSync(fd, buf, off));
}

function retryingEagain(write: () => number): number {
  for (;;) {
    try {
      return write();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(sleeper, 0, 0, 10);
    }
  }
}

let stdout: LineBuffer | undefined;

/** The process's one stdout buffer, flushed when the process exits however it exits (process.exit included). */
function stdoutBuffer(): LineBuffer {
  if (stdout === undefined) {
    const out = new LineBuffer();
    process.on('exit', () => out.flushSync());
    stdout = out;
  }
  return stdout;
}
