// Publish/subscribe: a fanout exchange copies each message to every queue bound to it. Each
// subscriber consumes a temporary queue of its own (queueName '': server-named, exclusive, deleted
// when it stops), so every subscriber receives every message, but only those published while it runs.
import { Consumer, MessageStatus, Publisher, type Topology, waitForSigterm } from 'lapinmq'

const exchange = process.env.EXCHANGE ?? 'announcements'
const subscribers = Number(process.env.SUBSCRIBERS ?? 3)
const count = Number(process.env.COUNT ?? 5)

// Publisher and subscribers each declare the exchange they need (again after a recovery), so
// whichever starts first creates it; a second declare of the same exchange changes nothing.
const topology: Topology = { exchanges: [{ name: exchange, type: 'fanout' }] }

let left = subscribers * count
let allReceived!: () => void
const finished = new Promise<void>((resolve) => {
  allReceived = resolve
})

const consumers = Array.from(
  { length: subscribers },
  (_, i) =>
    new Consumer({
      queueName: '', // a temporary queue, bound to the exchange (a fanout ignores binding keys)
      exchange,
      topology,
      taskFunction: (message) => {
        console.log(`subscriber-${i + 1} got ${message.body}`)
        if (--left === 0) allReceived()
        return MessageStatus.SUCCESS
      },
    }),
)
for (const [i, consumer] of consumers.entries()) {
  await consumer.start()
  console.log(`subscriber-${i + 1} listening on ${consumer.queueName}`) // amq.gen-…
}

const publisher = new Publisher({ kind: 'sync', topology })
await publisher.start()
for (let i = 0; i < count; i++) await publisher.sendMessage(exchange, '', `news ${i}`)
await Promise.race([finished, waitForSigterm()]) // every copy received (or Ctrl-C)
await Promise.all([publisher.stop(), ...consumers.map((c) => c.stop())])
