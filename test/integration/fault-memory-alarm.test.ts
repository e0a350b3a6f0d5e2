// A memory alarm for 10 s on a private node. The broker blocks the
// publishing connection (connection.blocked): it must emit `blocked` and say so in its state, and
// sends made during the alarm must wait (neither confirmed nor failed: their deadline is 30 s) and
// all be confirmed once the alarm clears (`unblocked`). A consumer on its own connection is not
// blocked: it keeps taking and acking the messages already in its queue all through the alarm.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type ConnectionState, Consumer, Publisher } from 'lapinmq'
import { connectionPair, usePrivateBroker } from '../helpers/fault-setup.ts'
import {
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  ms,
  recordingTask,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

const alarmMs = 10_000
const confirmTimeout = 30_000
const prefill = 400
const alarmSends = 100
const concurrency = 2
/** Per message while the alarm lasts: the consumer acks about 20 a second. */
const slowWorkMs = 100

test('memory alarm for 10 s: publishers wait and emit blocked, the consumer keeps acking, then all is confirmed', async () => {
  const queue = 'fault-memory-alarm'
  const ledger = new Ledger()
  const { pubConnection, conConnection, pubStates, conStates, errors } = connectionPair(
    { url: node.broker.url },
    { pub: 'fault-alarm-pub', con: 'fault-alarm-con' },
  )
  const events: { connection: string; event: 'blocked' | 'unblocked'; at: number; state: ConnectionState }[] =
    []
  for (const [name, connection] of [
    ['pub', pubConnection],
    ['con', conConnection],
  ] as const) {
    connection.on('blocked', () =>
      events.push({ connection: name, event: 'blocked', at: performance.now(), state: connection.state }),
    )
    connection.on('unblocked', () =>
      events.push({ connection: name, event: 'unblocked', at: performance.now(), state: connection.state }),
    )
  }
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout })
  const delivered = new Set<string>()
  const ackedAt: number[] = []
  let fast = false
  const record = recordingTask(ledger, queue, delivered, () => (fast ? 1 : slowWorkMs))
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: async (message) => {
      const status = await record(message)
      ackedAt.push(performance.now()) // lapinmq acks as soon as the task returns SUCCESS
      return status
    },
    concurrency,
    connection: conConnection,
  })
  consumer.on('error', (e) => errors.push(e))
  const before = new Traffic(ledger, publisher, queue, 'pre')
  const during = new Traffic(ledger, publisher, queue, 'alarm')
  const started = performance.now()
  let alarm = false
  try {
    await declarePrivateQueue(node.broker.url, queue)
    await publisher.start()
    for (let i = 0; i < prefill; i++) before.send()
    assert.deepEqual(await before.settled(10_000), [], 'prefill not confirmed')
    assert.equal(before.failed.length, 0, 'prefill failed')
    await consumer.start()
    await eventually(() => ackedAt.length >= 5, 5_000)

    const raising = performance.now()
    alarm = true
    await node.broker.setMemoryAlarm(true)
    const alarmFrom = performance.now()
    const queueAtAlarm = await node.broker.queueMessages(queue)
    // Sends made during the alarm; the broker blocks the connection at the first publish.
    for (let i = 0; i < alarmSends; i++) during.send()
    const blocked = await eventually(
      () => events.some((e) => e.connection === 'pub' && e.event === 'blocked'),
      8_000,
    )
    const blockedAt = events.find((e) => e.connection === 'pub' && e.event === 'blocked')?.at
    const stateWhileBlocked = pubConnection.state
    const ackedBeforeWait = ackedAt.length
    await sleep(alarmMs - (performance.now() - alarmFrom) - 1_000)
    // Still in the alarm: nothing of it settled, the consumer went on acking.
    const settledDuringAlarm = during.records.filter((r) => r.settled !== undefined)
    const queueLate = await node.broker.queueMessages(queue)
    const pubStateLate = pubConnection.state
    await sleep(alarmMs - (performance.now() - alarmFrom))
    const clearing = performance.now()
    const acksDuringAlarm = ackedAt.filter((t) => t > alarmFrom && t < clearing).length
    await node.broker.setMemoryAlarm(false)
    alarm = false
    const clearedAt = performance.now()

    const unblocked = await eventually(
      () => events.some((e) => e.connection === 'pub' && e.event === 'unblocked'),
      10_000,
    )
    const unblockedAt = events.find((e) => e.connection === 'pub' && e.event === 'unblocked')?.at
    const stateAfterUnblock = pubConnection.state
    const hung = await during.settled(confirmTimeout)
    const confirmedAfter = during.records.map((r) => (r.settled ?? Number.POSITIVE_INFINITY) - clearing)

    fast = true
    const confirmed = [...before.confirmedIds, ...during.confirmedIds]
    await eventually(() => confirmed.every((id) => delivered.has(id)), 20_000)
    await consumer.stop({ timeout: 10_000 })
    await publisher.stop({ timeout: 5_000 })
    ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))

    process.stderr.write(
      [
        '',
        `memory alarm: raised in ${Math.round(alarmFrom - raising)} ms, held ${Math.round(clearing - alarmFrom)} ms, cleared in ${Math.round(clearedAt - clearing)} ms`,
        `  publishing connection: blocked ${ms(blockedAt, alarmFrom)} after the alarm (state then '${stateWhileBlocked}', ` +
          `late in the alarm '${pubStateLate}'), unblocked ${ms(unblockedAt, clearing)} after clearing began`,
        `  consuming connection events: ${
          events
            .filter((e) => e.connection === 'con')
            .map((e) => e.event)
            .join(', ') || 'none'
        }`,
        `  ${alarmSends} sends during the alarm: ${settledDuringAlarm.length} settled during it; confirmed ` +
          `${during.confirmedIds.length}, failed ${during.failed.length}, between ${Math.round(Math.min(...confirmedAfter))} and ` +
          `${Math.round(Math.max(...confirmedAfter))} ms after clearing began`,
        `  consumer: ${acksDuringAlarm} acks during the alarm (${ackedBeforeWait} before it); queue at the alarm ` +
          `ready ${queueAtAlarm.ready} unacked ${queueAtAlarm.unacked}, late in it ready ${queueLate.ready} unacked ${queueLate.unacked}`,
        `  states: publishing ${pubStates.map((s) => s.state).join(' → ')}; consuming ${conStates.map((s) => s.state).join(' → ')}`,
        `  test took ${Math.round(performance.now() - started)} ms`,
      ].join('\n'),
    )
    ledger.print('memory alarm 10 s')
    ledger.assertSound()

    assert.ok(blocked, 'the publishing connection never emitted blocked')
    assert.equal(stateWhileBlocked, 'blocked')
    assert.equal(pubStateLate, 'blocked')
    assert.deepEqual(
      settledDuringAlarm.map((r) => [r.id, r.error === undefined ? 'confirmed' : String(r.error)]),
      [],
      'sends made during the alarm settled before it cleared',
    )
    assert.ok(unblocked, 'the publishing connection never emitted unblocked')
    assert.equal(stateAfterUnblock, 'open')
    assert.deepEqual(hung, [], 'sends made during the alarm never settled')
    assert.deepEqual(
      during.failed.map((r) => [r.id, String(r.error)]),
      [],
      'sends made during the alarm failed',
    )
    assert.equal(during.confirmedIds.length, alarmSends)
    assert.ok(acksDuringAlarm > 0, 'the consumer acked nothing during the alarm')
    assert.ok(
      queueLate.ready + queueLate.unacked < queueAtAlarm.ready + queueAtAlarm.unacked,
      'the queue did not shrink during the alarm',
    )
    assert.deepEqual(
      errors.map((e) => e.code),
      [],
      'no error event',
    )
  } finally {
    if (alarm) await node.broker.setMemoryAlarm(false).catch(() => undefined)
    await consumer.stop({ timeout: 1_000 }).catch(() => undefined)
    await publisher.stop({ timeout: 1_000 }).catch(() => undefined)
    await pubConnection.close().catch(() => undefined)
    await conConnection.close().catch(() => undefined)
  }
})
