// A node of a 3-node cluster dies under publishers and consumers: what the caller sees. Sends to a
// quorum queue through a kill -9 of its leader's node and of the publisher's own node all confirm
// (a failover's nacks are sent again, not passed on); a refusal (a full reject-publish queue) still
// fails at once; sync and async sends in flight when the leader dies all settle, and consuming
// resumes from the new leader; a classic queue whose node is down is reported unavailable and
// consumed again once the node is back. One cluster for the whole file; every node runs again at
// the end of each test.
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Connection,
  Consumer,
  type LapinError,
  MessageStatus,
  Publisher,
  PublishNackedError,
  type QueueUnavailableInfo,
} from 'lapinmq'
import { LocalCluster } from '../helpers/cluster.ts'
import { drainPrivateQueue, Traffic } from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import type { PrivateBroker } from '../helpers/private-broker.ts'

let cluster: LocalCluster
const progress = (what: string): void => {
  if (process.env.CLUSTER_TEST_PROGRESS) process.stderr.write(`${new Date().toISOString()} ${what}\n`)
}
before(async () => {
  cluster = await LocalCluster.start()
  progress('cluster started')
})
after(() => cluster?.stop())

/** A connection to the cluster that starts at `first` and fails over to the others. */
function connectionTo(first: PrivateBroker, name: string, heartbeat = 5): Connection {
  const urls = [first.url, ...cluster.urls.filter((u) => u !== first.url)]
  const say = (level: string) => (o: unknown, m: string) =>
    progress(`${name} ${level} ${m} ${JSON.stringify(o)}`)
  const logger = process.env.CLUSTER_TEST_PROGRESS
    ? { debug: say('debug'), info: say('info'), warn: say('warn'), error: say('error') }
    : undefined
  const connection = new Connection({ urls, urlOrder: 'given', name, heartbeat, ...(logger && { logger }) })
  connection.on('error', () => {})
  return connection
}

/** Declares quorum or classic queues through `node` (a classic queue lives on the node that declared it). */
async function declareOn(
  node: PrivateBroker,
  queues: { name: string; type: 'quorum' | 'classic'; arguments?: Record<string, unknown> }[],
): Promise<void> {
  const admin = connectionTo(node, 'declare')
  try {
    await admin.declare({ queues })
  } finally {
    await admin.close()
  }
}

/** The node that is neither of `nodes`. */
function otherThan(...nodes: PrivateBroker[]): PrivateBroker {
  const node = cluster.nodes.find((n) => !nodes.includes(n))
  if (!node) throw new Error('no other node')
  return node
}

/** Every message id in a queue, read through a live node. */
async function drain(queue: string, through: PrivateBroker): Promise<string[]> {
  return drainPrivateQueue(through.url, queue)
}

