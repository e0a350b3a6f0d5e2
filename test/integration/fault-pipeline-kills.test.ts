// A pipeline A → task → B under connection kills, on a private node.
// 20,000 messages (unique messageIds) are published to A by a source publisher; a consumer on A
// forwards each to B through an async publisher whose ackCallback acks the A message (so an A ack
// only ever follows its B confirm); a consumer drains B. Meanwhile the broker force-closes (320)
// the consumer connection and the forwarding publisher's connection 5 times each, at random
// moments. Nothing may be lost or hang, no A ack may come before its B confirm, every id ends in B,
// the broker ends with exactly one consumer on A and one on B, and its log has no "unknown delivery
// tag" (a settle sent on the wrong channel) nor any PRECONDITION_FAILED.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import {
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  nextDrop,
  outcomeOf,
  peakUntil,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

const total = 20_000
/**
 * The A task's work, in ms (uniform in [min, max)): with `concurrency` tasks at once the pipeline
 * moves about concurrency / 30 ms ≈ 650 messages a second, slower than the source, so A keeps a
 * backlog, A's prefetch window stays full and every kill hits messages in flight (about 30 s).
 */
const workMs = { min: 20, max: 40 }
/** While the fault injector is this many A deliveries behind its next fault, the tasks slow down. */
const lead = 1_000
const faultsPerConnection = 5
const concurrency = 20
const prefetch = 100
/** The forwarder's window: never more B publishes unconfirmed than A messages unsettled. */
const forwardWindow = prefetch

