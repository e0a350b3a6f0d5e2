/** Any logger with these four methods fits (pino, console, winston). lapinmq is silent without one. */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const noop = (): void => {}

/** @internal The logger that logs nothing, used when none is given. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/** @internal Logs a warning without letting a throwing logger escape (into amqplib's frame handling, say). */
export function warnSafely(logger: Logger, obj: object, msg: string): void {
  try {
    logger.warn(obj, msg)
  } catch {
    // The logger's own failure has nowhere better to go.
  }
}
