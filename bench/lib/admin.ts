// The runner's own connection (raw amqplib): declares, prefills, counts and deletes the fresh
// queue(s) of each run. Nothing it does is measured.
import { once } from 'node:events'
import amqplib from 'amqplib'
import { body, url } from './common.ts'

export interface Admin {
  brokerVersion: string
  declare(queue: string, args?: Record<string, unknown>): Promise<void>
  /** `messageIds`: each message carries messageId '0', '1', … */
  prefill(queue: string, count: number, messageIds?: boolean): Promise<void>
  count(queue: string): Promise<number>
  /** The depth once it stops changing (unconfirmed publishes may still be on their way in). */
  settledCount(queue: string, expected: number): Promise<number>
  remove(queue: string): Promise<void>
  /**
   * Counts then deletes a queue a peer declared (S11: its retry ladder's), on a channel of its own:
   * a queue that is not there (the peer failed before declaring it) closes that channel, not the
   * runner's. NaN when it was not there.
   */
  drop(queue: string): Promise<number>
  close(): Promise<void>
}

export async function openAdmin(): Promise<Admin> {
  const model = await amqplib.connect(url, { noDelay: true })
  const ch = await model.createConfirmChannel()
  const server = (model.connection as unknown as { serverProperties?: { version?: string } }).serverProperties
  return {
    brokerVersion: String(server?.version ?? 'unknown'),
    async declare(queue, args = {}) {
      // Durable (lapinmq's Consumer declares durable queues), empty, no consumers. lapinmq's Publisher
      // (topology) and Consumer declare the same queue again with these same arguments: keep them equal.
      await ch.assertQueue(queue, { durable: true, arguments: args })
      await ch.purgeQueue(queue)
    },
    async prefill(queue, count, messageIds = false) {
      let inFlight = 0
      let wake: (() => void) | undefined
      const done = () => {
        inFlight--
        if (wake && inFlight < 1000) {
          const w = wake
          wake = undefined
          w()
        }
      }
      for (let i = 0; i < count; i++) {
        if (inFlight >= 1000) await new Promise<void>((r) => (wake = r))
        inFlight++
        const options = messageIds ? { persistent: false, messageId: String(i) } : { persistent: false }
        const ok = ch.sendToQueue(queue, body, options, done)
        if (!ok) await once(ch, 'drain')
      }
      await ch.waitForConfirms()
    },
    async count(queue) {
      return (await ch.checkQueue(queue)).messageCount
    },
    async settledCount(queue, expected) {
      let last = -1
      for (let i = 0; i < 40; i++) {
        const n = (await ch.checkQueue(queue)).messageCount
        if (n === expected || n === last) return n
        last = n
        await new Promise((r) => setTimeout(r, 100))
      }
      return last
    },
    async remove(queue) {
      await ch.deleteQueue(queue)
    },
    async drop(queue) {
      const own = await model.createChannel()
      own.on('error', () => {})
      try {
        const { messageCount } = await own.checkQueue(queue)
        await own.deleteQueue(queue)
        return messageCount
      } catch {
        return Number.NaN
      } finally {
        await own.close().catch(() => {})
      }
    },
    async close() {
      await ch.close()
      await model.close()
    },
  }
}
