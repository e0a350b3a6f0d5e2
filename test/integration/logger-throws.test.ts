// A logger that throws on every call must never escape into the library or the process: log calls
// happen in amqplib's close handlers and timers, where a throw was an uncaught exception (exit 1).
// The file's setup fails the run on any uncaught exception, even one that lands between tests.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import { declareQueue, deleteQueue, publishRaw, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

const calls: string[] = []
const throwingLogger = {
  debug: (_: object, msg?: string) => {
    calls.push(`debug ${msg}`)
    throw new Error('logger broke')
  },
  info: (_: object, msg?: string) => {
    calls.push(`info ${msg}`)
    throw new Error('logger broke')
  },
  warn: (_: object, msg?: string) => {
    calls.push(`warn ${msg}`)
    throw new Error('logger broke')
  },
  error: (_: object, msg?: string) => {
    calls.push(`error ${msg}`)
    throw new Error('logger broke')
  },
}

test('a throwing logger survives a consumer whose queue is deleted under it, and failing tasks', async () => {
  const queue = uniqueName('throwing-logger')
  queues.push(queue)
  await declareQueue(queue)
  await publishRaw(queue, ['a', 'b'])
  let runs = 0
  const consumer = new Consumer({
    queueName: queue,
    logger: throwingLogger,
    taskFunction: () => {
      runs++
      if (runs <= 2) throw new Error('task failed')
      return runs === 3 ? ('not a status' as MessageStatus) : MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  const errors: LapinError[] = []
  consumer.on('error', (err) => errors.push(err))
  await consumer.start()
  await waitFor(() => runs >= 4 && consumer.unsettled === 0, 10_000, 'both messages done')
  await deleteQueue(queue)
  await waitFor(() => errors.some((e) => e.code === 'CONSUMER_CANCELLED'), 10_000, 'the cancel')
  await waitFor(
    () => calls.some((c) => c.startsWith('warn lapinmq consumer channel closed')),
    10_000,
    'the close log',
  )
  await consumer.stop({ timeout: 1000 })
  assert.ok(calls.some((c) => c === 'warn lapinmq: task failed'))
})

test('a throwing logger survives a publisher whose channel the broker closes', async () => {
  const publisher = new Publisher({ kind: 'async', logger: throwingLogger })
  await publisher.start()
  try {
    await assert.rejects(publisher.sendMessage(uniqueName('no-such-exchange'), 'k', 'x'), {
      code: 'NOT_FOUND',
    })
    await publisher.sendMessage('amq.fanout', '', 'still works', { mandatory: false })
  } finally {
    await publisher.stop()
  }
})
