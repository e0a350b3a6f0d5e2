// `lapinmq pipe <from> <to>`: moves messages from one queue to another (e.g. replays a dead-letter
// queue) with confirm-tied acks: a message leaves <from> only once the broker has confirmed its copy
// in <to>. Interrupted at any point, every message is in <to> or still in <from>. A retry ladder's
// headers are removed on the way (unless --keep-headers): a replayed dead letter starts the ladder
// over, from its first attempt.
import type { Command } from 'commander'
import {
  Consumer,
  type LapinError,
  type Message,
  MessageStatus,
  Publisher,
  type SendOptions,
} from '../index.js'
import { ladderHeaders } from '../retry/headers.js'
import { sendOptionsOf } from '../retry/ladder.js'
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
import { describeError, ExitCode, exitCodeOf, UsageError, withHint } from './exit-codes.js'
import { Gate } from './gate.js'
import { printable } from './message-output.js'
import { bar, count, RateMeter, StatusLine, seconds } from './status-line.js'

interface PipeOptions extends CommonOptions {
  count?: number
  prefetch: number
  idle: number
  follow?: boolean
  keepHeaders?: boolean
  declare?: boolean
  queueArg: Record<string, unknown>
}

export function pipeCommand(program: Command): void {
  withDeclareOptions(
    withCommonOptions(
      program
        .command('pipe')
        .summary('move messages from one queue to another, safely')
        .description(
          'Moves messages from <from> to <to> (both must exist; --declare creates a missing <from>), properties and headers kept, but for the x-lapinmq-* headers of a retry ladder (consume --retry-delays): a replayed dead letter starts the ladder over. Each message is acked in <from> only once the broker has confirmed its copy in <to>, so an interruption (Ctrl-C, SIGTERM, a crash) loses nothing: run the same command again to carry on. Stops when <from> has been empty for --idle seconds (or never, with --follow), after --count messages, or on Ctrl-C. A message that <to> refuses (the queue was deleted, or nacked) goes back to <from> and stops the move.',
        )
        .argument('<from>', 'queue to take messages from')
        .argument('<to>', 'queue to put them in (must exist)')
        .option('-n, --count <n>', 'move at most this many messages', intFlag(1))
        .option('--prefetch <n>', 'messages being moved at once', intFlag(1, 65535), 500)
        .option('--idle <seconds>', 'stop when <from> gave nothing for this long', intFlag(1), 2)
        .option('--follow', 'keep running when <from> is empty, until Ctrl-C')
        .option(
          '--keep-headers',
          'keep the x-lapinmq-* headers of a retry ladder too (its attempt count and last error): moved back into the queue it left, a message then has one attempt left',
        ),
    ),
    '<from>',
  )
    .addHelpText(
      'after',
      `
Examples:
  lapinmq pipe orders.dead orders           # replay the dead letters of consume --retry-delays
  lapinmq pipe orders.dlq orders            # replay a dead-letter queue
  lapinmq pipe orders.dlq orders --count 100
  lapinmq pipe incoming archive --follow`,
    )
    .action(async (from: string, to: string, options: PipeOptions) => {
      process.exitCode = await pipe(from, to, options)
    })
}