test("5,000 sends to a quorum queue through kill -9 of its leader's node (back after 5 s), then of the publisher's node: all confirmed, none rejected, none lost", async () => {
  const queue = 'failover-sends'
  const leaderFirst = cluster.nodes[0] as PrivateBroker
  await declareOn(leaderFirst, [{ name: queue, type: 'quorum' }])
  const leader = await cluster.leaderOf(queue)
  const publisherNode = otherThan(leader)
  const connection = connectionTo(publisherNode, 'failover-publisher')
  const publisher = new Publisher({ kind: 'async', connection, maxInFlight: 100 })
  const ledger = new Ledger()
  const traffic = new Traffic(ledger, publisher, queue, 'f')
  const firstConfirmAfter = async (killedAt: number): Promise<number> => {
    while (performance.now() - killedAt < 30_000) {
      const settled = traffic.records.find(
        (r) => r.started > killedAt && r.settled !== undefined && r.error === undefined,
      )
      if (settled?.settled !== undefined) return settled.settled - killedAt
      await sleep(20)
    }
    return Number.POSITIVE_INFINITY
  }
  try {
    await publisher.start()
    assert.equal((await cluster.nodeOfConnection('failover-publisher')).port, publisherNode.port)
    // Long enough to go on through both kills and the restart between them (a restart takes 10-15 s).
    const sending = traffic.paced(5_000, 35_000)
    await sleep(2_000)
    const leaderKilledAt = performance.now()
    progress('killing the leader')
    await leader.kill9()
    const leaderRestart = sleep(5_000).then(() => leader.restart())
    const afterLeaderKill = await firstConfirmAfter(leaderKilledAt)
    progress(`first confirm after ${afterLeaderKill}`)
    await leaderRestart
    await cluster.waitRunning()
    progress('leader back')
    const ownKilledAt = performance.now()
    progress(
      `killing the publisher's node; ${traffic.pending.length} pending, ${traffic.confirmedIds.length} confirmed`,
    )
    assert.ok(
      traffic.records.length < 4_500,
      `still sending at the second kill: ${traffic.records.length} sent`,
    )
    await publisherNode.kill9()
    progress('killed')
    const afterOwnKill = await firstConfirmAfter(ownKilledAt)
    progress(`first confirm after ${afterOwnKill}`)
    await sending
    const hung = await traffic.settled(40_000)
    progress(`settled, ${hung.length} hung`)
    progress(`restarting, ${traffic.confirmedIds.length} confirmed`)
    await publisherNode.restart()
    await cluster.waitRunning()
    progress('restarted')
    process.stderr.write(
      `first confirm after the leader's kill: ${afterLeaderKill.toFixed(0)} ms; after the publisher's node's kill: ${afterOwnKill.toFixed(0)} ms\n`,
    )
    assert.equal(hung.length, 0, 'every send settled')
    const failed = traffic.failed.map((r) => (r.error as LapinError).code)
    assert.deepEqual(failed, [], `sends that failed: ${failed.length}`)
    assert.equal(traffic.confirmedIds.length, 5_000)
    assert.notEqual(connection.node, `127.0.0.1:${publisherNode.port}`, 'moved off the killed node')
    ledger.finalContents(queue, await drain(queue, leader))
    // Republished in-doubt sends (the publisher's own node died with a window of 100 in flight).
    ledger.print('5,000 sends through two node kills')
    ledger.assertSound({ maxDuplicated: 100 })
  } finally {
    await publisher.stop({ timeout: 1_000 })
    await connection.close()
  }
})

test('a full reject-publish queue still refuses at once: PUBLISH_NACKED, not sent again', async () => {
  const queue = 'failover-full'
  const node = cluster.nodes[1] as PrivateBroker
  await declareOn(node, [
    { name: queue, type: 'classic', arguments: { 'x-max-length': 3, 'x-overflow': 'reject-publish' } },
  ])
  const connection = connectionTo(node, 'full-publisher')
  const publisher = new Publisher({ kind: 'async', connection })
  try {
    await publisher.start()
    for (let i = 0; i < 3; i++) await publisher.sendMessageToQueue(queue, `fill-${i}`)
    // A fresh publisher's first send to the full queue, and one that had confirms before.
    const other = new Publisher({ kind: 'sync', connection })
    await other.start()
    for (const p of [publisher, other]) {
      const started = performance.now()
      const error = await p.sendMessageToQueue(queue, 'one too many').then(
        () => undefined,
        (e: unknown) => e,
      )
      const took = performance.now() - started
      assert.ok(error instanceof PublishNackedError, `nacked: ${String(error)}`)
      assert.ok(took < 500, `refused at once: ${took.toFixed(0)} ms`)
    }
    await other.stop()
    assert.deepEqual(await cluster.queueMessages(queue), { ready: 3, unacked: 0 })
  } finally {
    await publisher.stop({ timeout: 1_000 })
    await connection.close()
  }
})

