// Fixtures for the integration tests on the shared broker: a fresh queue with a started publisher
// for one test, and per-file lists of consumers and queues cleaned up in the file's after().
import { after } from 'node:test'
import type { Consumer, PublisherOptions } from 'lapinmq'
import { Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteExchange, deleteQueue, uniqueName } from './broker.ts'

/** Runs `body` with a fresh declared queue and a started publisher; then stops the publisher and deletes the queue. */
export async function withQueueAndPublisher(
  prefix: string,
  options: PublisherOptions,
  body: (queue: string, publisher: Publisher) => Promise<void>,
): Promise<void> {
  const queue = uniqueName(prefix)
  await declareQueue(queue)
  const publisher = new Publisher(options)
  try {
    await publisher.start()
    await body(queue, publisher)
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
}

/** Lists a test file fills with its consumers, queues and exchanges: after its tests they are stopped, then deleted, and the admin connection closed. */
export function cleanedUpAfterFile(): { consumers: Consumer[]; queues: string[]; exchanges: string[] } {
  const consumers: Consumer[] = []
  const queues: string[] = []
  const exchanges: string[] = []
  after(async () => {
    for (const consumer of consumers) await consumer.stop({ timeout: 1000 })
    for (const queue of queues) await deleteQueue(queue)
    for (const exchange of exchanges) await deleteExchange(exchange)
    await closeAdmin()
  })
  return { consumers, queues, exchanges }
}
