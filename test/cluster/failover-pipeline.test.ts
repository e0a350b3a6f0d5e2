// lapinmq on a real three-node RabbitMQ cluster (one LocalCluster for this file).
//
// 1. Connections given the same `urls` spread over every node: 20 connections, each node gets at
//    least 3 of them.
// 2. A confirm-tied pipeline A → B on quorum queues, 10,000 persistent messages. The forwarding
//    (publishing) connection starts on node 0, the consuming one on node 1 (`urlOrder: 'given'`);
//    A's leader is on node 1 and B's on node 0, so each kill also takes a queue's leader. node 0 is
//    killed with kill -9 and restarted, then node 1 is killed: both connections must end on
//    surviving nodes, each queue with exactly one consumer, nothing lost, unexpected or hung, no A
//    ack before its B confirm, and duplicates within what each kill found in flight (at most the
//    forwarder's window for the first kill, A's and B's prefetch for the second).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Connection, type LapinError } from 'lapinmq'
import { useLocalCluster } from '../helpers/cluster.ts'
import { ConfirmTiedPipeline } from '../helpers/cluster-pipeline.ts'
import { declarePrivateQueue, eventually, nextDrop, peakUntil } from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import type { PrivateBroker } from '../helpers/private-broker.ts'

const use = useLocalCluster()
const fileStarted = performance.now()

test('20 connections given the same urls spread over the three nodes: each gets at least 3', async () => {
  const { cluster } = use
  const connections = Array.from(
    { length: 20 },
    (_, i) => new Connection({ urls: cluster.urls, name: `spread-${i}` }),
  )
  try {
    await Promise.all(connections.map((c) => c.connect()))
    const nodes = await cluster.nodesOfConnections(/^spread-\d+$/)
    assert.equal(nodes.length, 20, 'every connection is listed by the cluster')
    const perNode = cluster.nodes.map((n) => nodes.filter((m) => m === n).length)
    process.stderr.write(`  20 connections per node: ${perNode.join(', ')}\n`)
    for (const [i, count] of perNode.entries()) {
      assert.ok(count >= 3, `node ${i} has ${count} of the 20 connections (${perNode.join(', ')})`)
    }
  } finally {
    await Promise.all(connections.map((c) => c.close()))
  }
})

const total = 10_000
const concurrency = 20
const prefetch = 100
/** The forwarder's window: never more B publishes unconfirmed than this. */
const forwardWindow = 100
/** The A task's work in ms; while a fault is being injected it slows to `slowMs`, so each kill finds the stream flowing. */
const workMs = 5
const slowMs = 400
/** A messages acked (forwarded and confirmed) before each kill. */
const killPoints = { publish: 2_000, consume: 5_500 }
/** At most what can arrive twice in B: the forwarder's window at the first kill, A's and B's prefetch at the second. */
const staticDuplicateBound = forwardWindow + 2 * prefetch

interface FaultRecord {
  what: string
  node: number
  at: number
  inFlight: number
  drop?: number | undefined
  connected?: number | undefined
  connectedUrl?: string | undefined
  firstProgress?: number | undefined
  ackedBefore: number
  deliveredBBefore: number
}

