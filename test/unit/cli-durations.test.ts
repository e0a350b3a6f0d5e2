// The durations of `--retry-delays`: whole numbers with ms, s, m or h (a bare number is ms), a list
// separated by commas; anything else is a usage error that names the bad item.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvalidArgumentError } from 'commander'
import {
  durationListFlag,
  formatDuration,
  maxDurationMs,
  parseDuration,
  parseDurationList,
} from '../../src/cli/durations.ts'
import { ExitCode, exitCodeOf, UsageError } from '../../src/cli/exit-codes.ts'

test('units ms, s, m, h; a bare number is ms', () => {
  assert.equal(parseDuration('500ms'), 500)
  assert.equal(parseDuration('1s'), 1_000)
  assert.equal(parseDuration('10s'), 10_000)
  assert.equal(parseDuration('1m'), 60_000)
  assert.equal(parseDuration('2h'), 7_200_000)
  assert.equal(parseDuration('250'), 250)
  assert.equal(parseDuration(String(maxDurationMs)), maxDurationMs)
})

test('a list, in order, spaces around items allowed', () => {
  assert.deepEqual(parseDurationList('500ms,1s,10s,1m,2h'), [500, 1_000, 10_000, 60_000, 7_200_000])
  assert.deepEqual(parseDurationList('200ms, 400ms'), [200, 400])
  assert.deepEqual(parseDurationList('5s'), [5_000])
})

test('bad items: a usage error (exit 2) that names the item', () => {
  const cases: [string, RegExp][] = [
    ['1s,10x,1m', /'10x' is not a duration/],
    ['1s,,1m', /'' is not a duration/],
    ['', /'' is not a duration/],
    ['1.5s', /'1.5s' is not a duration/],
    ['-1s', /'-1s' is not a duration/],
    ['1 s', /'1 s' is not a duration/],
    ['1S', /'1S' is not a duration/],
    ['1s,0ms', /'0ms' is not a delay: at least 1 ms/],
    ['1000h', /'1000h' is too long/],
    [Array(101).fill('1s').join(','), /at most 100 delays, got 101/],
  ]
  for (const [text, message] of cases) {
    assert.throws(
      () => parseDurationList(text),
      (err: unknown) => err instanceof UsageError && message.test(err.message),
      text,
    )
    assert.equal(exitCodeOf(catchError(() => parseDurationList(text))), ExitCode.USAGE)
    // As a commander flag parser: commander reports it with the flag's name, exit 2.
    assert.throws(
      () => durationListFlag(text),
      (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
    )
  }
})

test('written back the short way', () => {
  assert.equal(formatDuration(200), '200ms')
  assert.equal(formatDuration(1_500), '1500ms')
  assert.equal(formatDuration(1_000), '1s')
  assert.equal(formatDuration(90_000), '90s')
  assert.equal(formatDuration(60_000), '1m')
  assert.equal(formatDuration(7_200_000), '2h')
})

function catchError(run: () => unknown): unknown {
  try {
    run()
  } catch (err) {
    return err
  }
  return undefined
}
