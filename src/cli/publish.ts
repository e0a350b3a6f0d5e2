// `lapinmq publish <queue> [body]` and `lapinmq publish --exchange X --routing-key K [body]`:
// publishes one message, or one per input line, with confirms, and reports what became of each:
// confirmed, returned (no queue bound), nacked. Exits non-zero unless every message was confirmed.
import type { Command } from 'commander'
import { type LapinError, Publisher, type SendOptions } from '../index.js'
import {
  type CommonOptions,
  handleInterrupts,
  intFlag,
  kindFlag,
  openConnection,
  quote,
  withCommonOptions,
} from './common.js'
import { describeError, ExitCode, exitCodeOf, UsageError } from './exit-codes.js'
import { type InputMessage, readInput } from './input.js'
import { parseJsonLine } from './json-lines.js'
import {
  type PropertyOptions,
  propertyOptions,
  type TargetOptions,
  targetOf,
  withPropertyOptions,
  withTargetOptions,
} from './message-flags.js'
import { printable } from './message-output.js'
import { count, RateMeter, StatusLine } from './status-line.js'

interface PublishOptions extends CommonOptions, TargetOptions, PropertyOptions {
  file?: string
  lines?: boolean
  jsonLines?: boolean
  kind: 'sync' | 'async'
  maxInFlight?: number
  confirmTimeout?: number
  correlationId?: string
  replyTo?: string
  transient?: boolean
}

/** How many failed messages are listed one by one. */
const listed = 20

