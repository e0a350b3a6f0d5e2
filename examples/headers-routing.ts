// Headers routing: a headers exchange ignores the routing key and matches the message's headers
// against each binding's arguments. 'x-match': 'all' needs every listed header to match, 'any'
// needs one. A Consumer binds with routing keys only, so each declares its queue and a binding with
// arguments in its topology, and consumes the queue without declaring it again (declareQueue: false).
import { Consumer, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const exchange = process.env.EXCHANGE ?? 'documents'
const prefix = process.env.QUEUE_PREFIX ?? 'documents'

function subscriber(name: string, match: Record<string, string>): Consumer {
  const queue = `${prefix}.${name}`
  return new Consumer({
    queueName: queue,
    declareQueue: false, // declared, and bound, by the topology just before
    topology: {
      exchanges: [{ name: exchange, type: 'headers' }],
      queues: [{ name: queue }],
      bindings: [{ exchange, queue, arguments: match }],
    },
    taskFunction: (message) => {
      console.log(`${name} got ${message.body}`)
      return MessageStatus.SUCCESS
    },
  })
}
const consumers = [
  subscriber('pdf-reports', { 'x-match': 'all', format: 'pdf', type: 'report' }),
  subscriber('urgent', { 'x-match': 'any', priority: 'high', alert: 'yes' }),
]
for (const consumer of consumers) await consumer.start()

const publisher = new Publisher({ kind: 'sync', defaults: { mandatory: false } }) // some match no binding
const documents: [string, Record<string, string>][] = [
  ['a pdf report', { format: 'pdf', type: 'report' }],
  ['a pdf invoice', { format: 'pdf', type: 'invoice' }], // all: type differs; any: nothing matches
  ['an urgent pdf report', { format: 'pdf', type: 'report', priority: 'high' }],
  ['an alert', { alert: 'yes' }],
  ['a csv report', { format: 'csv', type: 'report', priority: 'low' }],
]
for (const [body, headers] of documents) await publisher.sendMessage(exchange, '', body, { headers })
await waitForSigterm(1000) // Ctrl-C, or one second for the messages to arrive
await Promise.all([publisher.stop(), ...consumers.map((c) => c.stop())])
