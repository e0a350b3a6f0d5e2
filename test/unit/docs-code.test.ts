// Every fenced code block of the README and docs/ is checked, so what a reader copies works:
// a TypeScript or JavaScript block is a file of examples/ (which the integration tests run) or is
// type-checked against the source; a shell block names commands, npm scripts, CLI subcommands and
// flags, and files that exist; a JSON block parses. A `text` block is output, not code.
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Command } from 'commander'
import ts from 'typescript'
import { program } from '../../src/cli/program.ts'
import { type CodeBlock, codeBlocks, docPages, repoRoot } from '../helpers/markdown.ts'

const allBlocks = docPages().flatMap(codeBlocks)
const where = (block: CodeBlock): string => `${block.page}:${block.line}`

const scriptLangs: Record<string, string> = { ts: '.ts', js: '.mjs', cjs: '.cjs' }
const checkedLangs = new Set([...Object.keys(scriptLangs), 'sh', 'json', 'text'])

const examples = new Map(
  readdirSync(join(repoRoot, 'examples'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => [readFileSync(join(repoRoot, 'examples', f), 'utf8').trimEnd(), f]),
)

test('every code block says what it is: ts, js, cjs, sh, json or text', () => {
  const untagged = allBlocks.filter((b) => !checkedLangs.has(b.lang)).map((b) => `${where(b)} '${b.lang}'`)
  assert.deepEqual(untagged, [])
})

test('every file of examples/ is run by the examples tests', () => {
  const runner = readFileSync(join(repoRoot, 'test/integration/examples.test.ts'), 'utf8')
  const unrun = [...examples.values()].filter((file) => !runner.includes(`'${file}'`))
  assert.deepEqual(unrun, [])
})

/** Type-checks each block as a module of its own; returns the diagnostics, by page and line. */
function typeCheck(blocks: readonly CodeBlock[]): string[] {
  const dir = join(repoRoot, 'node_modules/.cache/lapinmq-docs-code')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const origin = new Map<string, { block: CodeBlock; offset: number }>()
  for (const [i, block] of blocks.entries()) {
    const file = join(dir, `block-${i}${scriptLangs[block.lang]}`)
    const prelude = block.prelude === '' ? '' : `${block.prelude}\n`
    // `export {}` makes a block without imports a module too, so blocks never share globals.
    const moduleMark = block.lang === 'cjs' ? '' : '\nexport {}\n'
    writeFileSync(file, `${prelude}${block.code}\n${moduleMark}`)
    origin.set(file, { block, offset: prelude.split('\n').length - 1 })
  }
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.Preserve,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: ['node'],
    strict: true,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    paths: { lapinmq: [join(repoRoot, 'src/index.ts')] },
  }
  const program = ts.createProgram([...origin.keys()], options)
  return ts.getPreEmitDiagnostics(program).flatMap((d) => {
    const source = d.file && origin.get(d.file.fileName)
    if (!d.file || !source)
      return [`(outside the blocks) ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`]
    const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0)
    const at = line < source.offset ? 'prelude' : String(source.block.line + line - source.offset)
    return [`${source.block.page}:${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`]
  })
}

test('TypeScript and JavaScript blocks are an examples/ file or type-check against the source', () => {
  const scripts = allBlocks.filter((b) => b.lang in scriptLangs)
  const toCheck = scripts.filter((b) => b.prelude !== '' || !examples.has(b.code.trimEnd()))
  assert.ok(toCheck.length > 0, 'no block to type-check: the test would prove nothing')
  assert.deepEqual(typeCheck(toCheck), [])
})

test('the type check catches a block that misuses the API', () => {
  const bad: CodeBlock = {
    page: 'planted.md',
    line: 10,
    lang: 'ts',
    prelude: "import { Publisher } from 'lapinmq'",
    code: "const p = new Publisher({ kind: 'fast' })\nawait p.sendMessageToQueue('q', 42)",
  }
  const diagnostics = typeCheck([bad])
  assert.equal(diagnostics.length, 2, diagnostics.join('\n'))
  assert.match(diagnostics[0] as string, /^planted\.md:10: .*"fast"/)
  assert.match(diagnostics[1] as string, /^planted\.md:11: .*number/)
})

/** Commands a shell block may use beyond npm, node and lapinmq. */
const otherCommands = new Set(
  'rabbitmqctl rabbitmq-plugins apt-get sudo export cd git bash head jq wc seq echo cat kill curl sleep systemctl tsc'.split(
    ' ',
  ),
)
const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>
}

