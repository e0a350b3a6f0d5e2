// `lapinmq demo` (and `npm start`): lapinmq's main job end to end. Publishes N messages into a
// source queue; a consumer forwards each one to a sink queue and acks its source message only once
// the broker confirmed the forwarded copy; a second consumer drains the sink. Then it checks that
// nothing was lost or duplicated, and deletes both queues.
import { randomUUID } from 'node:crypto'
import { type Command, Option } from 'commander'
import { type Connection, Consumer, type Message, MessageStatus, Publisher } from '../index.js'
import {
  type CommonOptions,
  handleInterrupts,
  intFlag,
  kindFlag,
  openConnection,
  withCommonOptions,
} from './common.js'
import { summary, Tally } from './demo-tally.js'
import { describeError, ExitCode } from './exit-codes.js'
import { StatusLine } from './status-line.js'

interface DemoOptions extends CommonOptions {
  count: number
  kind: 'sync' | 'async'
  concurrency: number
}

export function demoCommand(program: Command): void {
  withCommonOptions(
    program
      .command('demo')
      .summary('a demo: a confirmed pipeline, checked for loss')
      .description(
        'Publishes --count messages into a source queue; a consumer forwards each one to a sink queue and acks its source message only once the copy is confirmed; a second consumer drains the sink. Shows a live status line, then a summary, deletes its queues, and exits 0 when every message arrived exactly once.',
      )
      .addOption(
        new Option('--count <n>', 'messages to send').env('DEMO_COUNT').argParser(intFlag(1)).default(10_000),
      )
      .addOption(
        new Option(
          '--kind <kind>',
          'async: the forwarder acks from the confirm callback; sync: it awaits each send',
        )
          .env('DEMO_KIND')
          .argParser(kindFlag)
          .default('async'),
      )
      .addOption(
        new Option('--concurrency <n>', 'forwarding tasks at once')
          .env('DEMO_CONCURRENCY')
          .argParser(intFlag(1, 65535))
          .default(10),
      ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  lapinmq demo --count 50000 --kind sync --concurrency 20\n  npm start -- --count 50000',
    )
    .action(async (options: DemoOptions) => {
      process.exitCode = await demo(options)
    })
}

async function demo(s: DemoOptions): Promise<number> {
  const run = randomUUID().slice(0, 8)
  const source = `lapinmq-demo.source.${run}`
  const sink = `lapinmq-demo.sink.${run}`
  // One connection to publish, one to consume, as lapinmq's shared connections are split; and one
  // to delete the queues at the end.
  const publishing = openConnection(s, 'demo:publish')
  const consuming = openConnection(s, 'demo:consume')
  const admin = openConnection(s, 'demo:admin')
  const say = (text: string) => (s.quiet ? undefined : console.log(text))
  say(`lapinmq demo: ${s.count} messages, kind ${s.kind}, concurrency ${s.concurrency}, broker ${admin.url}`)
  say(`queues: ${source} -> ${sink}`)

  // A safety net for a demo killed before its cleanup: the broker deletes a queue unused for 10 min.
  const queueArgs = { 'x-expires': 10 * 60_000 }
  const tally = new Tally()
  const status: StatusLine = new StatusLine({
    stream: process.stdout,
    quiet: s.quiet === true,
    render: (tty) =>
      tty ? tally.liveLine(s.count, (text) => status.paint('dim', text)) : tally.progressLine(),
  })
  // Ctrl-C (or SIGTERM) stops publishing and waiting; the cleanup below still runs.
  const interrupt = handleInterrupts(
    () => status.warn('interrupted: stopping and deleting the queues'),
    'forced exit: the queues expire 10 minutes after their last use',
  )
  const publisher = new Publisher({ kind: s.kind, connection: publishing })
  const forwarder = new Publisher({ kind: s.kind, connection: publishing })

  const forwardTask = (message: Message): MessageStatus => {
    tally.forwarded++
    // The copy keeps the source's messageId; the source message is acked only once the broker has
    // confirmed the copy, and requeued if it will not.
    forwarder
      .sendMessageToQueue(sink, message.body, {
        ...messageIdOf(message),
        callbacks: {
          ackCallback: () => {
            tally.acked++
            message.ack()
          },
          nackCallback: () => message.rejectRetry(),
        },
      })
      .catch(() => {}) // the callbacks handle both outcomes
    return MessageStatus.HANDLED_VIA_CALLBACK
  }
  // The original library's sync pattern: wait for the confirm, then let the consumer ack.
  const forwardAndWait = async (message: Message): Promise<MessageStatus> => {
    tally.forwarded++
    await forwarder.sendMessageToQueue(sink, message.body, messageIdOf(message))
    tally.acked++
    return MessageStatus.SUCCESS
  }
  const forwarding = new Consumer({
    queueName: source,
    queueArgs,
    connection: consuming,
    concurrency: s.concurrency,
    // With callbacks a task ends as soon as it has handed its message on, so the prefetch, not
    // the concurrency, bounds how many messages are being forwarded at once.
    prefetch: Math.max(s.concurrency, 100),
    taskFunction: s.kind === 'async' ? forwardTask : forwardAndWait,
  })
  const draining = new Consumer({
    queueName: sink,
    queueArgs,
    connection: consuming,
    concurrency: 10,
    prefetch: 100,
    taskFunction: (message: Message) => {
      tally.received++
      const id = String(message.properties.messageId)
      tally.receivedIds.set(id, (tally.receivedIds.get(id) ?? 0) + 1)
      return MessageStatus.SUCCESS
    },
  })

  let deleted = false
  try {
    // Consumers first: they declare the queues that the publishes are routed to.
    await draining.start()
    await forwarding.start()
    await forwarder.start()
    await publisher.start()
    status.start()
    for (let i = 0; i < s.count && !interrupt.signal; i++) {
      const messageId = `${run}-${i}`
      await publisher.waitForRoom() // keeps unconfirmed messages, and memory, bounded
      tally.published++
      publisher.sendMessageToQueue(source, JSON.stringify({ n: i, at: Date.now() }), { messageId }).then(
        () => {
          tally.confirmed++
          tally.confirmedIds.add(messageId)
        },
        (err: unknown) => {
          tally.publishFailed++
          status.warn(`publish of ${messageId} failed: ${describeError(err)}`)
        },
      )
    }
    await publisher.stop() // waits for the outstanding confirms
    await waitUntil(
      () => interrupt.signal !== undefined || tally.done(),
      () => tally.received + tally.acked,
      15_000,
      status,
    )
    tally.finished = tally.done()
  } finally {
    status.finish()
    interrupt.dispose()
    await forwarding.stop()
    await forwarder.stop()
    await draining.stop()
    await publisher.stop()
    await Promise.all([publishing.close(), consuming.close()])
    deleted = await deleteQueues(admin, [source, sink])
  }
  const interrupted = interrupt.signal !== undefined
  const ok = summary(tally, interrupted, s.quiet === true) && deleted
  return ok ? ExitCode.OK : interrupted ? ExitCode.INTERRUPTED : ExitCode.FAILED
}

/** Deletes the demo's queues; a failure is reported, not thrown, so it hides no earlier error. */
async function deleteQueues(admin: Connection, queues: string[]): Promise<boolean> {
  try {
    for (const queue of queues) await admin.deleteQueue(queue)
    return true
  } catch (err) {
    console.error(`could not delete the demo's queues (unused, they expire in 10 min): ${describeError(err)}`)
    return false
  } finally {
    await admin.close()
  }
}

function messageIdOf(message: Message): { messageId?: string } {
  const id = message.properties.messageId as string | undefined
  return id === undefined ? {} : { messageId: id }
}

/** Resolves once `done()` holds, or when `progress()` has not moved for `stallMs`. */
async function waitUntil(
  done: () => boolean,
  progress: () => number,
  stallMs: number,
  status: StatusLine,
): Promise<void> {
  let last = progress()
  let lastMoved = performance.now()
  while (!done()) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const now = progress()
    if (now !== last) {
      last = now
      lastMoved = performance.now()
    } else if (performance.now() - lastMoved > stallMs) {
      status.warn(`no progress for ${stallMs / 1000} s; giving up`)
      return
    }
  }
}