/** mulberry32: a small seeded PRNG, so a failing run's fault moments can be replayed (FAULT_SEED). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('pipeline A → B: 20,000 messages, 5 kills of each connection: nothing lost, no early ack, every id in B', async () => {
  const started = performance.now()
  const seed = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31))
  const random = prng(seed)
  const queueA = 'pipeline.A'
  const queueB = 'pipeline.B'
  await declarePrivateQueue(node.broker.url, queueA)
  await declarePrivateQueue(node.broker.url, queueB)

  const ledger = new Ledger()
  const sourceConnection = new Connection({ url: node.broker.url, name: 'pipeline-source' })
  const consumeConnection = new Connection({ url: node.broker.url, name: 'pipeline-consume' })
  const publishConnection = new Connection({ url: node.broker.url, name: 'pipeline-publish' })
  const disconnects = { consume: 0, publish: 0, source: 0 }
  consumeConnection.on('disconnected', () => disconnects.consume++)
  publishConnection.on('disconnected', () => disconnects.publish++)
  sourceConnection.on('disconnected', () => disconnects.source++)
  const errors: LapinError[] = []
  for (const c of [sourceConnection, consumeConnection, publishConnection])
    c.on('error', (e) => errors.push(e))

  const source = new Publisher({ kind: 'async', connection: sourceConnection, maxInFlight: 500 })
  const forwarder = new Publisher({
    kind: 'async',
    connection: publishConnection,
    maxInFlight: forwardWindow,
  })

  // The faults: 5 of each kind in a random order, each once the A consumer has taken a random
  // number of deliveries (between 5% and 90% of the stream). rabbitmqctl is slow on a busy machine:
  // while the injector is more than `lead` deliveries behind, the tasks slow to a trickle instead of
  // finishing the stream, so every kill lands while messages flow through both connections.
  const kinds = [
    ...Array(faultsPerConnection).fill('consume'),
    ...Array(faultsPerConnection).fill('publish'),
  ] as ('consume' | 'publish')[]
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[kinds[i], kinds[j]] = [kinds[j] as 'consume' | 'publish', kinds[i] as 'consume' | 'publish']
  }
  const points = kinds.map(() => Math.floor(total * (0.05 + 0.85 * random()))).sort((a, b) => a - b)
  let injected = 0
  const injectorBehind = (): boolean =>
    injected < points.length && deliveriesA > (points[injected] as number) + lead

  // Deliveries taken from A (redeliveries included); forwards with no outcome yet (a hung callback
  // would stay here), and their failures.
  let deliveriesA = 0
  let forwardsPending = 0
  let forwards = 0
  const forwardFailures: string[] = []
  const consumerA = new Consumer({
    queueName: queueA,
    concurrency,
    prefetch,
    connection: consumeConnection,
    taskFunction: async (message) => {
      deliveriesA++
      const id = String(message.properties.messageId)
      await sleep(workMs.min + (workMs.max - workMs.min) * Math.random() + (injectorBehind() ? 200 : 0))
      await forwarder.waitForRoom()
      forwards++
      forwardsPending++
      void forwarder.sendMessageToQueue(queueB, message.body, {
        messageId: id,
        callbacks: {
          ackCallback: () => {
            forwardsPending--
            ledger.confirmedDownstream(id, queueB)
            message.ack()
            ledger.ackedSource(id)
          },
          nackCallback: (error) => {
            forwardsPending--
            forwardFailures.push(error.code)
            message.rejectRetry()
          },
        },
      })
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  const deliveredB = new Set<string>()
  const consumerB = new Consumer({
    queueName: queueB,
    concurrency,
    prefetch,
    connection: consumeConnection,
    taskFunction: (message) => {
      const id = String(message.properties.messageId)
      ledger.delivered(id, { redelivered: message.redelivered, queue: queueB })
      deliveredB.add(id)
      return MessageStatus.SUCCESS
    },
  })
  const consumerErrors: LapinError[] = []
  consumerA.on('error', (e) => consumerErrors.push(e))
  consumerB.on('error', (e) => consumerErrors.push(e))

  await Promise.all([source.start(), forwarder.start(), consumerA.start(), consumerB.start()])

  // The source fills A as fast as its window allows, waiting for room before each send.
  let sourceSettled = 0
  const sourceDone = (async () => {
    for (let i = 0; i < total; i++) {
      await source.waitForRoom()
      const id = `p-${i}`
      ledger.attempt(id)
      source.sendMessageToQueue(queueA, id, { messageId: id }).then(
        () => {
          sourceSettled++
          ledger.outcome(id, 'confirmed')
        },
        (err: unknown) => {
          sourceSettled++
          ledger.outcome(id, outcomeOf(err))
        },
      )
    }
  })()

  const faults: {
    kind: string
    at: number
    deliveriesA: number
    inFlight: number
    closed: number
    deliveredB: number
  }[] = []
  for (const [k, kind] of kinds.entries()) {
    assert.ok(
      await eventually(() => deliveriesA >= (points[k] as number), 120_000),
      'the pipeline reached the fault point',
    )
    const connection = kind === 'consume' ? consumeConnection : publishConnection
    assert.ok(await eventually(() => connection.state === 'open', 30_000), `${kind} connection open again`)
    const at = Math.round(performance.now() - started)
    const deliveriesBefore = deliveriesA
    // What a kill can make arrive twice in B, at its highest until the connection drops: A's and B's
    // unsettled deliveries (redelivered; A's are forwarded again), or the forwards awaiting their
    // confirm (republished).
    const inFlightPeak = peakUntil(
      kind === 'consume' ? () => consumerA.unsettled + consumerB.unsettled : () => forwarder.unconfirmed,
      nextDrop(connection),
    )
    const closed = await node.broker.closeConnections(
      kind === 'consume' ? /^pipeline-consume$/ : /^pipeline-publish$/,
    )
    injected++
    assert.ok(closed >= 1, `closeConnections(${kind}) closed ${closed} connections`)
    const inFlight = await inFlightPeak
    faults.push({ kind, at, deliveriesA: deliveriesBefore, inFlight, closed, deliveredB: deliveredB.size })
  }
  const faultsEnded = performance.now()
  await sourceDone

  // Recovery: every id through to B, every outcome known, nothing left unsettled.
  const drained = await eventually(
    () =>
      deliveredB.size === total &&
      sourceSettled === total &&
      forwardsPending === 0 &&
      consumerA.unsettled === 0 &&
      consumerA.running === 0 &&
      consumerB.unsettled === 0 &&
      consumerB.running === 0,
    60_000,
  )
  const settledMs = Math.round(performance.now() - started)
  const afterFaultsMs = Math.round(performance.now() - faultsEnded)

  // The broker's view before anything stops: one consumer on A, one on B, no settle on a wrong channel.
  const consumers = await node.broker.listConsumers()
  const connections = await node.broker.listConnections()
  const queueAState = await node.broker.queueMessages(queueA)
  const log = await node.broker.logText()

  const disconnectsDuringRun = { ...disconnects }
  await Promise.all([consumerA.stop(), consumerB.stop()])
  await Promise.all([source.stop(), forwarder.stop()])
  await Promise.all([sourceConnection.close(), consumeConnection.close(), publishConnection.close()])
  const leftA = await drainPrivateQueue(node.broker.url, queueA)
  const leftB = await drainPrivateQueue(node.broker.url, queueB)
  ledger.finalContents(queueA, leftA)
  ledger.finalContents(queueB, leftB)

  const report = ledger.print(
    `pipeline A → B, ${total} messages, ${kinds.length} connection kills (seed ${seed})`,
  )
  // Per kill of the consume connection, A's unacked messages are redelivered and forwarded again and
  // B's unacked deliveries are redelivered; per kill of the publish connection, its unconfirmed B
  // publishes are republished: at most what each kill found in flight arrives twice in B.
  const maxDuplicated = faults.reduce((sum, f) => sum + f.inFlight, 0)
  process.stderr.write(
    `  faults (kind@ms: connections closed, A deliveries before, in flight before, B delivered after): ${faults
      .map((f) => `${f.kind}@${f.at}:${f.closed}/${f.deliveriesA}/${f.inFlight}/${f.deliveredB}`)
      .join(' ')}\n` +
      `  disconnects seen: consume ${disconnectsDuringRun.consume}, publish ${disconnectsDuringRun.publish}, source ${disconnectsDuringRun.source}; ` +
      `forwards ${forwards} (failed ${forwardFailures.length}: ${[...new Set(forwardFailures)].join(',')}); ` +
      `stale settles A ${consumerA.staleSettles}, B ${consumerB.staleSettles}; duplicated bound ${maxDuplicated}\n` +
      `  all settled ${settledMs} ms after start (${afterFaultsMs} ms after the last fault); ` +
      `consumer errors ${consumerErrors.length}, connection errors ${errors.length}\n`,
  )

  assert.ok(
    drained,
    `pipeline did not settle: B ${deliveredB.size}/${total}, source settled ${sourceSettled}, forwards pending ${forwardsPending}, A unsettled ${consumerA.unsettled}, B unsettled ${consumerB.unsettled}`,
  )
  ledger.assertSound({ maxDuplicated })
  assert.equal(report.outcomes.confirmed, total, 'the source (never faulted) had every message confirmed')
  assert.equal(report.hung, 0)
  assert.equal(forwardsPending, 0, 'every forward got its callback')
  // Every id ends in B: delivered from it, or still in it after everything stopped.
  const inB = new Set([...deliveredB, ...leftB])
  const missing = Array.from({ length: total }, (_, i) => `p-${i}`).filter((id) => !inB.has(id))
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} ids never reached B`)
  assert.deepEqual(leftA, [], 'A is empty at the end')
  assert.deepEqual(queueAState, { ready: 0, unacked: 0 })
  assert.equal(report.ackedSource, total, 'every A message acked through its B confirm')

  // Each kill really happened and was seen by the client.
  assert.equal(faults.length, 2 * faultsPerConnection)
  assert.deepEqual(disconnectsDuringRun, {
    consume: faultsPerConnection,
    publish: faultsPerConnection,
    source: 0,
  })
  for (const f of faults)
    assert.ok(f.deliveredB < total, `the ${f.kind} kill at ${f.at} ms hit a flowing pipeline`)
  assert.deepEqual(errors, [], 'no connection gave up')

  // Exactly the configured consumers, on the recovered consume connection; one connection each.
  const summary = consumers.map((c) => `${c.queue}@${c.connectionName}`).sort()
  assert.deepEqual(summary, [`${queueA}@pipeline-consume`, `${queueB}@pipeline-consume`])
  for (const c of consumers) assert.equal(c.prefetch, prefetch)
  assert.deepEqual(connections.map((c) => c.name).sort(), [
    'pipeline-consume',
    'pipeline-publish',
    'pipeline-source',
  ])
  // RabbitMQ logs the reply name in lower case ("precondition_failed: ...").
  assert.doesNotMatch(log, /unknown delivery tag/i)
  assert.doesNotMatch(log, /precondition_failed/i)
})
