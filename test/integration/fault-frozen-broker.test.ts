// A frozen broker. The private node is stopped with SIGSTOP for 3× the
// heartbeat (2 s → 6 s) in the middle of a steady publish and consume, then continued (SIGCONT).
// Its TCP connections stay open but nothing answers: only heartbeats can tell. The client must
// notice within 3× the heartbeat, every send must be confirmed by its deadline (those in doubt at
// the drop are republished), duplicates stay within what was in flight when the connections dropped,
// and both connections, the publisher and the consumer must come back on their own. While the node is
// frozen the kernel still accepts TCP connections for it, so a reconnect attempt hangs in the AMQP
// handshake until `connectionTimeout`: a short one keeps the recovery after the thaw bounded.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type LapinError, Publisher } from 'lapinmq'
import { connectionPair, usePrivateBroker, watchConnection } from '../helpers/fault-setup.ts'
import {
  assertEveryConfirmed,
  assertSettledByDeadline,
  drainPrivateQueue,
  eventually,
  inFlightAt,
  inOrder,
  ms,
  nextDrop,
  peakUntil,
  recordingTask,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

const heartbeat = 2 // seconds
const frozenMs = 3 * heartbeat * 1000
const connectionTimeout = 3_000
const recovery = { initialDelay: 100, maxDelay: 1_000 }
const confirmTimeout = 20_000
/** Time a send may take past its deadline to settle (the expiry timer, a busy event loop). */
const slack = 1_000
const maxInFlight = 500
const concurrency = 5

test('SIGSTOP for 3× the heartbeat: noticed within 3× heartbeat, nothing hangs, everything recovers', async () => {
  const queue = 'fault-frozen-broker'
  const ledger = new Ledger()
  const { pubConnection, conConnection, pubStates, conStates, errors } = connectionPair(
    { url: node.broker.url, heartbeat, connectionTimeout, recovery },
    { pub: 'fault-frozen-pub', con: 'fault-frozen-con' },
  )
  const pubWatch = watchConnection(pubConnection)
  const conWatch = watchConnection(conConnection)
  const failedAttempts = { pub: 0, con: 0 }
  pubConnection.on('reconnecting', () => failedAttempts.pub++)
  conConnection.on('reconnecting', () => failedAttempts.con++)
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout, maxInFlight })
  const delivered = new Set<string>()
  const deliveredAt: number[] = []
  const record = recordingTask(ledger, queue, delivered)
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: (message) => {
      deliveredAt.push(performance.now())
      return record(message)
    },
    concurrency,
    connection: conConnection,
  })
  consumer.on('error', (e) => errors.push(e))
  const traffic = new Traffic(ledger, publisher, queue)
  const started = performance.now()
  try {
    await consumer.start()
    await publisher.start()

    // 50 sends a second from now until 3 s after the recovery.
    const publishing = new AbortController()
    const steady = traffic.paced(10_000, 200_000, publishing.signal)
    await sleep(3_000)
    const before = traffic.records.length

    const pubDrop = nextDrop(pubConnection)
    const unsettledPeak = peakUntil(() => consumer.unsettled, nextDrop(conConnection))
    const frozenAt = performance.now()
    await node.broker.freeze()
    await sleep(frozenMs - (performance.now() - frozenAt))
    const thawedAt = performance.now()
    await node.broker.thaw()
    const answeringAt = performance.now()

    const back = await eventually(
      () => pubConnection.state === 'open' && conConnection.state === 'open',
      connectionTimeout + recovery.maxDelay + 10_000,
    )
    const recoveredAt = performance.now()
    assert.ok(back, `not open again: publishing ${pubConnection.state}, consuming ${conConnection.state}`)

    // The consumer receives again: messages sent after the recovery are delivered.
    await sleep(3_000)
    publishing.abort()
    await steady
    const lastSent = performance.now()

    // Every send settles by its deadline (hung = 0).
    await assertSettledByDeadline(
      traffic,
      confirmTimeout + slack - (performance.now() - lastSent),
      confirmTimeout + slack,
    )
    assertEveryConfirmed(traffic)
    const slowest = Math.max(...traffic.records.map((r) => (r.settled ?? 0) - r.started))
    // What the drop can make arrive twice: the sends unsettled when the publishing connection
    // dropped (republished) and the deliveries unsettled when the consuming one did (redelivered).
    const sendsInFlight = inFlightAt(traffic, await pubDrop)
    const unsettled = await unsettledPeak

    // At the broker, as before the freeze: one connection each, one channel each, one consumer.
    let atBroker = ''
    const resourcesBack = await eventually(async () => {
      const connections = (await node.broker.listConnections()).filter((c) =>
        c.name.startsWith('fault-frozen-'),
      )
      const consumers = (await node.broker.listConsumers()).filter((c) => c.queue === queue)
      atBroker = `connections ${connections.map((c) => `${c.name} (${c.channels} channel)`).join(', ')}; consumers ${consumers.length}`
      return connections.length === 2 && connections.every((c) => c.channels === 1) && consumers.length === 1
    }, 15_000)

    // Everything confirmed reaches the consumer (it is fast), then the rest of the queue is drained.
    const confirmed = traffic.confirmedIds
    await eventually(() => confirmed.every((id) => delivered.has(id)), 15_000)
    await consumer.stop({ timeout: 10_000 })
    await publisher.stop({ timeout: 5_000 })
    ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))

    const detectedPub = pubWatch.disconnects.find((d) => d.at >= frozenAt)
    const detectedCon = conWatch.disconnects.find((d) => d.at >= frozenAt)
    const reconnectedPub = pubWatch.connects.find((t) => t >= thawedAt)
    const reconnectedCon = conWatch.connects.find((t) => t >= thawedAt)
    const deliveredAfter = deliveredAt.filter((t) => t > recoveredAt).length
    process.stderr.write(
      [
        '',
        `frozen broker: heartbeat ${heartbeat} s, frozen ${frozenMs} ms, connectionTimeout ${connectionTimeout} ms`,
        `  noticed after the freeze: publishing ${ms(detectedPub?.at, frozenAt)} (${detectedPub?.error?.message ?? '-'}), ` +
          `consuming ${ms(detectedCon?.at, frozenAt)} (${detectedCon?.error?.message ?? '-'})`,
        `  reconnected after SIGCONT: publishing ${ms(reconnectedPub, thawedAt)}, consuming ${ms(reconnectedCon, thawedAt)} ` +
          `(node answered AMQP ${ms(answeringAt, thawedAt)} after SIGCONT; connect attempts failed before: ` +
          `publishing ${failedAttempts.pub}, consuming ${failedAttempts.con})`,
        `  sends: ${before} before the freeze, ${traffic.records.length} in all; slowest settled after ${Math.round(slowest)} ms; ` +
          `failed ${traffic.failed.length} (${[...new Set(traffic.failed.map((r) => (r.error as LapinError).code))].join(', ') || '-'})`,
        `  deliveries after the recovery: ${deliveredAfter}; at the broker after it: ${atBroker}`,
        `  in flight at the drop: ${sendsInFlight} sends, ${unsettled} deliveries`,
        `  states: publishing ${pubStates.map((s) => s.state).join(' → ')}; consuming ${conStates.map((s) => s.state).join(' → ')}`,
        `  test took ${Math.round(performance.now() - started)} ms`,
      ].join('\n'),
    )
    ledger.print(`frozen broker (SIGSTOP ${frozenMs} ms, heartbeat ${heartbeat} s)`)
    ledger.assertSound({ maxDuplicated: sendsInFlight + unsettled })

    // Noticed within 3× the heartbeat (amqplib declares the peer dead after two silent intervals,
    // checked once an interval: 2 to 3 intervals), plus a little for timers.
    const limit = 3 * heartbeat * 1000 + 750
    assert.ok(
      detectedPub && detectedPub.at - frozenAt <= limit,
      `publishing connection noticed: ${ms(detectedPub?.at, frozenAt)}`,
    )
    assert.ok(
      detectedCon && detectedCon.at - frozenAt <= limit,
      `consuming connection noticed: ${ms(detectedCon?.at, frozenAt)}`,
    )
    // Back in bounded time: an attempt hanging in the handshake at SIGCONT either completes or
    // times out (connectionTimeout), then the next one follows within the capped backoff.
    const bound = connectionTimeout + recovery.maxDelay + 2_000
    assert.ok(
      reconnectedPub && reconnectedPub - thawedAt <= bound,
      `publishing reconnected: ${ms(reconnectedPub, thawedAt)}`,
    )
    assert.ok(
      reconnectedCon && reconnectedCon - thawedAt <= bound,
      `consuming reconnected: ${ms(reconnectedCon, thawedAt)}`,
    )
    assert.ok(
      inOrder(
        pubStates.map((s) => s.state),
        ['open', 'reconnecting', 'open'],
      ),
      'publishing states',
    )
    assert.ok(
      inOrder(
        conStates.map((s) => s.state),
        ['open', 'reconnecting', 'open'],
      ),
      'consuming states',
    )
    assert.ok(deliveredAfter > 0, 'the consumer received nothing after the recovery')
    assert.ok(resourcesBack, `at the broker after the recovery: ${atBroker}`)
    assert.ok(ledger.report().confirmed > before, 'nothing sent after the freeze was confirmed')
    assert.deepEqual(
      errors.map((e) => e.code),
      [],
      'no error event: recovery never gave up',
    )
  } finally {
    await consumer.stop({ timeout: 1_000 }).catch(() => undefined)
    await publisher.stop({ timeout: 1_000 }).catch(() => undefined)
    await pubConnection.close().catch(() => undefined)
    await conConnection.close().catch(() => undefined)
  }
})