/** The command lines of a shell block: continuations joined, comments and env prefixes dropped. */
function shellCommands(code: string): string[][] {
  return code
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .flatMap((line) => line.split(/&&|\|\||;|\|/))
    .map((segment) => segment.match(/'[^']*'|"[^"]*"|\S+/g) ?? [])
    .map((words) => {
      let first = 0
      while (first < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[first] as string)) first++
      return words.slice(first)
    })
    .filter((words) => words.length > 0)
}

function lapinmqProblems(args: readonly string[]): string[] {
  const [name, ...rest] = args
  if (name === undefined || name === '--help' || name === '--version') return []
  let command = program().commands.find((c: Command) => c.name() === name)
  if (!command) return [`no lapinmq command '${name}'`]
  const path = [name]
  // A command with subcommands (`declare queue`): the flags are the subcommand's.
  while (command.commands.length > 0) {
    const sub: Command | undefined = command.commands.find((c: Command) => c.name() === rest[0])
    if (!sub) return [`lapinmq ${path.join(' ')} has no subcommand '${rest[0] ?? ''}'`]
    command = sub
    path.push(rest.shift() as string)
  }
  const known = new Set(['--help', '-h'])
  for (const option of command.options) {
    if (option.long) known.add(option.long)
    if (option.short) known.add(option.short)
  }
  return rest
    .filter((word) => /^--?[A-Za-z]/.test(word))
    .map((word) => word.split('=')[0] as string)
    .filter((flag) => !known.has(flag))
    .map((flag) => `lapinmq ${path.join(' ')} has no flag ${flag}`)
}

function commandProblems(words: readonly string[]): string[] {
  const [head, ...args] = words as [string, ...string[]]
  if (head === 'npm') {
    const [verb, script] = args
    if (verb === 'run') return script && script in packageJson.scripts ? [] : [`no npm script '${script}'`]
    if (verb === 'start') return lapinmqProblems(['demo', ...args.slice(args[1] === '--' ? 2 : 1)])
    return ['ci', 'install', 'i', 'test', 'pack', 'init', 'pkg'].includes(verb ?? '')
      ? []
      : [`npm ${verb} is not checked`]
  }
  if (head === 'npx' && args[0] === 'lapinmq') return lapinmqProblems(args.slice(1))
  if (head === 'npx' && ['tsc', 'tsx', 'typedoc'].includes(args[0] ?? '')) return []
  if (head === 'lapinmq') return lapinmqProblems(args)
  if (head === 'node' || head === 'bash') {
    const files = args.filter((a) => /^[\w./-]+\.(ts|js|mjs|cjs|sh)$/.test(a) || a.startsWith('.ci/'))
    return files.filter((f) => !existsInRepo(f)).map((f) => `${head}: no file ${f}`)
  }
  return otherCommands.has(head) ? [] : [`'${head}' is not a command the docs may use`]
}

function existsInRepo(file: string): boolean {
  try {
    readFileSync(join(repoRoot, file))
    return true
  } catch {
    return false
  }
}

test('shell blocks use npm scripts, lapinmq commands and flags, and files that exist', () => {
  const problems = allBlocks
    .filter((b) => b.lang === 'sh')
    .flatMap((b) =>
      shellCommands(b.code).flatMap((words) => commandProblems(words).map((p) => `${where(b)}: ${p}`)),
    )
  assert.deepEqual(problems, [])
})

test('the shell check catches a missing script, an unknown flag or subcommand and a missing file', () => {
  const planted =
    'npm run no-such-script\nRABBITMQ_URL=x npx lapinmq consume q --no-such-flag | head\nnode examples/none.ts\n' +
    'lapinmq declare queue q --type quorum --nope\nlapinmq declare queues q'
  const problems = shellCommands(planted).flatMap(commandProblems)
  assert.deepEqual(problems, [
    "no npm script 'no-such-script'",
    'lapinmq consume has no flag --no-such-flag',
    'node: no file examples/none.ts',
    'lapinmq declare queue has no flag --nope',
    "lapinmq declare has no subcommand 'queues'",
  ])
})

test('JSON blocks parse', () => {
  const broken = allBlocks
    .filter((b) => b.lang === 'json')
    .flatMap((b) => {
      try {
        JSON.parse(b.code)
        return []
      } catch (err) {
        return [`${where(b)}: ${(err as Error).message}`]
      }
    })
  assert.deepEqual(broken, [])
})
