// A publisher created without an explicit connection keeps its own `logger` option at start(), not
// the shared connection's (silent) logger, so its warnings reach the caller.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Publisher } from 'lapinmq'
import { closeAdmin, declareExchange, deleteExchange, uniqueName } from '../helpers/broker.ts'

after(closeAdmin)

test("a publisher's own logger hears the channel loss, also on the shared connection", async () => {
  const lines: { level: string; obj: object; msg: string | undefined }[] = []
  const record = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj, msg })
  const logger = {
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  }
  const publisher = new Publisher({ kind: 'async', logger })
  try {
    await publisher.start()
    // An exchange deleted after the publisher checked it: the broker closes the channel (404).
    const exchange = uniqueName('deleted')
    await declareExchange(exchange, 'fanout')
    await publisher.sendMessage(exchange, '', 'x', { mandatory: false })
    await deleteExchange(exchange)
    await assert.rejects(publisher.sendMessage(exchange, '', 'x'), { code: 'NOT_FOUND' })
    const warning = lines.find((l) => l.level === 'warn' && /channel closed/.test(l.msg ?? ''))
    assert.ok(warning, `no warning logged; got ${JSON.stringify(lines)}`)
    assert.equal((warning.obj as { code?: string }).code, 'NOT_FOUND')
  } finally {
    await publisher.stop()
  }
})
