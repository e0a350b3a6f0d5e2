// The ledger's figures (test/helpers/ledger.ts): each one computed from a small, hand-checked history,
// and assertSound() failing, with the ids, on each kind of unsoundness.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Ledger, type PublishOutcome } from '../helpers/ledger.ts'

/** Attempts `ids` and records `kind` for each. */
function publish(ledger: Ledger, ids: string[], kind: PublishOutcome = 'confirmed'): void {
  for (const id of ids) {
    ledger.attempt(id)
    ledger.outcome(id, kind)
  }
}

function deliver(ledger: Ledger, ids: string[], queue = 'q', redelivered = false): void {
  for (const id of ids) ledger.delivered(id, { redelivered, queue })
}

test('a clean run: every confirmed message delivered once, all figures 0', () => {
  const ledger = new Ledger()
  publish(ledger, ['a', 'b', 'c'])
  deliver(ledger, ['a', 'b', 'c'])
  ledger.finalContents('q', [])
  const r = ledger.assertSound()
  assert.equal(r.attempted, 3)
  assert.equal(r.confirmed, 3)
  assert.equal(r.delivered, 3)
  assert.equal(r.deliveries, 3)
  assert.deepEqual(r.outcomes, { confirmed: 3, returned: 0, nacked: 0, rejected: 0, indeterminate: 0 })
  for (const figure of ['lost', 'unexpected', 'hung', 'duplicated', 'recovered', 'settledTwice'] as const) {
    assert.equal(r[figure], 0, figure)
  }
})

test('lost: confirmed, never delivered and in no queue at the end; assertSound fails naming it', () => {
  const ledger = new Ledger()
  publish(ledger, ['delivered', 'still-queued', 'gone', 'gone-too'])
  publish(ledger, ['nacked-and-gone'], 'nacked')
  deliver(ledger, ['delivered'])
  ledger.finalContents('q', ['still-queued'])
  ledger.finalContents('dlq', [])
  const r = ledger.report()
  assert.equal(r.lost, 2)
  assert.deepEqual(r.ids.lost, ['gone', 'gone-too'])
  assert.equal(r.remaining, 1)
  assert.throws(
    () => ledger.assertSound({ maxDuplicated: 100 }),
    (err: Error) => /lost 2 \(must be 0\): gone, gone-too/.test(err.message),
  )
})

test('a message found in a dead-letter queue at the end is not lost', () => {
  const ledger = new Ledger()
  publish(ledger, ['x'])
  ledger.finalContents('q', [])
  ledger.finalContents('q.dlq', ['x'])
  assert.equal(ledger.report().lost, 0)
})

test('retried deliveries: a message retried and never seen again is lost; coming back on purpose is no duplicate', () => {
  const ledger = new Ledger()
  publish(ledger, ['done-after-retries', 'waiting-in-delay', 'vanished', 'done-twice'])
  for (const id of ['done-after-retries', 'done-after-retries', 'waiting-in-delay', 'vanished'])
    ledger.delivered(id, { redelivered: false, queue: 'q', retried: true })
  deliver(ledger, ['done-after-retries', 'done-twice', 'done-twice'])
  ledger.finalContents('q', [])
  ledger.finalContents('q.retry.200', ['waiting-in-delay'])
  const r = ledger.report()
  assert.equal(r.deliveries, 7)
  assert.equal(r.retried, 4)
  assert.deepEqual(r.ids.lost, ['vanished'])
  assert.deepEqual(r.ids.duplicated, ['done-twice'])
  assert.equal(r.unexpected, 0)
})

test('unexpected: delivered or found at the end but never attempted', () => {
  const ledger = new Ledger()
  publish(ledger, ['a'])
  deliver(ledger, ['a', 'ghost'])
  ledger.finalContents('q', ['stray'])
  const r = ledger.report()
  assert.equal(r.unexpected, 2)
  assert.deepEqual(r.ids.unexpected.sort(), ['ghost', 'stray'])
  assert.throws(() => ledger.assertSound(), /unexpected 2 \(must be 0\)/)
})

test('hung: an attempt still without an outcome at report time', () => {
  const ledger = new Ledger()
  publish(ledger, ['done'])
  ledger.attempt('pending')
  let r = ledger.report()
  assert.equal(r.hung, 1)
  assert.deepEqual(r.ids.hung, ['pending'])
  assert.throws(() => ledger.assertSound(), /hung 1 \(must be 0\): pending/)
  ledger.outcome('pending', 'indeterminate')
  r = ledger.report()
  assert.equal(r.hung, 0)
  assert.equal(r.outcomes.indeterminate, 1)
})

