import { Consumer, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const queueName = process.env.QUEUE ?? 'hello'
const consumer = new Consumer({
  queueName, // declared (durable) by start() if it does not exist
  taskFunction: (message) => {
    console.log(`received: ${message.body}`)
    return MessageStatus.SUCCESS // ack
  },
})
await consumer.start()
const publisher = new Publisher({ kind: 'sync' }) // each send resolves once the broker confirms it
for (const text of ['one', 'two', 'three']) await publisher.sendMessageToQueue(queueName, text)
await waitForSigterm(1000) // Ctrl-C, or one second for the messages to arrive
await Promise.all([publisher.stop(), consumer.stop()])
