// `lapinmq consume <queue>`: prints messages (body, or JSON with --json) and acks, requeues or
// rejects each once stdout has taken it; or, with --exec, runs a command per message and acks it
// when the command exits 0 (a failed one is requeued, or with --retry-delays goes along a retry
// ladder: delay queues, then a dead-letter queue). Stops after --count messages, after --idle
// seconds without one, when stdout closes, or on Ctrl-C/SIGTERM, always through the consumer's graceful stop: every decided
// ack reaches the broker, the rest go back.
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Command, Option } from 'commander'
import { Consumer, type LapinError, type Message, MessageStatus, type RetryOptions } from '../index.js'
import {
  type CommonOptions,
  declareOptions,
  handleInterrupts,
  intFlag,
  missingQueueHint,
  openConnection,
  quote,
  withCommonOptions,
  withDeclareOptions,
} from './common.js'
import { durationListFlag, formatDuration } from './durations.js'
import { runCommand, runningCommands, terminateCommands } from './exec.js'
import { describeError, ExitCode, exitCodeOf, UsageError, withHint } from './exit-codes.js'
import { Gate } from './gate.js'
import { jsonLine, plainLine } from './message-output.js'
import { bar, count, RateMeter, StatusLine } from './status-line.js'

interface ConsumeOptions extends CommonOptions {
  count?: number
  json?: boolean
  ack?: boolean
  requeue?: boolean
  reject?: boolean
  exec?: string
  concurrency: number
  prefetch?: number
  retryDelay: number
  maxAttempts?: number
  retryDelays?: number[]
  deadLetterQueue?: string
  grace: number
  idle?: number
  declare?: boolean
  queueArg: Record<string, unknown>
}

export function consumeCommand(program: Command): void {
  withDeclareOptions(
    withCommonOptions(
      program
        .command('consume')
        .summary('print messages, or run a command for each')
        .description(
          'Consumes an existing queue, as it was declared (--declare creates a missing one), and prints each message body on stdout, or one JSON object per line with --json; a message is acked once stdout has taken it (a reader that leaves stops the command, exit 141). With --exec, runs a shell command per message instead, the body on its stdin: exit 0 acks the message, anything else requeues it (after --retry-delay), or with --retry-delays sends it to wait in a delay queue, and after the last delay to a dead-letter queue. Runs until --count messages are handled, --idle seconds pass without one, or Ctrl-C / SIGTERM (a graceful stop).',
        )
        .argument('<queue>', 'queue to consume')
        .option(
          '-n, --count <n>',
          'stop after this many messages (with --exec: commands that succeeded)',
          intFlag(1),
        )
        .option('--json', 'print one JSON object per message: body, properties, headers, delivery')
        .addOption(
          new Option('--ack', 'ack each message once printed (the default)').conflicts(['requeue', 'reject']),
        )
        .addOption(
          new Option(
            '--requeue',
            'give the messages back when done: a peek of what the queue holds, at most --count (default 100)',
          ).conflicts(['reject', 'exec']),
        )
        .addOption(
          new Option('--reject', 'reject each message (dead-lettered if the queue has a DLX)').conflicts(
            'exec',
          ),
        )
        .option('-x, --exec <command>', 'run a shell command per message, the body on stdin; exit 0 acks')
        .option('-c, --concurrency <n>', 'commands run at once, with --exec', intFlag(1, 65535), 1)
        .option(
          '--prefetch <n>',
          'messages the broker sends ahead (default: --concurrency, 100 to print)',
          intFlag(1, 65535),
        )
        .option(
          '--retry-delay <ms>',
          'wait before requeueing a message whose command failed',
          intFlag(0),
          1000,
        )
        .option(
          '--max-attempts <n>',
          'with --exec: after n failed attempts, reject the message (dead-lettered if the queue has a DLX) instead of requeueing it',
          intFlag(1),
        )
        .addOption(
          new Option(
            '--retry-delays <list>',
            'with --exec: a retry ladder, e.g. 1s,10s,1m (units ms, s, m, h; a bare number is ms): a message whose command failed waits in the delay queue <queue>.retry.<ms> of its attempt, then comes back; after the last delay it goes to the dead-letter queue',
          )
            .argParser(durationListFlag)
            .conflicts(['retryDelay', 'maxAttempts']),
        )
        .option(
          '--dead-letter-queue <name>',
          'with --retry-delays: where a message goes after its last retry (default: <queue>.dead)',
        )
        .option(
          '--grace <seconds>',
          'with --exec: on Ctrl-C/SIGTERM, how long running commands may take to finish before they are ended',
          intFlag(0),
          30,
        )
        .option('--idle <seconds>', 'stop when no message came for this long', intFlag(1)),
    ),
    'the queue',
  )
    .addHelpText(
      'after',
      `
With --exec and --max-attempts, attempts are counted per message id (a message without one: per
body, headers and properties) by this run, and from a quorum queue's x-delivery-count. Commands run in a process
group of their own: Ctrl-C lets them finish (--grace), a second Ctrl-C ends them.

With --exec the command also gets LAPINMQ_QUEUE, LAPINMQ_MESSAGE_ID, LAPINMQ_CORRELATION_ID,
LAPINMQ_ROUTING_KEY, LAPINMQ_EXCHANGE, LAPINMQ_REDELIVERED (0/1), LAPINMQ_ATTEMPT (1 on a first
delivery; with --retry-delays, 1 + the failures counted) and LAPINMQ_HEADERS (JSON); a
value with a NUL byte or too long for the environment is left out, with a warning. The RABBITMQ_*
variables (broker URL, password) are not passed on.

With --retry-delays, the delay queues <queue>.retry.<ms> and the dead-letter queue are declared
(durable) at start. A failed message is copied there with the headers x-lapinmq-attempt (its
failures so far), x-lapinmq-first-failure, x-lapinmq-last-error, x-lapinmq-queue and where it was
first published (x-lapinmq-original-exchange, -routing-key); only then is the original acked.
With 1s,10s,1m a command runs at most 4 times per message. lapinmq pipe <queue>.dead <queue>
replays the dead letters, from their first attempt.

Examples:
  lapinmq consume orders --count 10 --json
  lapinmq consume orders --count 3                  # take three (| head -3 would ack what the pipe holds)
  lapinmq consume orders --requeue --count 5        # look without taking
  lapinmq consume orders --exec 'jq -e .id >/dev/null' --concurrency 4
  lapinmq consume orders --exec ./handle.sh --retry-delays 1s,10s,1m`,
    )
    .action(async (queue: string, options: ConsumeOptions) => {
      process.exitCode = await consume(queue, options)
    })
}