test('pipeline A → B on quorum queues, 10,000 messages: kill -9 the publishing node, restart it, kill -9 the consuming node', async () => {
  const { cluster } = use
  const started = performance.now()
  const [n0, n1, n2] = cluster.nodes as [PrivateBroker, PrivateBroker, PrivateBroker]
  const index = (node: PrivateBroker): number => cluster.nodes.indexOf(node)
  const nodeOfUrl = (url: string | undefined): number =>
    cluster.nodes.findIndex((n) => url?.includes(`:${n.port}/`))
  const queueA = 'cluster.pipeline.A'
  const queueB = 'cluster.pipeline.B'
  // A quorum queue's leader goes where it is declared (queue_leader_locator client-local).
  await declarePrivateQueue(n1.url, queueA, { 'x-queue-type': 'quorum' })
  await declarePrivateQueue(n0.url, queueB, { 'x-queue-type': 'quorum' })
  const leadersAtStart = [index(await cluster.leaderOf(queueA)), index(await cluster.leaderOf(queueB))]

  const ledger = new Ledger()
  // The source only fills A: on node 2, which is never faulted.
  const sourceConnection = new Connection({ urls: [n2.url], name: 'cl-source' })
  // node 0 first; after it, node 2 (so the second kill, of node 1, leaves it alone).
  const publishConnection = new Connection({
    urls: [n0.url, n2.url, n1.url],
    urlOrder: 'given',
    name: 'cl-publish',
    recovery: { initialDelay: 100, maxDelay: 2_000 },
  })
  // node 1 first; after it, node 0 (restarted by then).
  const consumeConnection = new Connection({
    urls: [n1.url, n0.url, n2.url],
    urlOrder: 'given',
    name: 'cl-consume',
    recovery: { initialDelay: 100, maxDelay: 2_000 },
  })
  const errors: LapinError[] = []
  const connected: { name: string; at: number; url: string }[] = []
  for (const c of [sourceConnection, publishConnection, consumeConnection]) {
    c.on('error', (e) => errors.push(e))
    c.on('connected', ({ url }) => connected.push({ name: c.name, at: performance.now(), url }))
  }
  const disconnects = { source: 0, publish: 0, consume: 0 }
  sourceConnection.on('disconnected', () => disconnects.source++)
  publishConnection.on('disconnected', () => disconnects.publish++)
  consumeConnection.on('disconnected', () => disconnects.consume++)

  const pipeline = new ConfirmTiedPipeline({
    ledger,
    queueA,
    queueB,
    total,
    source: sourceConnection,
    forward: publishConnection,
    consume: consumeConnection,
    concurrency,
    prefetch,
    forwardWindow,
    workMs,
    slowMs,
  })
  const { forwarder, consumerA, consumerB, forwardConfirmedAt, deliveryAAt, deliveredB } = pipeline

  const faults: FaultRecord[] = []
  try {
    await pipeline.start()
    const placedAtStart = [
      index(await cluster.nodeOfConnection('cl-publish')),
      index(await cluster.nodeOfConnection('cl-consume')),
      index(await cluster.nodeOfConnection('cl-source')),
    ]
    assert.deepEqual(placedAtStart, [0, 1, 2], 'publish on node 0, consume on node 1, source on node 2')

    const sourceDone = pipeline.feed()

    /** kill -9 `node` once `acked` reaches `point`; records the drop, the reconnect and the first progress after it. */
    const kill = async (
      what: 'publish' | 'consume',
      node: PrivateBroker,
      point: number,
    ): Promise<FaultRecord> => {
      assert.ok(
        await eventually(() => pipeline.acked >= point, 120_000),
        `the pipeline reached ${point} acks`,
      )
      pipeline.slow = true
      const connection = what === 'publish' ? publishConnection : consumeConnection
      const dropped = nextDrop(connection)
      const inFlight = peakUntil(
        what === 'publish' ? () => forwarder.unconfirmed : () => consumerA.unsettled + consumerB.unsettled,
        dropped,
      )
      const record: FaultRecord = {
        what,
        node: index(node),
        at: performance.now(),
        inFlight: 0,
        ackedBefore: pipeline.acked,
        deliveredBBefore: deliveredB.size,
      }
      await node.kill9()
      record.drop = await dropped
      record.inFlight = await inFlight
      const name = what === 'publish' ? 'cl-publish' : 'cl-consume'
      await cluster.waitConnectionOn(name, (n) => n !== node, 60_000)
      const reconnect = connected.find((c) => c.name === name && c.at > record.at)
      record.connected = reconnect?.at
      record.connectedUrl = reconnect?.url
      faults.push(record)
      return record
    }

    // Fault 1: the publishing connection's node (B's leader). The first confirm after the
    // reconnect comes from a channel on another node; a new channel's publishes to a quorum queue
    // whose leader just died can be nacked until that node is back, so it may only come after the
    // restart.
    const first = await kill('publish', n0, killPoints.publish)
    const confirmAfter = (from: number): number | undefined => forwardConfirmedAt.find((t) => t > from)
    await eventually(() => confirmAfter(first.connected ?? first.at) !== undefined, 5_000)
    const nackedBeforeRestart = pipeline.forwardFailures.get('PUBLISH_NACKED') ?? 0
    const restartAt = performance.now()
    await n0.restart()
    await cluster.waitRunning(3)
    const restartMs = Math.round(performance.now() - restartAt)
    await eventually(() => confirmAfter(first.connected ?? first.at) !== undefined, 30_000)
    first.firstProgress = confirmAfter(first.connected ?? first.at)
    // Fault 2: the consuming connection's node (A's leader, unless an election moved it).
    const leadersBetween = [index(await cluster.leaderOf(queueA)), index(await cluster.leaderOf(queueB))]
    pipeline.slow = false

    const second = await kill('consume', n1, killPoints.consume)
    const deliveryAfter = (from: number): number | undefined => deliveryAAt.find((t) => t > from)
    await eventually(() => deliveryAfter(second.connected ?? second.at) !== undefined, 30_000)
    second.firstProgress = deliveryAfter(second.connected ?? second.at)
    pipeline.slow = false
    await sourceDone

    const drained = await pipeline.drained(90_000)
    const settledMs = Math.round(performance.now() - started)

    // Where everything ended, as the cluster sees it, before anything stops.
    const publishNode = index(await cluster.nodeOfConnection('cl-publish'))
    const consumeNode = index(await cluster.nodeOfConnection('cl-consume'))
    // While node 1 is down, its dead channel's consumer can still be listed: a quorum queue keeps
    // a consumer of an unreachable node (suspected down) until the node is back. Count again once
    // node 1 has been restarted and rejoined.
    const consumersWhileDown = [await cluster.consumerCount(queueA), await cluster.consumerCount(queueB)]
    await n1.restart()
    await cluster.waitRunning(3)
    const [consumersA, consumersB] = [
      await cluster.consumerCount(queueA),
      await cluster.consumerCount(queueB),
    ] as [number, number]
    const leadersAtEnd = [index(await cluster.leaderOf(queueA)), index(await cluster.leaderOf(queueB))]
    const queueAState = await cluster.queueMessages(queueA)

    await pipeline.stop()
    const { leftA, leftB } = await pipeline.drainQueues(n2.url)

    const report = ledger.print(`cluster pipeline A → B, ${total} messages, kill -9 of node 0 then node 1`)
    const measuredBound = faults.reduce((sum, f) => sum + f.inFlight, 0)
    const t = (at: number | undefined, from: number): string =>
      at === undefined ? 'never' : `${Math.round(at - from)} ms`
    process.stderr.write(
      `${faults
        .map(
          (f) =>
            `  kill -9 node ${f.node} (${f.what} connection) at ${Math.round(f.at - started)} ms, ${f.ackedBefore} acked, ` +
            `${f.inFlight} in flight: drop seen ${t(f.drop, f.at)}, reconnected ${t(f.connected, f.at)} ` +
            `(node ${nodeOfUrl(f.connectedUrl)}), first ${f.what === 'publish' ? 'confirm' : 'A delivery'} after the reconnect ${t(f.firstProgress, f.at)}`,
        )
        .join('\n')}\n` +
        `  node 0 restart ${restartMs} ms (PUBLISH_NACKED before it ${nackedBeforeRestart}); consumers [A, B] while node 1 down ${consumersWhileDown}; leaders [A, B] at start ${leadersAtStart}, before kill 2 ${leadersBetween}, at end ${leadersAtEnd}\n` +
        `  forwards ${pipeline.forwards}, failed ${pipeline.describeFailures()}; ` +
        `disconnects ${JSON.stringify(disconnects)}; all settled ${settledMs} ms after the start\n` +
        `  duplicated ${report.duplicated}, bound: measured in flight ${measuredBound} (at most ${staticDuplicateBound} = forwarder window ${forwardWindow} + A and B prefetch ${prefetch} × 2)\n` +
        `  end: publish connection on node ${publishNode}, consume connection on node ${consumeNode}; consumers A ${consumersA}, B ${consumersB}\n`,
    )

    assert.ok(drained, `pipeline did not settle: ${pipeline.describe()}`)
    assert.ok(measuredBound <= staticDuplicateBound, `in flight at the kills: ${measuredBound}`)
    ledger.assertSound({ maxDuplicated: measuredBound })
    pipeline.assertComplete(report, leftA, leftB)
    assert.deepEqual(queueAState, { ready: 0, unacked: 0 })

    // Each kill hit a flowing pipeline and was seen by the connection on that node only.
    for (const f of faults) assert.ok(f.deliveredBBefore < total, `the ${f.what} kill hit a flowing pipeline`)
    assert.deepEqual(disconnects, { source: 0, publish: 1, consume: 1 })
    assert.deepEqual(errors, [], 'no connection gave up')
    // Both connections on surviving nodes: each moved off the node killed under it (node 1 was
    // still down when they were located).
    const [firstFault, secondFault] = faults as [FaultRecord, FaultRecord]
    assert.notEqual(nodeOfUrl(firstFault.connectedUrl), 0, 'the publish connection reconnected off node 0')
    assert.notEqual(nodeOfUrl(secondFault.connectedUrl), 1, 'the consume connection reconnected off node 1')
    assert.notEqual(publishNode, 1, 'the publish connection is not on the dead node 1')
    assert.notEqual(consumeNode, 1, 'the consume connection is not on the dead node 1')
    assert.deepEqual([consumersA, consumersB], [1, 1], 'one consumer per queue')
  } finally {
    await pipeline.stopQuietly()
    await Promise.allSettled([sourceConnection.close(), publishConnection.close(), consumeConnection.close()])
    process.stderr.write(
      `  file so far ${Math.round(performance.now() - fileStarted)} ms (cluster start ${use.startMs} ms)\n`,
    )
  }
})
