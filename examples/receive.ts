// Consumes a queue, three messages at a time, until SIGTERM (or Ctrl-C).
import { Consumer, type Message, MessageStatus, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'task_queue'

const consumer = new Consumer({
  queueName: queue,
  concurrency: 3,
  taskFunction: async (message: Message) => {
    console.log(`received: ${message.body.toString()}`)
    return MessageStatus.SUCCESS
  },
})
await consumer.start()
console.log(`waiting for messages on '${queue}'; SIGTERM to stop`)
await waitForSigterm()
await consumer.stop()