test("kill -9 of a quorum queue's leader under a sync and an async publisher on its node: every send confirms (the nacks of the fresh channel are sent again), none is lost, consuming resumes from the new leader", async () => {
  const queue = 'failover-leader'
  const node = cluster.nodes[2] as PrivateBroker
  await declareOn(node, [{ name: queue, type: 'quorum' }])
  const leader = await cluster.leaderOf(queue)
  const consumerNode = otherThan(leader)
  const publishing = connectionTo(leader, 'leader-publishers')
  const consuming = connectionTo(consumerNode, 'leader-consumer')
  const ledger = new Ledger()
  const sync = new Publisher({ kind: 'sync', connection: publishing, confirmTimeout: 10_000 })
  const async_ = new Publisher({ kind: 'async', connection: publishing, confirmTimeout: 10_000 })
  const delivered: number[] = []
  const consumer = new Consumer({
    queueName: queue,
    declareQueue: false,
    connection: consuming,
    prefetch: 50,
    taskFunction: (message) => {
      ledger.delivered(String(message.properties.messageId), { redelivered: message.redelivered, queue })
      delivered.push(performance.now())
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', () => {})
  const syncTraffic = new Traffic(ledger, sync, queue, 's')
  const asyncTraffic = new Traffic(ledger, async_, queue, 'a')
  try {
    await Promise.all([sync.start(), async_.start(), consumer.start()])
    const stop = new AbortController()
    const syncLoop = (async () => {
      while (!stop.signal.aborted) await syncTraffic.send().done
    })()
    const asyncLoop = asyncTraffic.paced(3_000, 6_000)
    await sleep(1_500)
    const killedAt = performance.now()
    await leader.kill9()
    await asyncLoop
    stop.abort()
    await syncLoop
    const hung = [...(await syncTraffic.settled(15_000)), ...(await asyncTraffic.settled(15_000))]
    assert.equal(hung.length, 0, 'every send settled (confirmed or rejected) by its deadline')
    // While the cluster keeps a majority, a failover's nacks are sent again: no send is refused.
    const failed = [...syncTraffic.failed, ...asyncTraffic.failed].map((r) => (r.error as LapinError).code)
    assert.deepEqual(failed, [], `sends that failed: ${failed.length}`)
    const deliveredAfter = delivered.filter((t) => t > killedAt).length
    assert.ok(deliveredAfter > 0, 'consuming resumed from the new leader')
    const confirmed = [...syncTraffic.confirmedIds, ...asyncTraffic.confirmedIds]
    const deadline = Date.now() + 20_000
    while (confirmed.some((id) => ledger.deliveriesOf(id).length === 0) && Date.now() < deadline)
      await sleep(100)
    await consumer.stop()
    await leader.restart()
    await cluster.waitRunning()
    ledger.finalContents(queue, await drain(queue, consumerNode))
    ledger.print("sync + async publishers through the leader's kill")
    ledger.assertSound({ maxDuplicated: 110 })
  } finally {
    await Promise.all([sync.stop({ timeout: 1_000 }), async_.stop({ timeout: 1_000 }), consumer.stop()])
    await Promise.all([publishing.close(), consuming.close()])
  }
})

test('a classic queue whose node is killed: the consumer reports it unavailable, keeps trying, and consumes again once the node is back', async () => {
  const queue = 'failover-classic'
  const home = cluster.nodes[0] as PrivateBroker
  await declareOn(home, [{ name: queue, type: 'classic' }])
  assert.equal((await cluster.leaderOf(queue)).port, home.port)
  const consuming = connectionTo(otherThan(home), 'classic-consumer')
  const publishing = connectionTo(otherThan(home), 'classic-publisher')
  const got: string[] = []
  const consumer = new Consumer({
    queueName: queue,
    declareQueue: false,
    connection: consuming,
    taskFunction: (message) => {
      got.push(message.body.toString())
      return MessageStatus.SUCCESS
    },
  })
  const errors: string[] = []
  const unavailable: QueueUnavailableInfo[] = []
  consumer.on('error', (e) => errors.push(e.code))
  consumer.on('queueUnavailable', (info) => unavailable.push(info))
  const publisher = new Publisher({ kind: 'sync', connection: publishing })
  try {
    await Promise.all([consumer.start(), publisher.start()])
    await publisher.sendMessageToQueue(queue, 'before')
    const deadline = Date.now() + 10_000
    const acked = async (): Promise<boolean> => {
      const { ready, unacked } = await cluster.queueMessages(queue)
      return got.length === 1 && ready + unacked === 0
    }
    while (!(await acked()) && Date.now() < deadline) await sleep(50)
    await home.kill9()
    while (unavailable.length < 3 && Date.now() < deadline + 20_000) await sleep(100)
    assert.ok(unavailable.length >= 3, `reported unavailable on each attempt: ${unavailable.length}`)
    for (const [i, info] of unavailable.entries()) {
      assert.equal(info.queue, queue)
      assert.equal(info.error.code, 'QUEUE_UNAVAILABLE')
      assert.equal(info.error.replyCode, 404)
      assert.equal(info.attempt, i + 1)
      assert.ok(info.delay <= 5_000, `delay ${info.delay}`)
    }
    assert.deepEqual(
      [...new Set(errors)],
      ['CONSUMER_CANCELLED'],
      'the cancel is an error; unavailability is not',
    )
    await sleep(6_000) // a few attempts at the longest delay: still trying, no crash
    const attemptsWhileDown = unavailable.length
    await home.restart()
    await cluster.waitRunning()
    const restartedAt = performance.now()
    await publisher.sendMessageToQueue(queue, 'after')
    while (!got.includes('after') && performance.now() - restartedAt < 15_000) await sleep(50)
    const resumedIn = performance.now() - restartedAt
    process.stderr.write(
      `classic queue: ${attemptsWhileDown} attempts while its node was down; consumed again ${resumedIn.toFixed(0)} ms after it was back\n`,
    )
    assert.deepEqual(got, ['before', 'after'])
    assert.ok(resumedIn < 6_000, `consumed again within the longest delay: ${resumedIn.toFixed(0)} ms`)
    assert.equal(await cluster.consumerCount(queue), 1)
  } finally {
    await Promise.all([consumer.stop(), publisher.stop()])
    await Promise.all([consuming.close(), publishing.close()])
  }
})

test('a quorum queue without a majority: a consumer starting on it reports it unavailable (no answer within the timeout), keeps trying, and starts once the majority is back', async () => {
  const queue = 'failover-no-majority'
  const survivor = cluster.nodes[0] as PrivateBroker
  const [down1, down2] = [cluster.nodes[1] as PrivateBroker, cluster.nodes[2] as PrivateBroker]
  await declareOn(survivor, [{ name: queue, type: 'quorum' }])
  await Promise.all([down1.kill9(), down2.kill9()])
  const connection = new Connection({
    url: survivor.url,
    name: 'no-majority-consumer',
    connectionTimeout: 2_000,
  })
  connection.on('error', () => {})
  const got: string[] = []
  const consumer = new Consumer({
    queueName: queue,
    queueType: 'quorum',
    connection,
    taskFunction: (message) => {
      got.push(message.body.toString())
      return MessageStatus.SUCCESS
    },
  })
  const unavailable: QueueUnavailableInfo[] = []
  consumer.on('queueUnavailable', (info) => unavailable.push(info))
  let started = false
  const starting = consumer.start().then(() => {
    started = true
  })
  try {
    const end = Date.now() + 30_000
    while (unavailable.length < 2 && Date.now() < end) await sleep(100)
    assert.ok(unavailable.length >= 2, `reported on each attempt: ${unavailable.length}`)
    assert.equal(started, false, 'start() waits while the queue cannot be consumed')
    for (const info of unavailable) {
      assert.equal(info.error.code, 'QUEUE_UNAVAILABLE')
      assert.match(info.error.message, /no answer .* within 2000 ms/)
    }
    await Promise.all([down1.restart(), down2.restart()])
    await cluster.waitRunning()
    await starting
    const publishing = connectionTo(survivor, 'no-majority-publisher')
    const publisher = new Publisher({ kind: 'sync', connection: publishing })
    await publisher.start()
    await publisher.sendMessageToQueue(queue, 'after')
    await publisher.stop()
    await publishing.close()
    const until = Date.now() + 10_000
    while (got.length === 0 && Date.now() < until) await sleep(50)
    assert.deepEqual(got, ['after'])
  } finally {
    await starting.catch(() => undefined)
    await consumer.stop()
    await connection.close()
  }
})
