// A frozen cluster node (one LocalCluster for this file). The consuming connection is on node 0,
// the publishing one on node 2, the quorum queue's leader on node 2. node 0 is stopped with SIGSTOP
// for 3× the heartbeat (2 s → 6 s) while messages flow, then continued: its TCP connections stay
// open but nothing answers, so only heartbeats can tell. The consumer's connection must see it
// within 2 heartbeats ('disconnected'), move to another node and consume there; the messages it
// held are redelivered, no more than its prefetch; nothing is lost, unexpected or hung; the queue
// ends with one consumer.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type LapinError, Publisher } from 'lapinmq'
import { useLocalCluster } from '../helpers/cluster.ts'
import {
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  nextDrop,
  peakUntil,
  recordingTask,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import type { PrivateBroker } from '../helpers/private-broker.ts'

const use = useLocalCluster()

const heartbeat = 2 // seconds
const frozenMs = 3 * heartbeat * 1000
const prefetch = 20
const concurrency = 5
/** The consumer's work per message: 5 tasks of 60 ms take about 80 a second, fewer than are sent, so its prefetch stays full. */
const workMs = 60

test('SIGSTOP of the consumer’s node for 3× the heartbeat: seen within 2 heartbeats, the consumer moves to another node, redeliveries within the prefetch', async () => {
  const { cluster } = use
  const started = performance.now()
  const [n0, n1, n2] = cluster.nodes as [PrivateBroker, PrivateBroker, PrivateBroker]
  const index = (node: PrivateBroker): number => cluster.nodes.indexOf(node)
  const queue = 'cluster.frozen'
  await declarePrivateQueue(n2.url, queue, { 'x-queue-type': 'quorum' })
  const leader = index(await cluster.leaderOf(queue))

  const ledger = new Ledger()
  const pubConnection = new Connection({
    urls: [n2.url, n1.url],
    urlOrder: 'given',
    heartbeat,
    name: 'fz-pub',
  })
  // A reconnect attempt to the frozen node hangs in the AMQP handshake until connectionTimeout.
  const conConnection = new Connection({
    urls: [n0.url, n1.url, n2.url],
    urlOrder: 'given',
    heartbeat,
    connectionTimeout: 3_000,
    recovery: { initialDelay: 100, maxDelay: 1_000 },
    name: 'fz-con',
  })
  const errors: LapinError[] = []
  const conConnected: { at: number; url: string }[] = []
  const conAttempts: { at: number; code: string }[] = []
  pubConnection.on('error', (e) => errors.push(e))
  conConnection.on('error', (e) => errors.push(e))
  conConnection.on('connected', ({ url }) => conConnected.push({ at: performance.now(), url }))
  conConnection.on('reconnecting', ({ error }) =>
    conAttempts.push({ at: performance.now(), code: error.code }),
  )
  let pubDrops = 0
  pubConnection.on('disconnected', () => pubDrops++)

  const publisher = new Publisher({ kind: 'async', connection: pubConnection, maxInFlight: 200 })
  const delivered = new Set<string>()
  const record = recordingTask(ledger, queue, delivered, () => workMs)
  const deliveries: { at: number; redelivered: boolean }[] = []
  const consumer = new Consumer({
    queueName: queue,
    declareQueue: false,
    concurrency,
    prefetch,
    connection: conConnection,
    taskFunction: (message) => {
      deliveries.push({ at: performance.now(), redelivered: message.redelivered })
      return record(message)
    },
  })
  consumer.on('error', (e) => errors.push(e))
  const traffic = new Traffic(ledger, publisher, queue, 'fz')
  const nodeOfUrl = (url: string | undefined): number =>
    cluster.nodes.findIndex((n) => url?.includes(`:${n.port}/`))

  try {
    await consumer.start()
    await publisher.start()
    assert.equal(index(await cluster.nodeOfConnection('fz-con')), 0, 'the consumer starts on node 0')
    assert.equal(index(await cluster.nodeOfConnection('fz-pub')), 2, 'the publisher starts on node 2')

    // 100 sends a second until stopped.
    const publishing = new AbortController()
    const steady = traffic.paced(100_000, 1_000_000, publishing.signal)
    await sleep(3_000)

    const dropped = nextDrop(conConnection)
    const unsettledPeak = peakUntil(() => consumer.unsettled, dropped)
    const frozenAt = performance.now()
    await n0.freeze()
    const dropAt = await Promise.race([dropped, sleep(frozenMs + 5_000).then(() => undefined)])
    const inFlight = dropAt === undefined ? -1 : await unsettledPeak
    const thawWait = frozenMs - (performance.now() - frozenAt)
    if (thawWait > 0) await sleep(thawWait)
    const thawedAt = performance.now()
    await n0.thaw()

    const movedTo = await cluster.waitConnectionOn('fz-con', () => true, 30_000)
    const reconnect = conConnected.find((c) => c.at > frozenAt)
    const firstDeliveryAfter = deliveries.find((d) => reconnect !== undefined && d.at > reconnect.at)?.at
    // Messages keep flowing through the new node for 3 s, then the publisher stops.
    await sleep(3_000)
    publishing.abort()
    await steady
    const hung = await traffic.settled(35_000)
    const took = await eventually(async () => {
      if (!traffic.confirmedIds.every((id) => delivered.has(id))) return false
      const { ready, unacked } = await cluster.queueMessages(queue)
      return ready === 0 && unacked === 0
    }, 60_000)
    const consumers = await cluster.consumerCount(queue)
    await consumer.stop()
    await publisher.stop()
    ledger.finalContents(queue, await drainPrivateQueue(n2.url, queue))

    const afterDrop = deliveries.filter((d) => dropAt !== undefined && d.at > dropAt)
    const redelivered = afterDrop.filter((d) => d.redelivered).length
    const report = ledger.print(`cluster: SIGSTOP of the consumer's node for ${frozenMs} ms`)
    const t = (at: number | undefined, from: number): string =>
      at === undefined ? 'never' : `${Math.round(at - from)} ms`
    process.stderr.write(
      `  quorum leader node ${leader}; heartbeat ${heartbeat} s; frozen ${Math.round(thawedAt - frozenAt)} ms\n` +
        `  drop seen ${t(dropAt, frozenAt)} after SIGSTOP (${dropAt === undefined ? '?' : ((dropAt - frozenAt) / 1000 / heartbeat).toFixed(2)} heartbeats); ` +
        `reconnected ${t(reconnect?.at, frozenAt)} after SIGSTOP (${t(reconnect?.at, thawedAt)} after SIGCONT) on node ${nodeOfUrl(reconnect?.url)}; ` +
        `first delivery there ${t(firstDeliveryAfter, frozenAt)} after SIGSTOP\n` +
        `  failed reconnect attempts: ${conAttempts.map((a) => `${a.code}@${t(a.at, frozenAt)}`).join(', ') || 'none'}\n` +
        `  unsettled at the drop ${inFlight} (prefetch ${prefetch}); redelivered after it ${redelivered}; ` +
        `sends ${traffic.records.length}; consumers at the end ${consumers}; publisher drops ${pubDrops}; ` +
        `test ${Math.round(performance.now() - started)} ms (cluster start ${use.startMs} ms)\n`,
    )

    assert.ok(dropAt !== undefined, 'the consumer connection saw the node freeze')
    assert.notEqual(index(movedTo), 0, 'the consumer connection moved off the frozen node')
    assert.notEqual(nodeOfUrl(reconnect?.url), 0, 'its first reconnect was to another node')
    assert.ok(firstDeliveryAfter !== undefined, 'the consumer got messages on its new node')
    assert.deepEqual(
      hung.map((r) => r.id),
      [],
      'every send settled',
    )
    assert.ok(took, `the consumer took every confirmed message (${delivered.size} delivered)`)
    assert.ok(redelivered <= prefetch, `redelivered ${redelivered}, more than the prefetch ${prefetch}`)
    ledger.assertSound({ maxDuplicated: prefetch })
    assert.equal(
      report.outcomes.confirmed,
      traffic.records.length,
      'every send confirmed (the publisher’s node never froze)',
    )
    assert.equal(consumers, 1, 'one consumer on the queue')
    assert.equal(pubDrops, 0, 'the publishing connection, on node 2, never dropped')
    assert.deepEqual(errors, [], 'no connection gave up')
    // Last, so that everything above is checked first: amqplib, which runs the heartbeats, checks
    // for received bytes once per heartbeat and gives up after two checks found none, so a silence
    // is seen 2 to 3 heartbeats after it began (5.1 s here with 2 s).
    assert.ok(
      dropAt - frozenAt <= 2 * heartbeat * 1000,
      `the freeze was seen ${Math.round(dropAt - frozenAt)} ms after SIGSTOP: more than 2 heartbeats (${2 * heartbeat * 1000} ms)`,
    )
  } finally {
    await Promise.allSettled([consumer.stop(), publisher.stop()])
    await Promise.allSettled([pubConnection.close(), conConnection.close()])
  }
})
