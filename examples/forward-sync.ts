// Consumes a queue and forwards each message, upper-cased, to another queue. The sync publisher's
// send resolves once the broker has confirmed the output message, so the source is acked only then.
import { Consumer, type Message, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'task_queue'
const outputQueue = process.env.OUTPUT_QUEUE ?? 'output_queue'

const publisher = new Publisher({ kind: 'sync' })
const consumer = new Consumer({
  queueName: queue,
  taskFunction: async (message: Message) => {
    const body = message.body.toString().toUpperCase()
    await publisher.sendMessageToQueue(outputQueue, body)
    console.log(`forwarded: ${body}`)
    return MessageStatus.SUCCESS
  },
})
await publisher.start()
await consumer.start()
console.log(`forwarding '${queue}' to '${outputQueue}'; SIGTERM to stop`)
await waitForSigterm()
await consumer.stop()
await publisher.stop()