export function publishCommand(program: Command): void {
  const command = withTargetOptions(
    program
      .command('publish')
      .summary('publish messages with confirms')
      .description(
        'Publishes the body (the argument, --file, or stdin) to a queue, or to an exchange with a routing key. Every message is persistent and mandatory, and waits for the broker to confirm it. The exit code is non-zero unless every message was confirmed; returned and nacked messages are listed. The first returned message stops the reading of the input.',
      ),
    'publish to',
  )
    .option('-f, --file <path>', "read the body from a file ('-' for stdin)")
    .option('-l, --lines', 'one message per line, its exact bytes (empty lines are skipped)')
    .option(
      '-j, --json-lines',
      'one message per line, written as JSON: {"body": …, "headers": {…}, "properties": {…}, "routingKey": "…"}; header values keep their JSON types, a body that is not a string is sent as JSON',
    )
    .option(
      '--kind <kind>',
      'sync: one message confirmed at a time; async: a window of them',
      kindFlag,
      'async',
    )
    .option('--max-in-flight <n>', 'unconfirmed messages at once with --kind async', intFlag(1, 1_000_000))
    .option('--confirm-timeout <ms>', 'deadline of each confirm', intFlag(1, 2 ** 31 - 1))
  withCommonOptions(
    withPropertyOptions(command, "message id; '{n}' is replaced by the message's number")
      .option('--correlation-id <id>', 'correlation id')
      .option('--reply-to <queue>', 'reply-to queue')
      .option('--transient', 'not persistent (lost if the broker restarts)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  lapinmq publish orders '{"id": 1}' --content-type application/json
  seq 1 1000 | lapinmq publish orders --lines --header source=seq
  lapinmq publish --exchange events --routing-key eu.created --file event.json
  echo '{"body": {"id": 1}, "headers": {"attempt": 2}, "properties": {"messageId": "o-1"}}' | lapinmq publish orders --json-lines`,
    )
    .action(async (queue: string | undefined, body: string | undefined, options: PublishOptions) => {
      process.exitCode = await publish(queue, body, options)
    })
}

/** Outcomes of a run, and the messages that were not confirmed. */
class Outcomes {
  sent = 0
  confirmed = 0
  returned = 0
  nacked = 0
  failed = 0
  /** The first error that was not about one message (missing exchange, connection lost...). */
  fatal: LapinError | undefined
  readonly failures: string[] = []
  #pending = 0
  #idle: (() => void) | undefined

  get inFlight(): number {
    return this.#pending
  }

  track(promise: Promise<void>, message: InputMessage, messageId: string | undefined): void {
    this.sent++
    this.#pending++
    promise.then(
      () => {
        this.confirmed++
        this.#settled()
      },
      (err: LapinError) => {
        this.#failed(err, message, messageId)
        this.#settled()
      },
    )
  }

  /** Resolves once every tracked send has its outcome. */
  settled(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve()
    return new Promise((resolve) => {
      this.#idle = resolve
    })
  }

  #settled(): void {
    this.#pending--
    if (this.#pending === 0) this.#idle?.()
  }

  #failed(err: LapinError, message: InputMessage, messageId: string | undefined): void {
    const what = err.code === 'UNROUTABLE' ? 'returned' : err.code === 'PUBLISH_NACKED' ? 'nacked' : 'failed'
    if (what === 'returned') this.returned++
    else if (what === 'nacked') this.nacked++
    else {
      this.failed++
      this.fatal ??= err
    }
    if (this.failures.length < listed) {
      const where = message.line !== undefined && message.line !== message.n ? ` (line ${message.line})` : ''
      const id = messageId === undefined ? '' : ` id ${quote(messageId)}`
      const why = what === 'returned' ? printable(err.replyText ?? err.code) : err.code
      this.failures.push(`message ${message.n}${where}${id} ${what}: ${why}`)
    }
  }

  exitCode(): number {
    if (this.fatal) return exitCodeOf(this.fatal)
    if (this.returned > 0) return ExitCode.UNROUTABLE
    if (this.nacked > 0) return ExitCode.NACKED
    return ExitCode.OK
  }
}

async function publish(
  queue: string | undefined,
  body: string | undefined,
  o: PublishOptions,
): Promise<number> {
  const target = targetOf(queue, body, o)
  if (o.jsonLines && o.lines) throw new UsageError('give --lines or --json-lines, not both')
  const connection = openConnection(o, 'publish')
  const publisher = new Publisher({
    kind: o.kind,
    connection,
    ...(o.maxInFlight !== undefined && o.kind === 'async' ? { maxInFlight: o.maxInFlight } : {}),
    ...(o.confirmTimeout !== undefined ? { confirmTimeout: o.confirmTimeout } : {}),
  })
  const outcomes = new Outcomes()
  const meter = new RateMeter()
  const status: StatusLine = new StatusLine({
    stream: process.stderr,
    quiet: o.quiet === true,
    render: (tty) => {
      const s = (name: string, n: number) => `${status.paint('dim', name)} ${count(n)}`
      return [
        tty ? 'publish' : 'progress:',
        s('sent', outcomes.sent),
        s('confirmed', outcomes.confirmed),
        s('returned', outcomes.returned),
        s('nacked', outcomes.nacked),
        s('in-flight', outcomes.inFlight),
        `${count(meter.rate(outcomes.confirmed))} msg/s`,
      ].join(tty ? '  ' : ', ')
    },
  })
  const interrupt = handleInterrupts(
    () => status.warn('interrupted: waiting for the confirms of the messages sent'),
    'forced exit: messages sent but not yet confirmed may or may not have arrived',
  )
  try {
    await publisher.start()
    status.start()
    const lines = o.lines === true || o.jsonLines === true
    for await (const message of readInput({ body: target.body, file: o.file, lines })) {
      await publisher.waitForRoom()
      // A return means no queue takes these messages: the rest of the input would come back too.
      if (interrupt.signal || outcomes.fatal || outcomes.returned > 0) break
      const messageId = o.messageId?.replaceAll('{n}', String(message.n))
      const sending = send(publisher, target.queue, o, message, messageId)
      outcomes.track(sending, message, messageId)
      // Sync: one message at a time, its outcome known before the next (a fatal one stops here).
      if (o.kind === 'sync') await outcomes.settled()
    }
    await publisher.stop()
    await outcomes.settled()
  } finally {
    status.finish(false)
    interrupt.dispose()
    await publisher.stop()
    await connection.close()
  }
  const failedAny = outcomes.confirmed < outcomes.sent
  if (!o.quiet || failedAny) {
    const parts = [`${count(outcomes.confirmed)} confirmed`]
    if (outcomes.returned) parts.push(`${count(outcomes.returned)} returned`)
    if (outcomes.nacked) parts.push(`${count(outcomes.nacked)} nacked`)
    if (outcomes.failed) parts.push(`${count(outcomes.failed)} failed`)
    const plural = outcomes.sent === 1 ? 'message' : 'messages'
    process.stderr.write(
      `published ${count(outcomes.sent)} ${plural} to ${target.label}: ${parts.join(', ')}\n`,
    )
    for (const line of outcomes.failures) process.stderr.write(`  ${line}\n`)
    const unlisted = outcomes.sent - outcomes.confirmed - outcomes.failures.length
    if (unlisted > 0) process.stderr.write(`  ... and ${count(unlisted)} more not confirmed\n`)
  }
  if (outcomes.returned > 0) {
    const { queue } = target
    const hint =
      queue !== undefined
        ? `no queue ${quote(queue)} exists: declare it first (lapinmq consume ${queue.startsWith('-') ? '-- ' : ''}${quote(queue)} --declare creates it)`
        : `no queue is bound to exchange ${quote(o.exchange ?? '')} for routing key ${quote(o.routingKey ?? '')}`
    process.stderr.write(`lapinmq: ${count(outcomes.returned)} returned: ${hint}\n`)
    if (o.lines || o.jsonLines)
      process.stderr.write('lapinmq: stopped reading the input at the first returned message\n')
  }
  if (outcomes.fatal) process.stderr.write(`lapinmq: stopped publishing: ${describeError(outcomes.fatal)}\n`)
  if (interrupt.signal && !failedAny) return ExitCode.INTERRUPTED
  return outcomes.exitCode()
}

/** Sends one input message: its bytes with the flags' options, or what its JSON line says. */
function send(
  publisher: Publisher,
  queue: string | undefined,
  o: PublishOptions,
  message: InputMessage,
  messageId: string | undefined,
): Promise<void> {
  const flags = sendOptions(o, messageId)
  if (!o.jsonLines) {
    return queue !== undefined
      ? publisher.sendMessageToQueue(queue, message.body, flags)
      : publisher.sendMessage(o.exchange ?? '', o.routingKey ?? '', message.body, flags)
  }
  const line = message.line ?? message.n
  const { body, options, routingKey } = parseJsonLine(message.body, line, flags)
  if (routingKey !== undefined && queue !== undefined) {
    throw new UsageError(
      `--json-lines: line ${line}: a 'routingKey' goes with --exchange (a queue is its own routing key)`,
    )
  }
  try {
    return queue !== undefined
      ? publisher.sendMessageToQueue(queue, body, options)
      : publisher.sendMessage(o.exchange ?? '', routingKey ?? o.routingKey ?? '', body, options)
  } catch (err) {
    // A property the publisher refuses (a priority over 255, a bad timestamp) is the line's fault.
    if (err instanceof TypeError || err instanceof RangeError) {
      throw new UsageError(`--json-lines: line ${line}: ${err.message}`)
    }
    throw err
  }
}

function sendOptions(o: PublishOptions, messageId: string | undefined): SendOptions {
  const options = propertyOptions(o, messageId)
  if (o.correlationId !== undefined) options.correlationId = o.correlationId
  if (o.replyTo !== undefined) options.replyTo = o.replyTo
  if (o.transient) options.persistent = false
  return options
}
