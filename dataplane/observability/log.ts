// Two loggers on one stdout: diagnostics obey --log-level, while the access
// log and the "listening" announcement are always written, because parents
// and log pipelines depend on them whatever the diagnostic verbosity.
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';

/** Loggers of a dataplane. */
export interface DataplaneLoggers {
  /** Diagnostics, at the configured level. */
  log: Logger;
  /** One line per request, and the startup announcement; always at `info`. */
  access: Logger;
}

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Create both loggers writing to `destination` (stdout by default, synchronously). */
export function createLoggers(level: Level | 'silent', destination?: DestinationStream): DataplaneLoggers {
  const dest = destination ?? pino.destination({ dest: 1, sync: true });
  return {
    log: pino({ level, base: { component: 'dataplane' } }, dest),
    access: pino({ level: 'info', base: undefined }, dest),
  };
}