test('duplicated: more than one delivery from the same queue, not one from each of two queues', () => {
  const ledger = new Ledger()
  publish(ledger, ['twice', 'fanout', 'once', 'stored-twice'])
  deliver(ledger, ['twice', 'fanout', 'once'], 'q')
  deliver(ledger, ['twice'], 'q', true)
  deliver(ledger, ['fanout'], 'other')
  ledger.finalContents('q', ['stored-twice', 'stored-twice'])
  const r = ledger.report()
  assert.equal(r.duplicated, 2)
  assert.deepEqual(r.ids.duplicated.sort(), ['stored-twice', 'twice'])
  assert.equal(r.deliveries, 5)
  assert.equal(r.redelivered, 1)
  assert.equal(r.delivered, 3)
  assert.equal(ledger.assertSound({ maxDuplicated: 2 }).duplicated, 2)
  assert.throws(() => ledger.assertSound({ maxDuplicated: 1 }), /duplicated 2 \(at most 1 allowed\)/)
  assert.throws(() => ledger.assertSound(), /duplicated 2 \(at most 0 allowed\)/)
})

test('recovered: indeterminate or rejected, yet delivered or found at the end', () => {
  const ledger = new Ledger()
  publish(ledger, ['timed-out-but-delivered', 'timed-out-and-gone'], 'indeterminate')
  publish(ledger, ['rejected-but-stored'], 'rejected')
  publish(ledger, ['nacked-but-delivered'], 'nacked')
  publish(ledger, ['returned'], 'returned')
  deliver(ledger, ['timed-out-but-delivered', 'nacked-but-delivered'])
  ledger.finalContents('q', ['rejected-but-stored'])
  const r = ledger.assertSound()
  assert.equal(r.recovered, 2)
  assert.deepEqual(r.ids.recovered.sort(), ['rejected-but-stored', 'timed-out-but-delivered'])
  // Never confirmed, so not lost either, whatever became of them.
  assert.equal(r.lost, 0)
  assert.equal(r.confirmed, 0)
  assert.deepEqual(r.outcomes, { confirmed: 0, returned: 1, nacked: 1, rejected: 1, indeterminate: 2 })
})

test('a retried id counts once; confirmed on the retry it is confirmed, not recovered', () => {
  const ledger = new Ledger()
  ledger.attempt('r')
  assert.throws(() => ledger.attempt('r'), /previous attempt has no outcome/)
  ledger.outcome('r', 'indeterminate')
  ledger.attempt('r')
  ledger.outcome('r', 'confirmed')
  deliver(ledger, ['r'])
  const r = ledger.assertSound()
  assert.equal(r.attempted, 1)
  assert.equal(r.confirmed, 1)
  assert.equal(r.recovered, 0)
  assert.equal(r.outcomes.confirmed, 1)
  assert.equal(r.outcomes.indeterminate, 0)
})

test('settledTwice: a second outcome for one attempt; an outcome without attempt throws', () => {
  const ledger = new Ledger()
  publish(ledger, ['a'])
  ledger.outcome('a', 'nacked')
  deliver(ledger, ['a'])
  const r = ledger.report()
  assert.equal(r.settledTwice, 1)
  assert.equal(r.outcomes.confirmed, 1, 'the first outcome stands')
  assert.throws(() => ledger.assertSound(), /settledTwice 1 \(must be 0\): a/)
  assert.throws(() => ledger.outcome('never', 'confirmed'), /never attempted/)
})

test('pipelines: an A ack must come after its B confirm, and B must hold the message', () => {
  const ledger = new Ledger()
  publish(ledger, ['ok', 'early', 'unconfirmed', 'missing'])
  deliver(ledger, ['ok', 'early', 'unconfirmed', 'missing'], 'A')
  ledger.confirmedDownstream('ok', 'B')
  ledger.ackedSource('ok')
  ledger.ackedSource('early')
  ledger.confirmedDownstream('early', 'B')
  ledger.ackedSource('unconfirmed')
  ledger.confirmedDownstream('missing', 'B')
  ledger.ackedSource('missing')
  deliver(ledger, ['ok'], 'B')
  ledger.finalContents('B', ['early', 'unconfirmed'])
  const r = ledger.report()
  assert.equal(r.ackedSource, 4)
  assert.deepEqual(r.ids.ackedBeforeConfirm.sort(), ['early', 'unconfirmed'])
  // 'unconfirmed' has no confirm naming its queue: it is looked for in every downstream queue seen.
  assert.deepEqual(r.ids.ackedButMissing, ['missing'])
  // Delivered from A, so by the general figures nothing is lost: the pipeline figures catch it.
  assert.equal(r.lost, 0)
  assert.throws(
    () => ledger.assertSound(),
    /ackedBeforeConfirm 2 .*\n.*ackedButMissing 1 \(must be 0\): missing/,
  )
  assert.ok(ledger.deliveriesOf('ok').every((d, i, all) => i === 0 || (all[i - 1]?.seq ?? 0) < d.seq))
})

test('print writes one block with the figures to stderr and returns the report', (t) => {
  const ledger = new Ledger()
  publish(ledger, ['a', 'b'])
  deliver(ledger, ['a'])
  const written: string[] = []
  t.mock.method(process.stderr, 'write', (chunk: string) => {
    written.push(String(chunk))
    return true
  })
  const r = ledger.print('unit')
  t.mock.restoreAll()
  assert.equal(r.lost, 1)
  assert.equal(written.length, 1)
  assert.match(
    written[0] ?? '',
    /ledger: unit\n {2}attempted 2: confirmed 2.*\n.*\n {2}lost 1 .*\n {2}lost: b/,
  )
})
