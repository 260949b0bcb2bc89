import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs. Callers log ids, types, statuses and timings only — never resource
 * content or query values, which may hold PHI. The redact list is a second line of defence
 * for fields that would carry PHI if someone logged a request object by mistake.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'carelens' },
    redact: { paths: ['body', 'resource', 'query', 'headers.authorization', 'req.headers.authorization'], remove: true },
  });
}

export type { Logger };
