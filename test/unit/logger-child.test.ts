// Child-logger bindings: a logger with child() (pino, bunyan) gets one per publisher, consumer and
// RPC client, guarded like the logger itself; a child() that throws or returns junk falls back.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bindLogger, guardLogger, silentLogger } from '../../src/util/logger.ts'

type Line = { level: string; bindings: Record<string, unknown>; obj: object; msg: string | undefined }

/** A pino-like logger: child(bindings) returns a logger whose lines carry them. */
function pinoLike(lines: Line[], bindings: Record<string, unknown> = {}) {
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, bindings, obj, msg })
    }
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more: Record<string, unknown>) => pinoLike(lines, { ...bindings, ...more }),
  }
}

test('a logger with child(): the bound logger writes through the child, with the bindings', () => {
  const lines: Line[] = []
  const bound = bindLogger(guardLogger('logger', pinoLike(lines)), { lapinmq: 'consumer', queue: 'billing' })
  bound.info({ n: 1 }, 'hello')
  assert.deepEqual(lines, [
    { level: 'info', bindings: { lapinmq: 'consumer', queue: 'billing' }, obj: { n: 1 }, msg: 'hello' },
  ])
})

test('binding the same base twice does not chain the bindings', () => {
  const lines: Line[] = []
  const base = guardLogger('logger', pinoLike(lines))
  bindLogger(base, { queue: 'a' })
  bindLogger(base, { queue: 'b' }).warn({}, 'x')
  assert.deepEqual(lines[0]?.bindings, { queue: 'b' })
})

test('the child is guarded: a child whose methods throw never throws into the library', () => {
  const throwing = () => {
    throw new Error('logger down')
  }
  const child = { debug: throwing, info: throwing, warn: throwing, error: throwing }
  const logger = { ...child, child: () => child }
  const bound = bindLogger(guardLogger('logger', logger), { queue: 'q' })
  assert.doesNotThrow(() => bound.error({}, 'x'))
})

test('child() that throws, or returns something that is not a logger: the logger as it is', () => {
  for (const child of [
    () => {
      throw new Error('no child')
    },
    () => undefined,
    () => 'junk',
    () => ({ info() {} }),
  ]) {
    const lines: Line[] = []
    const base = guardLogger('logger', { ...pinoLike(lines), child })
    const bound = bindLogger(base, { queue: 'q' })
    assert.equal(bound, base)
    bound.info({}, 'still logged')
    assert.equal(lines.length, 1)
  }
})

test('a logger without child(), and the silent logger, are kept as they are', () => {
  const { child: _, ...plain } = pinoLike([])
  const base = guardLogger('logger', plain)
  assert.equal(bindLogger(base, { queue: 'q' }), base)
  assert.equal(bindLogger(silentLogger, { queue: 'q' }), silentLogger)
})