type Mode = 'ack' | 'requeue' | 'reject'

async function consume(queue: string, o: ConsumeOptions): Promise<number> {
  const mode: Mode = o.requeue ? 'requeue' : o.reject ? 'reject' : 'ack'
  if (o.maxAttempts !== undefined && o.exec === undefined) {
    throw new UsageError('--max-attempts counts the attempts of --exec commands: give --exec too')
  }
  const retry = retryOption(queue, o)
  const deadLetterQueue = o.deadLetterQueue ?? `${queue}.dead`
  if (mode === 'requeue' && (o.count ?? 0) > 65535) {
    throw new UsageError('--requeue holds every message until the end: --count at most 65535')
  }
  const declaring = declareOptions(o)
  const connection = openConnection(o, 'consume')
  let limit = o.count ?? (mode === 'requeue' ? 100 : Number.POSITIVE_INFINITY)
  if (mode === 'requeue') {
    // A peek shows what the queue holds now, up to --count, and ends there.
    const ready = await connection.checkQueue(queue).then(
      (info) => info.messageCount,
      async (err: LapinError) => {
        if (err.code === 'NOT_FOUND' && o.declare) return 0 // --declare creates it, empty
        await connection.close()
        throw err.code === 'NOT_FOUND' ? withHint(err, missingQueueHint(queue)) : err
      },
    )
    limit = Math.min(limit, ready)
  }
  // Stops a peek that others emptied under it: nothing arrives for this long (s).
  const idle = o.idle ?? (mode === 'requeue' ? 1 : undefined)
  const concurrency = o.exec === undefined ? 1 : o.concurrency
  // Requeue holds every message it shows, so the prefetch must let all of them in.
  const prefetch =
    mode === 'requeue'
      ? Math.max(1, limit)
      : (o.prefetch ?? (o.exec === undefined ? Math.min(limit, 100) : concurrency))
  const t = { received: 0, acked: 0, requeued: 0, rejected: 0, failed: 0, delayed: 0, deadLettered: 0 }
  const gate = new Gate(limit)
  const held: Message[] = []
  const meter = new RateMeter()
  const status: StatusLine = new StatusLine({
    stream: process.stderr,
    quiet: o.quiet === true,
    plainInterval: 0,
    render: () => {
      const s = (name: string, n: number) => `${status.paint('dim', name)} ${count(n)}`
      const head = o.count === undefined ? 'consume' : bar(gate.done, o.count)
      const parts = [head, s('received', t.received), s('acked', t.acked)]
      if (retry) parts.push(s('delayed', t.delayed), s('dead-lettered', t.deadLettered))
      else parts.push(s('requeued', t.requeued))
      if (t.rejected) parts.push(s('rejected', t.rejected))
      if (o.exec !== undefined) parts.push(s('failed', t.failed), s('running', gate.active))
      return [...parts, `${count(meter.rate(t.received))} msg/s`].join('  ')
    },
  })
  let lastActivity = performance.now()
  let endReason: 'count' | 'idle' | 'signal' | 'error' | 'output' | undefined
  let fatal: LapinError | undefined
  let commandsEnded = 0
  let stopping: Promise<void> | undefined
  let ended: () => void = () => {}
  const end = new Promise<void>((resolve) => {
    ended = resolve
  })
  const stopWaiting = new AbortController()

  const finish = (reason: typeof endReason): void => {
    if (endReason !== undefined) return
    endReason = reason
    stopWaiting.abort()
    gate.close()
    if (reason === 'signal' && runningCommands() > 0) {
      status.warn(
        `interrupted: waiting up to ${o.grace} s for ${runningCommands()} running command(s) to finish (Ctrl-C again to end them)`,
      )
    }
    // Stop at once (this may run inside a task): nothing more starts; then give back what is held.
    // Running commands have the grace period to finish and have their messages settled.
    stopping = consumer.stop({ timeout: o.grace * 1000 })
    for (const message of held.splice(0)) message.rejectRetry()
    ended()
  }

  // A message is settled once stdout has taken its output (the write's callback): a reader that
  // leaves (`| head`) has taken what was written, and nothing else is acked.
  const terminal = process.stdout.isTTY === true
  const unwritten = new Set<Message>()
  let written = 0
  let outputClosed = false
  const outputGone = (): void => {
    if (outputClosed) return
    outputClosed = true
    for (const message of unwritten) {
      message.rejectRetry()
      t.requeued++
    }
    unwritten.clear()
    finish('output')
  }
  const settleWritten = (message: Message, err: Error | null | undefined): void => {
    if (!unwritten.delete(message)) return // given back already: stdout closed
    if (err) {
      message.rejectRetry()
      t.requeued++
      outputGone()
      return
    }
    written++
    if (mode === 'ack') {
      message.ack()
      t.acked++
    } else if (mode === 'reject') {
      message.reject()
      t.rejected++
    } else {
      t.requeued++
      if (endReason === undefined) held.push(message)
      else message.rejectRetry()
    }
  }

  const printTask = (message: Message): MessageStatus => {
    // Beyond --count, or stdout closed: give it back.
    if (outputClosed || !gate.tryEnter()) return MessageStatus.FAIL_RETRY_LATER
    t.received++
    lastActivity = performance.now()
    unwritten.add(message)
    const output = o.json ? jsonLine(message) : plainLine(message, terminal)
    status.above(() => process.stdout.write(output, (err) => settleWritten(message, err)))
    gate.leave(true)
    if (gate.done >= limit) finish('count')
    return MessageStatus.HANDLED_VIA_CALLBACK
  }

  const command = o.exec
  const attempts = new Attempts()
  // Commands ended by lapinmq (Ctrl-C twice, or --grace over): their failures are not attempts.
  let stoppedCommands = false
  const execTask = async (message: Message): Promise<MessageStatus> => {
    if (command === undefined || !(await gate.enter())) return giveBack(message)
    t.received++
    lastActivity = performance.now()
    const output = status.tty && !o.quiet ? forwardAbove(status) : 'inherit'
    const code = await runCommand(command, queue, message, output, (text) =>
      status.warn(`lapinmq: ${which(message)}: ${text}`),
    )
    lastActivity = performance.now()
    if (code === 0) {
      t.acked++
      attempts.forget(message)
      gate.leave(true)
      if (gate.done >= limit) finish('count')
      return MessageStatus.SUCCESS
    }
    t.failed++
    gate.leave(false)
    const failure = `command ${code === null ? 'was killed' : `exited with ${code}`} for ${which(message)}`
    if (retry) {
      // Ended by lapinmq: no failure of the message's own, so no step along the ladder.
      if (stoppedCommands) return giveBack(message)
      // The ladder moves it: this failure is its attempt'th (clamped to the ladder's length + 1).
      const attempt = message.attempt
      const delay = retry.delays[attempt - 1]
      if (delay === undefined) {
        t.deadLettered++
        status.warn(
          `lapinmq: ${failure}; dead-lettered after ${attempt} attempts (queue ${quote(deadLetterQueue)})`,
        )
      } else {
        t.delayed++
        status.warn(
          `lapinmq: ${failure}; retried in ${formatDuration(delay)} (attempt ${attempt} of ${retry.delays.length + 1})`,
        )
      }
      return MessageStatus.FAIL_RETRY_LATER
    }
    const attempt = attempts.failed(message)
    if (o.maxAttempts !== undefined && attempt >= o.maxAttempts && !stoppedCommands) {
      attempts.forget(message)
      t.rejected++
      status.warn(
        `lapinmq: ${failure}; rejected after ${attempt} attempts (dead-lettered if the queue has a DLX)`,
      )
      return MessageStatus.FAIL_DO_NOT_RETRY
    }
    const of = o.maxAttempts === undefined ? '' : ` (attempt ${attempt} of ${o.maxAttempts})`
    status.warn(`lapinmq: ${failure}; requeued${of}`)
    if (endReason === undefined && o.retryDelay > 0) {
      await sleep(o.retryDelay, undefined, { signal: stopWaiting.signal }).catch(() => {})
    }
    t.requeued++
    return MessageStatus.FAIL_RETRY_LATER
  }

  const consumer = new Consumer({
    queueName: queue,
    connection,
    ...declaring,
    concurrency,
    prefetch,
    taskFunction: o.exec === undefined ? printTask : execTask,
    // The command's own pacing (--retry-delay) or the ladder decides when a message comes back;
    // a give-back (a --requeue peek, stdout closed) is no failure to back off from.
    requeueBackoff: false,
    ...(retry && { retry }),
  })
  consumer.on('error', (err) => {
    status.warn(`lapinmq: ${describeError(err)}`)
    // NOT_FOUND: the queue was deleted under us; it stays deleted unless --declare says otherwise.
    if (err.code === 'CONNECTION_CLOSED' || err.code === 'NOT_FOUND') {
      fatal ??= err
      finish('error')
    }
  })
  const interrupt = handleInterrupts(
    () => finish('signal'),
    'forced exit: running commands ended; messages not yet acked go back to the queue',
    () => terminateCommands(),
  )
  const idleCheck =
    idle === undefined
      ? undefined
      : setInterval(() => {
          if (gate.active === 0 && performance.now() - lastActivity >= idle * 1000) finish('idle')
        }, 100)
  try {
    // Before start(): messages may arrive (and be printed) before it resolves.
    status.info(`consuming queue ${quote(queue)} at ${connection.url} (Ctrl-C to stop)`)
    process.stdout.on('error', outputGone) // the reader went away (| head)
    await consumer.start().catch((err: LapinError) => {
      throw err.code === 'NOT_FOUND' ? withHint(err, missingQueueHint(queue)) : err
    })
    lastActivity = performance.now()
    status.start()
    if (gate.done >= limit) finish('count') // a peek of an empty queue
    await end
    await stopping
    stoppedCommands = true
    const left = terminateCommands()
    if (left > 0) {
      commandsEnded = left
      status.warn(`lapinmq: ended ${left} command(s) still running; their messages were requeued`)
    }
  } finally {
    clearInterval(idleCheck)
    status.finish(false)
    interrupt.dispose()
    await consumer.stop()
    await connection.close()
  }
  if (!o.quiet) {
    const parts = [`${count(t.acked)} acked`]
    if (t.requeued) parts.push(`${count(t.requeued)} requeued`)
    if (t.delayed) parts.push(`${count(t.delayed)} delayed`)
    if (t.deadLettered) parts.push(`${count(t.deadLettered)} dead-lettered`)
    if (t.rejected) parts.push(`${count(t.rejected)} rejected`)
    if (t.failed) parts.push(`${count(t.failed)} command failures`)
    process.stderr.write(`consumed ${count(t.received)} from queue ${quote(queue)}: ${parts.join(', ')}\n`)
  }
  if (endReason === 'output') {
    process.stderr.write(
      `lapinmq: stdout closed: ${count(written)} ${written === 1 ? 'message' : 'messages'} written, the rest given back to queue ${quote(queue)}\n`,
    )
    return ExitCode.OUTPUT_CLOSED
  }
  if (fatal) return exitCodeOf(fatal)
  if (endReason === 'signal' && o.count !== undefined && gate.done < o.count) return ExitCode.INTERRUPTED
  if (endReason === 'signal' && commandsEnded > 0) return ExitCode.INTERRUPTED
  return ExitCode.OK
}

