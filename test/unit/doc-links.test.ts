// Every relative link in the README and docs/ leads to a file of the repository, and no page
// points at something a reader of the package does not have: a file outside the repository, the
// team's working notes, an issue number.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { docPages, linkTarget, readPage, repoRoot } from '../helpers/markdown.ts'

const pages = docPages()

test('relative links in README.md and docs/ resolve, inside the repository', () => {
  const broken: string[] = []
  for (const page of pages) {
    for (const [, target] of readPage(page).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!target || /^[a-z]+:/i.test(target) || target.startsWith('#')) continue
      const path = linkTarget(page, target)
      if (path.startsWith('..') || !existsSync(join(repoRoot, path))) broken.push(`${page}: ${target}`)
    }
  }
  assert.deepEqual(broken, [])
})

/** What only the team has: its working notes, the folder they live in, its issue tracker. */
const privatePointers = [
  /\.\.\/shared\b/,
  /\b(DESIGN|RELIABILITY|BENCHMARKS|STYLE)\.md\b/,
  /\bissues? *#?\d+/i,
  /(^|[\s(])#\d+\b/,
]

function pointersIn(page: string, text: string): string[] {
  return text
    .split('\n')
    .flatMap((line, i) =>
      privatePointers.some((p) => p.test(line)) ? [`${page}:${i + 1}: ${line.trim().slice(0, 100)}`] : [],
    )
}

test('no page points at a file outside the repository or at an issue number', () => {
  assert.deepEqual(
    pages.flatMap((page) => pointersIn(page, readPage(page))),
    [],
  )
})

test('the pointer check catches the working notes, the shared folder and issue numbers', () => {
  // Assembled at run time, so this file does not itself hold the pointers it plants.
  const note = ['RELIABILITY', 'md'].join('.')
  const planted = [
    'see ../shared/notes',
    `as ${note} says`,
    `fixed in ${'issue'} ${12}`,
    'see #42',
    'a plain line',
  ]
  assert.equal(pointersIn('planted.md', planted.join('\n')).length, 4)
})