async function pipe(from: string, to: string, o: PipeOptions): Promise<number> {
  if (from === to) throw new UsageError('<from> and <to> must be different queues')
  const declaring = declareOptions(o)
  const t = { received: 0, moved: 0 }
  const started = performance.now()
  const gate = new Gate(o.count ?? Number.POSITIVE_INFINITY)
  const meter = new RateMeter()
  const status: StatusLine = new StatusLine({
    stream: process.stderr,
    quiet: o.quiet === true,
    render: (tty) => {
      const s = (name: string, n: number) => `${status.paint('dim', name)} ${count(n)}`
      const rate = `${count(meter.rate(t.moved))} msg/s`
      if (!tty) return `progress: moved ${t.moved}, in-flight ${gate.active}, ${rate}`
      const head =
        o.count === undefined ? `pipe ${printable(from)} → ${printable(to)}` : bar(t.moved, o.count)
      return [head, s('moved', t.moved), s('in-flight', gate.active), rate].join('  ')
    },
  })
  const consuming = openConnection(o, 'pipe:consume')
  const publishing = openConnection(o, 'pipe:publish')
  // The window is as large as the prefetch: a forward never waits for room.
  const publisher = new Publisher({ kind: 'async', connection: publishing, maxInFlight: o.prefetch })
  let lastActivity = performance.now()
  let lastMoved = started
  let endReason: 'count' | 'idle' | 'signal' | 'error' | undefined
  let fatal: LapinError | undefined
  let stopping: Promise<void> | undefined
  let ended: () => void = () => {}
  const end = new Promise<void>((resolve) => {
    ended = resolve
  })
  const finish = (reason: typeof endReason): void => {
    if (endReason !== undefined) return
    endReason = reason
    gate.close()
    // Stops taking messages, gives back those not started, and waits until every message in flight
    // is acked (its copy confirmed) or requeued (its copy refused).
    stopping = consumer.stop()
    ended()
  }
  const refused = (message: Message, err: LapinError): void => {
    message.rejectRetry()
    gate.leave(false)
    fatal ??= err
    finish('error')
  }

  const forward = (message: Message): MessageStatus => {
    if (!gate.tryEnter()) return MessageStatus.FAIL_RETRY_LATER // stopping, or beyond --count
    t.received++
    lastActivity = performance.now()
    const options: SendOptions = {
      ...forwardedOptions(message, o.keepHeaders === true),
      callbacks: {
        ackCallback: () => {
          message.ack()
          t.moved++
          gate.leave(true)
          lastActivity = performance.now()
          lastMoved = lastActivity
          if (gate.done >= (o.count ?? Number.POSITIVE_INFINITY)) finish('count')
        },
        nackCallback: (err) => refused(message, err),
      },
    }
    try {
      publisher.sendMessageToQueue(to, message.body, options).catch(() => {}) // the callbacks decide
    } catch (err) {
      refused(message, err as LapinError) // a property the publisher will not take
    }
    return MessageStatus.HANDLED_VIA_CALLBACK
  }

  const consumer = new Consumer({
    queueName: from,
    connection: consuming,
    ...declaring,
    prefetch: o.prefetch,
    // A message <to> refused goes back at once: the move stops there, nothing is retried.
    requeueBackoff: false,
    taskFunction: forward,
  })
  consumer.on('error', (err) => {
    status.warn(`lapinmq: ${describeError(err)}`)
    // NOT_FOUND: <from> was deleted under us; it stays deleted unless --declare says otherwise.
    if (err.code === 'CONNECTION_CLOSED' || err.code === 'NOT_FOUND') {
      fatal ??= err
      finish('error')
    }
  })
  const interrupt = handleInterrupts(
    () => status.warn('interrupted: finishing the messages in flight (Ctrl-C again to leave at once)'),
    'forced exit: messages in flight stay in the source queue (some may also be in the target)',
  )
  interrupt.received.then(() => finish('signal'))
  const idleCheck = o.follow
    ? undefined
    : setInterval(() => {
        if (gate.active === 0 && performance.now() - lastActivity >= o.idle * 1000) finish('idle')
      }, 100)
  try {
    status.info(`moving queue ${quote(from)} to queue ${quote(to)} at ${consuming.url}`)
    // The target first: a move that cannot start takes no message out of <from>.
    await publishing.checkQueue(to).catch((err: LapinError) => {
      throw err.code === 'NOT_FOUND' ? withHint(err, `no queue ${quote(to)} to move to: check its name`) : err
    })
    await publisher.start()
    await consumer.start().catch((err: LapinError) => {
      throw err.code === 'NOT_FOUND' ? withHint(err, missingQueueHint(from)) : err
    })
    lastActivity = performance.now()
    status.start()
    await end
    await stopping
  } finally {
    clearInterval(idleCheck)
    status.finish(false)
    interrupt.dispose()
    await consumer.stop()
    await publisher.stop()
    await Promise.all([consuming.close(), publishing.close()])
  }
  // Up to the last message moved: the --idle wait at the end is no part of the rate.
  const elapsed = (t.moved > 0 ? lastMoved : performance.now()) - started
  if (!o.quiet) {
    const rate = Math.round((t.moved * 1000) / Math.max(1, elapsed))
    process.stderr.write(
      `moved ${count(t.moved)} ${t.moved === 1 ? 'message' : 'messages'} from ${quote(from)} to ${quote(to)} in ${seconds(elapsed)} (${count(rate)} msg/s)\n`,
    )
  }
  if (fatal) {
    // Returned by the default exchange: <to> was deleted during the move.
    const gone = fatal.code === 'UNROUTABLE'
    const hint = gone ? ` (queue ${quote(to)} no longer exists)` : ''
    process.stderr.write(
      `lapinmq: stopped: ${describeError(fatal)}${hint}; the message is back in ${quote(from)}\n`,
    )
    return gone ? ExitCode.NOT_FOUND : exitCodeOf(fatal)
  }
  if (endReason === 'signal') {
    if (!o.quiet)
      process.stderr.write(`interrupted: the rest is still in ${quote(from)}; run again to go on\n`)
    return ExitCode.INTERRUPTED
  }
  return ExitCode.OK
}

/**
 * The source message's properties and headers, as send options: those a retry ladder's copy keeps
 * (all but user-id, which is the broker's to check), and the expiration too. Unless `keepLadder`,
 * the ladder's own headers are left out, so that a replayed dead letter starts over: the consumer
 * counts a ladder's attempts only from its `x-lapinmq-attempt`, and `x-death` (kept, it is the
 * broker's record) then counts for nothing.
 */
function forwardedOptions(message: Message, keepLadder: boolean): SendOptions {
  let headers = message.headers
  if (!keepLadder && ladderHeaders.some((name) => name in headers)) {
    headers = { ...headers }
    for (const name of ladderHeaders) delete headers[name]
  }
  const { headers: _, ...options } = sendOptionsOf(message.properties, headers)
  const out: SendOptions = Object.keys(headers).length > 0 ? { ...options, headers } : options
  const p = message.properties
  const expiration = Number(p.expiration)
  if (p.expiration !== undefined && Number.isInteger(expiration)) out.expiration = expiration
  return out
}