/**
 * The consumer's `retry` from --retry-delays and --dead-letter-queue, checked before anything
 * connects. Only --exec has failures to retry: printing acks, requeues or rejects as told, and its
 * give-backs (a peek, a closed stdout) are no failures to send along a ladder.
 */
function retryOption(queue: string, o: ConsumeOptions): RetryOptions | undefined {
  const dead = o.deadLetterQueue
  if (o.retryDelays === undefined) {
    if (dead !== undefined) {
      throw new UsageError('--dead-letter-queue is where --retry-delays ends: give --retry-delays too')
    }
    return undefined
  }
  if (o.exec === undefined) {
    throw new UsageError(
      '--retry-delays retries the messages whose --exec command failed: give --exec too (printing has no failures to retry)',
    )
  }
  if (dead !== undefined) {
    if (dead === '' || dead.startsWith('amq.')) {
      throw new UsageError(`--dead-letter-queue must be a queue name (not '' nor amq.*), got ${quote(dead)}`)
    }
    const delayQueues = o.retryDelays.map((ms) => `${queue}.retry.${ms}`)
    if (dead === queue || delayQueues.includes(dead)) {
      throw new UsageError(
        `--dead-letter-queue ${quote(dead)} must differ from the queue and its delay queues`,
      )
    }
  }
  return { delays: o.retryDelays, ...(dead !== undefined && { deadLetterQueue: dead }) }
}

