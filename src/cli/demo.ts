// `npm start`: lapinmq's main job end to end. Publishes N messages into a source queue; a consumer
// forwards each one to a sink queue and acks its source message only once the broker confirmed the
// forwarded copy; a second consumer drains the sink. Then it checks that nothing was lost or
// duplicated, and deletes both queues. A client of the public API only.
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Connection, Consumer, type Message, MessageStatus, Publisher, waitForSigterm } from '../index.ts'

const usage = `Usage: npm start -- [options]   (or: tsx src/cli/demo.ts [options])

  --count N          messages to send (env DEMO_COUNT; default 10000)
  --kind sync|async  publisher kind (env DEMO_KIND; default async)
                       async: the forwarder acks each source message from the confirm callback
                       sync:  the forwarder awaits each send, then returns SUCCESS
  --concurrency N    forwarding tasks at once (env DEMO_CONCURRENCY; default 10)
  --url URL          broker (env RABBITMQ_URL or RABBITMQ_HOST...; default localhost:5672 as guest)
  --help             show this help

Exits 0 when every confirmed message reached the sink exactly once.`

interface Settings {
  count: number
  kind: 'sync' | 'async'
  concurrency: number
  url: string | undefined
}

function settings(): Settings | undefined {
  const { values } = parseArgs({
    options: {
      count: { type: 'string' },
      kind: { type: 'string' },
      concurrency: { type: 'string' },
      url: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return undefined
  const env = process.env
  const kind = values.kind ?? env.DEMO_KIND ?? 'async'
  if (kind !== 'sync' && kind !== 'async')
    throw new TypeError(`--kind must be 'sync' or 'async', got '${kind}'`)
  return {
    count: positiveInt('--count', values.count ?? env.DEMO_COUNT ?? '10000'),
    kind,
    concurrency: positiveInt('--concurrency', values.concurrency ?? env.DEMO_CONCURRENCY ?? '10'),
    // RABBITMQ_URL needs no handling here: the default connections read it.
    url: values.url,
  }
}

function positiveInt(name: string, text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, got '${text}'`)
  return n
}

/** Counters shown in the progress lines and the summary. */
class Tally {
  published = 0
  confirmed = 0
  publishFailed = 0
  forwarded = 0
  acked = 0
  received = 0
  /** messageIds confirmed into the source queue. */
  readonly confirmedIds = new Set<string>()
  /** messageId -> times received from the sink. */
  readonly receivedIds = new Map<string, number>()
  readonly started = performance.now()
  #lastReceived = 0
  #lastAt = this.started

  get elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000
  }

  /** Every number, and the sink's rate since the previous line. */
  progressLine(): string {
    const now = performance.now()
    const rate = ((this.received - this.#lastReceived) * 1000) / Math.max(1, now - this.#lastAt)
    this.#lastReceived = this.received
    this.#lastAt = now
    return `progress: published ${this.published}, confirmed ${this.confirmed}, forwarded ${this.forwarded}, acked ${this.acked}, received ${this.received}, ${Math.round(rate)} msg/s`
  }

  lost(): number {
    let lost = 0
    for (const id of this.confirmedIds) if (!this.receivedIds.has(id)) lost++
    return lost
  }

  duplicated(): number {
    let duplicated = 0
    for (const times of this.receivedIds.values()) if (times > 1) duplicated++
    return duplicated
  }

  /** Every confirmed message received, and every source message acked. */
  done(): boolean {
    return this.receivedIds.size >= this.confirmed && this.acked >= this.confirmed
  }
}

async function demo(s: Settings): Promise<boolean> {
  const run = randomUUID().slice(0, 8)
  const source = `lapinmq-demo.source.${run}`
  const sink = `lapinmq-demo.sink.${run}`
  // With --url, explicit connections (one to publish, one to consume, as the shared ones are split);
  // otherwise the process-wide shared connections, configured from the environment.
  const publishing =
    s.url === undefined ? undefined : new Connection({ url: s.url, name: 'lapinmq-demo:publish' })
  const consuming =
    s.url === undefined ? undefined : new Connection({ url: s.url, name: 'lapinmq-demo:consume' })
  const on = <T extends object>(options: T, connection: Connection | undefined) =>
    connection ? { ...options, connection } : options
  // Only to delete the queues at the end: the API has no other admin step.
  const admin = new Connection(
    s.url === undefined ? { name: 'lapinmq-demo:admin' } : { url: s.url, name: 'lapinmq-demo:admin' },
  )
  console.log(
    `lapinmq demo: ${s.count} messages, kind ${s.kind}, concurrency ${s.concurrency}, broker ${admin.url}`,
  )
  console.log(`queues: ${source} -> ${sink}`)

  // A safety net for a demo killed before its cleanup: the broker deletes a queue unused for 10 min.
  const queueArgs = { 'x-expires': 10 * 60_000 }
  const tally = new Tally()
  // Ctrl-C (or SIGTERM) stops publishing and waiting; the cleanup below still runs.
  let interrupted = false
  waitForSigterm().then((signalled) => {
    interrupted = signalled
    if (signalled) console.error('interrupted: stopping and deleting the queues')
  })
  const publisher = new Publisher(on({ kind: s.kind }, publishing))
  const forwarder = new Publisher(on({ kind: s.kind }, publishing))

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
  const forwarding = new Consumer(
    on(
      {
        queueName: source,
        queueArgs,
        concurrency: s.concurrency,
        // With callbacks a task ends as soon as it has handed its message on, so the prefetch, not
        // the concurrency, bounds how many messages are being forwarded at once.
        prefetch: Math.max(s.concurrency, 100),
        taskFunction: s.kind === 'async' ? forwardTask : forwardAndWait,
      },
      consuming,
    ),
  )
  const draining = new Consumer(
    on(
      {
        queueName: sink,
        queueArgs,
        concurrency: 10,
        prefetch: 100,
        taskFunction: (message: Message) => {
          tally.received++
          const id = String(message.properties.messageId)
          tally.receivedIds.set(id, (tally.receivedIds.get(id) ?? 0) + 1)
          return MessageStatus.SUCCESS
        },
      },
      consuming,
    ),
  )

  const progress = setInterval(() => console.log(tally.progressLine()), 1000)
  let deleted = false
  try {
    // Consumers first: they declare the queues that the publishes are routed to.
    await draining.start()
    await forwarding.start()
    await forwarder.start()
    await publisher.start()
    for (let i = 0; i < s.count && !interrupted; i++) {
      const messageId = `${run}-${i}`
      await publisher.waitForRoom() // keeps unconfirmed messages, and memory, bounded
      tally.published++
      publisher.sendMessageToQueue(source, JSON.stringify({ n: i, at: Date.now() }), { messageId }).then(
        () => {
          tally.confirmed++
          tally.confirmedIds.add(messageId)
        },
        (err: { code?: string }) => {
          tally.publishFailed++
          console.error(`publish of ${messageId} failed: ${err.code ?? String(err)}`)
        },
      )
    }
    await publisher.stop() // waits for the outstanding confirms
    await waitUntil(
      () => interrupted || tally.done(),
      () => tally.received + tally.acked,
      15_000,
    )
  } finally {
    clearInterval(progress)
    console.log(tally.progressLine())
    await forwarding.stop()
    await forwarder.stop()
    await draining.stop()
    await publisher.stop()
    await Promise.all([publishing?.close(), consuming?.close()])
    deleted = await deleteQueues(admin, [source, sink])
  }
  return summary(tally, interrupted) && deleted
}

/** Deletes the demo's queues; a failure is reported, not thrown, so it hides no earlier error. */
async function deleteQueues(admin: Connection, queues: string[]): Promise<boolean> {
  try {
    for (const queue of queues) await admin.deleteQueue(queue)
    return true
  } catch (err) {
    const e = err as { code?: string; message?: string }
    console.error(
      `could not delete the demo's queues (unused, they expire in 10 min): ${e.code}: ${e.message}`,
    )
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
async function waitUntil(done: () => boolean, progress: () => number, stallMs: number): Promise<void> {
  let last = progress()
  let lastMoved = performance.now()
  while (!done()) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const now = progress()
    if (now !== last) {
      last = now
      lastMoved = performance.now()
    } else if (performance.now() - lastMoved > stallMs) {
      console.error(`no progress for ${stallMs / 1000} s; giving up`)
      return
    }
  }
}

/** Prints the summary; true when every confirmed message reached the sink exactly once. */
function summary(t: Tally, interrupted: boolean): boolean {
  const elapsed = t.elapsedSeconds
  const lost = t.lost()
  const duplicated = t.duplicated()
  console.log(
    [
      'summary:',
      `  published  ${t.published}`,
      `  confirmed  ${t.confirmed}${t.publishFailed ? ` (${t.publishFailed} failed)` : ''}`,
      `  forwarded  ${t.forwarded}`,
      `  acked      ${t.acked}`,
      `  received   ${t.received}`,
      `  lost       ${lost}`,
      `  duplicated ${duplicated}`,
      `  elapsed    ${elapsed.toFixed(2)} s`,
      `  rate       ${Math.round(t.received / elapsed)} msg/s`,
    ].join('\n'),
  )
  const ok =
    !interrupted &&
    lost === 0 &&
    duplicated === 0 &&
    t.confirmed === t.published &&
    t.received === t.confirmed &&
    t.acked === t.confirmed
  if (interrupted)
    console.log('INTERRUPTED: the counts are partial (unforwarded messages went with the queues)')
  else console.log(ok ? 'OK: every message arrived exactly once' : 'FAILED: counts do not match')
  return ok
}

/** Exit code: 0 when every message arrived exactly once, 1 when not, 2 for bad arguments. */
async function main(): Promise<number> {
  let options: Settings | undefined
  try {
    options = settings()
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage}`)
    return 2
  }
  if (options === undefined) {
    console.log(usage)
    return 0
  }
  try {
    return (await demo(options)) ? 0 : 1
  } catch (err) {
    const e = err as { code?: string; message?: string }
    console.error(`demo failed: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`)
    return 1
  }
}

main().then((code) => {
  process.exitCode = code
})
