// What every `lapinmq` command shares: the --url and --quiet flags, the connection they configure,
// number parsers for flags, and Ctrl-C/SIGTERM handling (first signal: stop gracefully; second:
// leave at once, which loses nothing either: the broker requeues whatever was not acked).
import { type Command, InvalidArgumentError } from 'commander'
import { Connection } from '../index.js'
import { ExitCode, UsageError } from './exit-codes.js'
import { printable } from './message-output.js'

/** Flags that every command takes. */
export interface CommonOptions {
  url?: string
  quiet?: boolean
}

/** Adds --url and --quiet to a command. */
export function withCommonOptions(command: Command): Command {
  return command
    .option(
      '--url <url>',
      'broker URL, amqp://user:password@host:port/vhost (default: RABBITMQ_URL, else RABBITMQ_HOST, _PORT, _USERNAME, _PASSWORD, _VHOST, else amqp://guest:guest@localhost:5672/)',
    )
    .option('-q, --quiet', 'print no progress and no summary, only errors')
}

/**
 * A connection of the command's own, named for it in the broker's connection list. Configured by
 * --url, else by the RABBITMQ_* environment. A broker that does not answer fails the command after
 * a few quick retries rather than the library's patient default.
 */
export function openConnection(options: CommonOptions, role: string): Connection {
  const connection = new Connection({
    ...(options.url === undefined ? {} : { url: options.url }),
    name: `lapinmq-cli:${role}`,
    recovery: { initialMaxRetries: 3 },
  })
  // Recovery gave up: the pending operations fail with their own errors, which the command reports.
  connection.on('error', () => {})
  return connection
}

/** A commander parser for an integer flag within [min, max]. */
export function intFlag(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text: string) => {
    const n = Number(text)
    if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER
          ? `must be an integer of at least ${min}, got '${text}'`
          : `must be an integer between ${min} and ${max}, got '${text}'`,
      )
    }
    return n
  }
}

/** A commander parser for `--kind`. */
export function kindFlag(text: string): 'sync' | 'async' {
  if (text !== 'sync' && text !== 'async') {
    throw new InvalidArgumentError(`--kind must be 'sync' or 'async', got '${text}'`)
  }
  return text
}

/** Ctrl-C / SIGTERM for a running command. */
export interface Interrupt {
  /** Set once the first signal arrived. */
  readonly signal: NodeJS.Signals | undefined
  /** Resolves on the first signal. */
  readonly received: Promise<NodeJS.Signals>
  /** Removes the handlers (the default behaviour of the signals comes back). */
  dispose(): void
}

/**
 * Handles SIGINT and SIGTERM while a command runs: the first calls `onFirst` (stop gracefully);
 * a second one calls `onForced`, prints `forcedMessage` and exits with 130 at once.
 */
export function handleInterrupts(
  onFirst: (signal: NodeJS.Signals) => void,
  forcedMessage: string,
  onForced: () => void = () => {},
): Interrupt {
  let signal: NodeJS.Signals | undefined
  let resolve: (signal: NodeJS.Signals) => void = () => {}
  const received = new Promise<NodeJS.Signals>((r) => {
    resolve = r
  })
  const handler = (s: NodeJS.Signals): void => {
    if (signal !== undefined) {
      onForced()
      process.stderr.write(`\n${forcedMessage}\n`)
      process.exit(ExitCode.INTERRUPTED)
    }
    signal = s
    resolve(s)
    onFirst(s)
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return {
    get signal() {
      return signal
    },
    received,
    dispose() {
      process.off('SIGINT', handler)
      process.off('SIGTERM', handler)
    },
  }
}

/** `'name'` for messages, its control characters escaped (a name or id may hold any byte). */
export function quote(name: string): string {
  return `'${printable(name)}'`
}

/**
 * A commander parser for a repeatable `--queue-arg key=value`: numbers and true/false keep their
 * type (`x-message-ttl=60000`), anything else is a string (`x-queue-type=quorum`).
 */
export function queueArgFlag(text: string, args: Record<string, unknown>): Record<string, unknown> {
  const at = text.indexOf('=')
  if (at < 1) throw new InvalidArgumentError(`a queue argument is key=value, got '${text}'`)
  const raw = text.slice(at + 1)
  const value = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw
  return { ...args, [text.slice(0, at)]: value }
}

/** The hint after a PRECONDITION_FAILED on the declare (--declare) of a queue that has arguments. */
export const queueArgHint =
  'the queue exists with other arguments: repeat them with --queue-arg (e.g. --queue-arg x-queue-type=quorum), or leave out --declare to use the queue as it is'

/** Adds --declare and --queue-arg: the queue consumed is used as it is unless --declare is given. */
export function withDeclareOptions(command: Command, what: string): Command {
  return command
    .option('--declare', `create ${what} (durable) if it does not exist, with the --queue-arg arguments`)
    .option(
      '--queue-arg <key=value>',
      'an argument to declare the queue with, with --declare (repeatable)',
      queueArgFlag,
      {},
    )
}

/**
 * The Consumer options for a queue used as it is (checked, never created) or, with --declare,
 * declared with the --queue-arg arguments.
 */
export function declareOptions(o: { declare?: boolean; queueArg: Record<string, unknown> }): {
  declareQueue: boolean
  queueArgs?: Record<string, unknown>
} {
  const hasArgs = Object.keys(o.queueArg).length > 0
  if (hasArgs && !o.declare) {
    throw new UsageError(
      '--queue-arg is for --declare: without it the queue is used as it was declared, arguments and all',
    )
  }
  return { declareQueue: o.declare === true, ...(hasArgs ? { queueArgs: o.queueArg } : {}) }
}

/** The hint after a NOT_FOUND for the queue consumed. */
export function missingQueueHint(queue: string, declarable = true): string {
  return `no queue ${quote(queue)}: check its name${declarable ? ', or create it with --declare' : ''}`
}
