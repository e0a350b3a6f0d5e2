// A publish callback that throws is logged, never propagated into the connection: the send's
// promise keeps its outcome, the connection and the channel stay up, later sends are confirmed, and
// nothing reaches the process as an uncaught exception.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, type Logger, Publisher } from 'lapinmq'
import { declareExchange, declareQueue, queueCount, uniqueName } from '../helpers/broker.ts'
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { queues, exchanges } = cleanedUpAfterFile()

/** Runs `fn` and returns the uncaught exceptions and unhandled rejections seen meanwhile (and a little after). */
async function uncaughtDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = []
  const record = (reason: unknown): void => {
    seen.push(reason)
  }
  process.on('uncaughtException', record)
  process.on('unhandledRejection', record)
  try {
    await fn()
    await sleep(100)
  } finally {
    process.off('uncaughtException', record)
    process.off('unhandledRejection', record)
  }
  return seen
}

test('ack and nack callbacks that throw are logged; the connection and the publisher go on', async () => {
  const queue = uniqueName('callback-throws')
  const exchange = uniqueName('callback-throws-unbound')
  queues.push(queue)
  exchanges.push(exchange)
  await declareQueue(queue)
  await declareExchange(exchange, 'direct')
  const logged: string[] = []
  const log =
    (level: string) =>
    (_obj: object, msg?: string): void => {
      logged.push(`${level}: ${msg}`)
    }
  const logger: Logger = { debug: () => {}, info: () => {}, warn: log('warn'), error: log('error') }
  const connection = new Connection({ name: 'callback-throws', logger })
  const drops: unknown[] = []
  connection.on('disconnected', (error) => drops.push(error))
  const publisher = new Publisher({ kind: 'async', connection })
  const calls: string[] = []
  const outcomes: string[] = []
  try {
    const uncaught = await uncaughtDuring(async () => {
      await publisher.start()
      const callbacks = {
        ackCallback: () => {
          calls.push('ack')
          throw new Error('ack callback failed')
        },
        nackCallback: () => {
          calls.push('nack')
          throw new Error('nack callback failed')
        },
      }
      outcomes.push(
        await publisher.sendMessageToQueue(queue, 'routed', { callbacks }).then(
          () => 'confirmed',
          (e: { code: string }) => e.code,
        ),
        await publisher.sendMessage(exchange, 'nobody', 'returned', { callbacks }).then(
          () => 'confirmed',
          (e: { code: string }) => e.code,
        ),
      )
      // The channel and the connection survived: the next send is confirmed on them.
      await publisher.sendMessageToQueue(queue, 'after')
    })
    assert.deepEqual(uncaught, [], 'nothing reached the process')
    assert.deepEqual(outcomes, ['confirmed', 'UNROUTABLE'])
    assert.deepEqual(calls, ['ack', 'nack'])
    assert.deepEqual(logged, [
      'error: lapinmq: a publish callback threw',
      'error: lapinmq: a publish callback threw',
    ])
    assert.deepEqual(drops, [], 'the connection never dropped')
    assert.equal(connection.state, 'open')
    assert.equal(publisher.state, 'running')
    assert.equal(await queueCount(queue), 2)
  } finally {
    await publisher.stop()
    await connection.close()
  }
})

let child: TsChild | undefined
after(() => killIfRunning(child))

test('a callback that throws, with a logger that throws too: every send still settles and the process lives', async () => {
  // In a child process: the uncaught exception must not take this test file down with it.
  const queue = uniqueName('callback-logger-throws')
  queues.push(queue)
  await declareQueue(queue)
  child = spawnTs('test/fixtures/callback-and-logger-throw.ts', { QUEUE: queue })
  const { code } = await child.exited
  assert.equal(code, 0, child.stderr().split('\n').slice(0, 3).join('\n'))
  assert.deepEqual(child.lines, ['confirmed 20'])
})
