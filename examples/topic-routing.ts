// Topic routing: each queue is bound to a topic exchange with patterns on the dotted routing key
// ('*' is exactly one word, '#' zero or more), and receives only the events that match. An event
// that matches no binding is dropped by the broker; this publisher's defaults say that is fine
// (mandatory: false), where a mandatory send would reject with UNROUTABLE.
import { Consumer, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const exchange = process.env.EXCHANGE ?? 'events'
const prefix = process.env.QUEUE_PREFIX ?? 'events'

const bindings = { eu: ['eu.*'], created: ['*.created'], audit: ['audit.#'] }
const consumers = Object.entries(bindings).map(
  ([name, bindingKeys]) =>
    new Consumer({
      queueName: `${prefix}.${name}`,
      exchange,
      exchangeType: 'topic', // declares the exchange (durable) before binding the queue to it
      bindingKeys, // one binding per key
      taskFunction: (message) => {
        console.log(`${name} got ${message.routingKey}`)
        return MessageStatus.SUCCESS
      },
    }),
)
for (const consumer of consumers) await consumer.start()

const publisher = new Publisher({ kind: 'sync', defaults: { mandatory: false } })
for (const key of ['eu.created', 'eu.deleted', 'us.created', 'us.deleted', 'audit', 'audit.login.failed']) {
  await publisher.sendMessage(exchange, key, JSON.stringify({ event: key })) // us.deleted: nobody's
  console.log(`sent ${key}`)
}
await waitForSigterm(1000) // Ctrl-C, or one second for the events to arrive
await Promise.all([publisher.stop(), ...consumers.map((c) => c.stop())])
