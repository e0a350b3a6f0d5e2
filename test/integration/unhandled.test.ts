// The suite's safety net: an unhandled rejection or uncaught exception anywhere in a test file, even
// after its tests ended, fails the run (test/helpers/setup.ts). And lapinmq itself never produces one:
// a send nobody awaits, or an error nobody listens for, is not an unhandled rejection or a crash.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, MessageStatus, Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, uniqueName, waitFor } from '../helpers/broker.ts'
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'

const queues: string[] = []
const children: TsChild[] = []

after(async () => {
  for (const child of children) killIfRunning(child)
  for (const queue of queues) await deleteQueue(queue)
  await closeAdmin()
})

/** Runs the late-rejection fixture under `node --test` with the suite's setup file. */
async function runFixture(late: boolean) {
  const child = spawnTs(
    'test/fixtures/unhandled-late.fixture.ts',
    // A nested runner must not think it reports to ours.
    { LATE: late ? '1' : '0', NODE_TEST_CONTEXT: undefined },
    ['--import', './test/helpers/setup.ts', '--test'],
  )
  children.push(child)
  const { code } = await child.exited
  return { code, output: `${child.lines.join('\n')}\n${child.stderr()}` }
}

/** Collects unhandled rejections and uncaught exceptions while `fn` runs (and a little after). */
async function collectUnhandled(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = []
  const record = (reason: unknown) => seen.push(reason)
  process.on('unhandledRejection', record)
  process.on('uncaughtException', record)
  try {
    await fn()
    // Unhandled rejections are reported after the microtask queue drains: give them the chance.
    await sleep(100)
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('unhandledRejection', record)
    process.off('uncaughtException', record)
  }
  return seen
}

describe('unhandled rejections', () => {
  test('a passing test that leaves a late rejection makes the run fail', async () => {
    const late = await runFixture(true)
    assert.notEqual(late.code, 0, late.output)
    assert.match(
      late.output,
      /unhandled rejection in a test file: Error: late rejection, after the test ended/,
    )
    // Control: the same fixture without the late rejection passes.
    const clean = await runFixture(false)
    assert.equal(clean.code, 0, clean.output)
  })

  test('sends that reject and are never awaited cause no unhandled rejection', async () => {
    const outcomes: string[] = []
    const callbacks = { nackCallback: (err: { code: string }) => outcomes.push(err.code) }
    const seen = await collectUnhandled(async () => {
      // Never started: the first send starts it.
      const publisher = new Publisher({ kind: 'async' })
      publisher.sendMessageToQueue(uniqueName('unh-nowhere'), 'to no queue', { callbacks })
      publisher.sendMessage(uniqueName('unh-no-exchange'), 'key', 'to no exchange', { callbacks })
      await waitFor(() => outcomes.length === 2, 10_000, 'both sends to fail')
      const sync = new Publisher({ kind: 'sync' })
      await sync.start()
      sync.sendMessageToQueue(uniqueName('unh-nowhere'), 'to no queue', { callbacks })
      await waitFor(() => outcomes.length === 3, 10_000, 'the sync send to fail')
      await sync.stop()
      await publisher.stop()
      publisher.sendMessageToQueue(uniqueName('unh-nowhere'), 'after stop', { callbacks })
    })
    assert.deepEqual(seen, [])
    assert.deepEqual(outcomes, ['UNROUTABLE', 'NOT_FOUND', 'UNROUTABLE', 'CONNECTION_CLOSED'])
  })

  test('a consumer error with no listener (queue deleted under it) does not crash', async () => {
    const queue = uniqueName('unh-deleted')
    queues.push(queue)
    await declareQueue(queue)
    const logged: unknown[] = []
    const logger = { debug() {}, info() {}, warn() {}, error: (fields: unknown) => logged.push(fields) }
    const consumer = new Consumer({ queueName: queue, taskFunction: () => MessageStatus.SUCCESS, logger })
    const seen = await collectUnhandled(async () => {
      await consumer.start()
      await deleteQueue(queue)
      await waitFor(() => logged.length > 0, 5000, 'the error to be logged')
      await consumer.stop()
    })
    assert.deepEqual(seen, [])
    assert.equal(consumer.listenerCount('error'), 0)
    assert.deepEqual(
      logged.map((fields) => (fields as { code: string }).code),
      ['CONSUMER_CANCELLED'],
    )
  })
})
