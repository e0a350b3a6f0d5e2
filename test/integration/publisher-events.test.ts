// A publisher tells its user what no send's promise can: its state as it changes, and an `error`
// when its connection's recovery gives up, so the channel can never be reopened.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Connection, type LapinError, Publisher, type PublisherState } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, uniqueName } from '../helpers/broker.ts'
import { eventually } from '../helpers/fault-traffic.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

after(closeAdmin)

test('state events follow start and stop; an error event when recovery gives up, with waiting sends rejected alike', async () => {
  const queue = uniqueName('publisher-events')
  await declareQueue(queue)
  const proxy = await TcpProxy.start()
  const connection = new Connection({
    url: proxy.url(),
    name: 'publisher-events',
    recovery: { maxRetries: 1, initialDelay: 20, maxDelay: 50 },
  })
  connection.on('error', () => {})
  const publisher = new Publisher({ kind: 'async', connection })
  const states: string[] = []
  const errors: LapinError[] = []
  publisher.on('state', (state: PublisherState, previous: PublisherState) =>
    states.push(`${previous}>${state}`),
  )
  publisher.on('error', (error) => errors.push(error))
  assert.equal(publisher.state, 'new')

  await publisher.start()
  assert.equal(publisher.state, 'running')
  await publisher.sendMessageToQueue(queue, 'before')

  // The broker becomes unreachable: the connection retries once, then gives up.
  await proxy.close()
  const during = publisher.sendMessageToQueue(queue, 'during').then(
    () => undefined,
    (e: LapinError) => e,
  )
  assert.ok(await eventually(() => errors.length > 0, 10_000), 'the publisher reported the end of recovery')
  assert.equal(errors[0]?.code, 'CONNECTION_CLOSED')
  assert.match(errors[0]?.message ?? '', /gave up/)
  const rejected = await during
  assert.equal(rejected?.code, 'CONNECTION_CLOSED', 'the waiting send failed with the same reason')

  await publisher.stop()
  assert.deepEqual(states, ['new>starting', 'starting>running', 'running>stopping', 'stopping>stopped'])
  assert.equal(publisher.state, 'stopped')
  await connection.close()
  await deleteQueue(queue)
})