/**
 * Gives a message back to the queue untouched, neither tried nor failed (lapinmq is stopping, or
 * --count is reached): no retry backoff, and no step along a retry ladder.
 */
function giveBack(message: Message): MessageStatus {
  message.settleAs('requeue')
  return MessageStatus.HANDLED_VIA_CALLBACK
}

/** A command's output printed above the live status line, whole lines at a time. */
function forwardAbove(status: StatusLine) {
  return (stream: 'stdout' | 'stderr', text: string): void => status.above(() => process[stream].write(text))
}

/** Names a message in a log line without its body. */
function which(message: Message): string {
  const id = message.properties.messageId
  return typeof id === 'string' ? `message ${quote(id)}` : `delivery ${message.deliveryTag}`
}

/**
 * Failed attempts per message, counted by this run: by message id, else by content (identical
 * messages without an id share a count). A first delivery (not redelivered) starts from nothing;
 * a quorum queue's x-delivery-count, kept by the broker, counts earlier runs too.
 */
/** Failing messages whose attempts are counted at once. */
const maxRemembered = 100_000

class Attempts {
  readonly #failures = new Map<string, number>()

  /** Records a failed attempt and returns how many the message has had. */
  failed(message: Message): number {
    const key = attemptKey(message)
    const before = message.redelivered ? (this.#failures.get(key) ?? 0) : 0
    const delivered = Number(message.headers['x-delivery-count'] ?? 0)
    const n = Math.max(before, Number.isInteger(delivered) ? delivered : 0) + 1
    // Oldest first: a message that failed and then left the queue another way (a TTL, a purge)
    // is forgotten once many others have failed since, so the map stays bounded.
    this.#failures.delete(key)
    this.#failures.set(key, n)
    if (this.#failures.size > maxRemembered) {
      const oldest = this.#failures.keys().next().value
      if (oldest !== undefined) this.#failures.delete(oldest)
    }
    return n
  }

  forget(message: Message): void {
    this.#failures.delete(attemptKey(message))
  }
}

function attemptKey(message: Message): string {
  const id = message.properties.messageId
  if (typeof id === 'string' && id !== '') return `id:${id}`
  const { headers: _h, ...properties } = message.properties
  const headers = { ...message.headers }
  delete headers['x-delivery-count']
  return createHash('sha256')
    .update(message.body)
    .update(
      JSON.stringify([message.routingKey, properties, headers], (_k, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v,
      ),
    )
    .digest('base64')
}
