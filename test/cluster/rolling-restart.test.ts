// A rolling restart of a three-node cluster (one LocalCluster for this file): each node in turn
// gets `rabbitmqctl stop_app`, 10 s down, `start_app`, while an async publisher sends 200
// persistent messages a second to a quorum queue and a consumer takes them, both connections given
// every node's URL. Every send must settle (confirmed, or failed with a typed error: a nack, a
// timeout, a closed connection), every confirmed message must be consumed, nothing may be lost,
// unexpected or hung, duplicates stay within what was in flight at each drop, and the queue ends
// with one consumer.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type LapinError, LapinError as LapinErrorClass, Publisher } from 'lapinmq'
import { useLocalCluster } from '../helpers/cluster.ts'
import {
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  inFlightAt,
  recordingTask,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import type { PrivateBroker } from '../helpers/private-broker.ts'

const use = useLocalCluster()

/** How long each node stays stopped (CLUSTER_ROLLING_PAUSE_MS overrides it for a local experiment). */
const pauseMs = Number(process.env.CLUSTER_ROLLING_PAUSE_MS ?? 10_000)
const confirmTimeout = 30_000
const maxInFlight = 200
const prefetch = 50
const rate = 200 // sends a second

test('rolling restart (stop_app, 10 s, start_app, one node at a time) under a continuous publisher and consumer: every send settled, every confirmed message consumed', async () => {
  const { cluster } = use
  const started = performance.now()
  const [n0] = cluster.nodes as [PrivateBroker, PrivateBroker, PrivateBroker]
  const index = (node: PrivateBroker): number => cluster.nodes.indexOf(node)
  const queue = 'cluster.rolling'
  await declarePrivateQueue(n0.url, queue, { 'x-queue-type': 'quorum' })

  const ledger = new Ledger()
  const recovery = { initialDelay: 100, maxDelay: 2_000 }
  const pubConnection = new Connection({ urls: cluster.urls, name: 'rr-pub', recovery })
  const conConnection = new Connection({ urls: cluster.urls, name: 'rr-con', recovery })
  const errors: LapinError[] = []
  const drops: { who: 'pub' | 'con'; at: number; inFlight: number }[] = []
  const connects: { who: 'pub' | 'con'; at: number; url: string }[] = []
  pubConnection.on('error', (e) => errors.push(e))
  conConnection.on('error', (e) => errors.push(e))
  pubConnection.on('connected', ({ url }) => connects.push({ who: 'pub', at: performance.now(), url }))
  conConnection.on('connected', ({ url }) => connects.push({ who: 'con', at: performance.now(), url }))

  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout, maxInFlight })
  const delivered = new Set<string>()
  const consumer = new Consumer({
    queueName: queue,
    declareQueue: false,
    concurrency: 10,
    prefetch,
    connection: conConnection,
    taskFunction: recordingTask(ledger, queue, delivered),
  })
  consumer.on('error', (e) => errors.push(e))
  const traffic = new Traffic(ledger, publisher, queue, 'rr')
  // The consumer's unsettled deliveries, sampled every few ms: what a drop can have redelivered.
  let unsettledPeak = 0
  const sampler = setInterval(() => {
    unsettledPeak = Math.max(unsettledPeak, consumer.unsettled)
  }, 2)
  pubConnection.on('disconnected', () => {
    const at = performance.now()
    drops.push({ who: 'pub', at, inFlight: inFlightAt(traffic, at) })
  })
  conConnection.on('disconnected', () => {
    drops.push({ who: 'con', at: performance.now(), inFlight: Math.max(unsettledPeak, consumer.unsettled) })
    unsettledPeak = 0
  })
  const nodeOfUrl = (url: string | undefined): number =>
    cluster.nodes.findIndex((n) => url?.includes(`:${n.port}/`))

  const steps: { node: number; stopAt: number; startAt: number; upAt: number; firstConfirm?: number }[] = []
  try {
    await consumer.start()
    await publisher.start()
    const placed = [
      index(await cluster.nodeOfConnection('rr-pub')),
      index(await cluster.nodeOfConnection('rr-con')),
    ]
    const publishing = new AbortController()
    const steady = traffic.paced(1_000_000, (1_000_000 / rate) * 1_000, publishing.signal)
    await sleep(2_000)

    for (const node of cluster.nodes) {
      const stopAt = performance.now()
      await node.stopApp()
      await sleep(pauseMs)
      const startAt = performance.now()
      await node.startApp()
      await cluster.waitRunning(3)
      steps.push({ node: index(node), stopAt, startAt, upAt: performance.now() })
      // Let the restarted member catch up before the next node goes.
      await sleep(2_000)
    }
    await sleep(2_000)
    publishing.abort()
    await steady
    const hung = await traffic.settled(confirmTimeout + 5_000)
    clearInterval(sampler)

    const took = await eventually(async () => {
      if (!traffic.confirmedIds.every((id) => delivered.has(id))) return false
      const { ready, unacked } = await cluster.queueMessages(queue)
      return ready === 0 && unacked === 0
    }, 60_000)
    const consumers = await cluster.consumerCount(queue)
    const ended = [
      index(await cluster.nodeOfConnection('rr-pub')),
      index(await cluster.nodeOfConnection('rr-con')),
    ]
    await consumer.stop()
    await publisher.stop()
    ledger.finalContents(queue, await drainPrivateQueue(n0.url, queue))

    // Settled sends by how they ended.
    const byCode = new Map<string, number>()
    for (const r of traffic.records) {
      if (r.settled === undefined) continue
      const code =
        r.error === undefined
          ? 'confirmed'
          : r.error instanceof LapinErrorClass
            ? r.error.code
            : `untyped: ${String(r.error)}`
      byCode.set(code, (byCode.get(code) ?? 0) + 1)
    }
    const report = ledger.print(`cluster rolling restart, ${pauseMs} ms down per node`)
    const bound = drops.reduce((sum, d) => sum + d.inFlight, 0)
    const t = (at: number | undefined, from: number): string =>
      at === undefined ? 'never' : `${Math.round(at - from)} ms`
    process.stderr.write(
      `  sends ${traffic.records.length}: ${[...byCode].map(([c, n]) => `${c} ${n}`).join(', ')}; still pending ${hung.length}\n` +
        `  connections at start: pub node ${placed[0]}, con node ${placed[1]}; at the end: pub node ${ended[0]}, con node ${ended[1]}\n` +
        `${steps
          .map((s) => {
            const stopDrops = drops.filter((d) => d.at >= s.stopAt && d.at < s.upAt)
            const back = connects.filter((c) => c.at >= s.stopAt && c.at < s.upAt + 2_000)
            const firstConfirm = traffic.records.find(
              (r) =>
                r.error === undefined &&
                r.settled !== undefined &&
                r.settled > s.stopAt &&
                r.started > s.stopAt,
            )?.settled
            return (
              `  node ${s.node}: stop_app → start_app ${t(s.startAt, s.stopAt)}, running again ${t(s.upAt, s.stopAt)}; ` +
              `drops ${stopDrops.map((d) => `${d.who} (${d.inFlight} in flight)`).join(', ') || 'none'}; ` +
              `reconnects ${back.map((c) => `${c.who}→node ${nodeOfUrl(c.url)} at ${t(c.at, s.stopAt)}`).join(', ') || 'none'}; ` +
              `first confirm of a send made after stop_app ${t(firstConfirm, s.stopAt)}`
            )
          })
          .join('\n')}\n` +
        `  duplicated ${report.duplicated} (bound: in flight at the drops ${bound}); consumers at the end ${consumers}; ` +
        `test ${Math.round(performance.now() - started)} ms (cluster start ${use.startMs} ms)\n`,
    )

    assert.deepEqual(
      hung.map((r) => r.id),
      [],
      'every send settled',
    )
    for (const r of traffic.failed) {
      assert.ok(
        r.error instanceof LapinErrorClass,
        `send ${r.id} failed with an untyped error: ${String(r.error)}`,
      )
    }
    assert.ok(took, `the consumer took every confirmed message (${delivered.size} delivered)`)
    ledger.assertSound({ maxDuplicated: bound })
    assert.ok(report.outcomes.confirmed > 0.9 * traffic.records.length, 'most sends confirmed')
    assert.equal(steps.length, 3, 'every node restarted')
    assert.ok(
      drops.some((d) => d.who === 'pub') && drops.some((d) => d.who === 'con'),
      'both connections were dropped',
    )
    assert.equal(consumers, 1, 'one consumer on the queue')
    assert.deepEqual(errors, [], 'no connection gave up')
  } finally {
    clearInterval(sampler)
    await Promise.allSettled([consumer.stop(), publisher.stop()])
    await Promise.allSettled([pubConnection.close(), conConnection.close()])
  }
})
