/**
 * Any logger with these four methods taking `(fields, message)` fits: pino as it is; `console` works
 * too, but prints the fields before the message. lapinmq is silent without one. A logger with a
 * `child(bindings)` method (pino, bunyan) gives each consumer, publisher and RPC client a child bound
 * to it (`{ lapinmq: 'consumer', queue }`, `{ lapinmq: 'publisher' }`, `{ lapinmq: 'rpc-client' }`).
 * A healthy service logs nothing above `info`: `warn` and `error` mean trouble.
 */
export interface Logger {
  /** Routine detail (a settle dropped with its closed channel). `obj` holds fields, never a body or a password. */
  debug(obj: object, msg?: string): void
  /** Lifecycle news. `obj` holds fields, never a body or a password. */
  info(obj: object, msg?: string): void
  /** Something recovered from or ignored: a channel reopening, a task that failed or timed out. */
  warn(obj: object, msg?: string): void
  /** Something lost: an error with no listener, a publish callback that threw. */
  error(obj: object, msg?: string): void
}

const levels = ['debug', 'info', 'warn', 'error'] as const

const noop = (): void => {}

/** @internal The logger that logs nothing, used when none is given. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/** The user's logger behind each guarded one (its `child()` makes bound loggers). */
const userLoggers = new WeakMap<Logger, object>()

/**
 * @internal Checks a user's logger at construction (a `TypeError` naming a missing method) and
 * wraps it so that a logger that throws never escapes into the library: a log call happens inside
 * amqplib's frame handling, timers and close handlers, where a throw would crash the process or
 * leave a channel half-handled.
 */
export function guardLogger(option: string, logger: unknown): Logger {
  if (typeof logger !== 'object' || logger === null) {
    throw new TypeError(`${option} must be an object with debug, info, warn and error methods`)
  }
  const given = logger as Record<string, unknown>
  for (const level of levels) {
    if (typeof given[level] !== 'function') {
      throw new TypeError(
        `${option}.${level} must be a function (a logger needs debug, info, warn and error)`,
      )
    }
  }
  if (userLoggers.has(logger as Logger)) return logger as Logger
  return wrap(logger as Logger)
}

function wrap(user: Logger): Logger {
  const call =
    (level: (typeof levels)[number]) =>
    (obj: object, msg?: string): void => {
      try {
        user[level](obj, msg)
      } catch {
        // The logger's own failure has nowhere better to go.
      }
    }
  const safe: Logger = { debug: call('debug'), info: call('info'), warn: call('warn'), error: call('error') }
  userLoggers.set(safe, user)
  return safe
}

/**
 * @internal A logger that adds `bindings` to every line: the user's `child(bindings)` where the
 * logger has one (pino, bunyan, winston), guarded like the logger itself; otherwise, or when
 * `child()` throws or returns something that is not a logger, the logger as it is.
 */
export function bindLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  const user = userLoggers.get(logger) as { child?: unknown } | undefined
  if (typeof user?.child !== 'function') return logger
  let child: unknown
  try {
    child = user.child(bindings)
  } catch {
    return logger
  }
  if (typeof child !== 'object' || child === null) return logger
  const given = child as Record<string, unknown>
  if (!levels.every((level) => typeof given[level] === 'function')) return logger
  return wrap(child as Logger)
}

/**
 * @internal A publisher's, consumer's or RPC client's logger, bound to `bindings`: its own `logger`
 * option (guarded) if given, else its connection's, else a silent one.
 */
export function componentLogger(
  own: unknown,
  connectionLogger: Logger | undefined,
  bindings: Record<string, unknown>,
): Logger {
  const logger = own === undefined ? (connectionLogger ?? silentLogger) : guardLogger('logger', own)
  return bindLogger(logger, bindings)
}
