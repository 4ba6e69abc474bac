#!/usr/bin/env node
// submit.cjs: submits benchmark jobs to the ORIGINAL correctomatic (correctomatic/correction-runner,
// BullMQ on Redis), as its README describes a job: {work_id, image, file, callback} added to the
// BullMQ queue `pending_corrections`. Ours (not the original's code); bench/bench.py runs it.
//
//   node submit.cjs --app DIR --redis-port P --jobs N --image IMG --file PATH --callback URL
//                   [--tag T] [--signal PID] [--ready-timeout S]
//
// bullmq is loaded from DIR/node_modules (the bench's installed copy of the original), so the
// client is the one the original uses. Before submitting it waits until each of the three queues
// has a worker connected (the starter, the completer and the notifier are up), then sends SIGUSR1
// to --signal (ct-bench-load --mode sink: the time counts from there) and adds the N jobs in one
// addBulk. Prints {"jobs": N, "add_seconds": S, "ready_seconds": S} on stdout.
'use strict'
const path = require('path')

function args(argv) {
  const a = { tag: 'o', readyTimeout: 60 }
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    if (argv[i + 1] === undefined) throw new Error(`${argv[i]} needs a value`)
    a[k] = argv[i + 1]
  }
  for (const k of ['app', 'redisPort', 'jobs', 'image', 'file', 'callback'])
    if (!a[k]) throw new Error(`--${k.replace(/[A-Z]/g, c => '-' + c.toLowerCase())} is required`)
  return a
}

async function main() {
  const a = args(process.argv)
  const { Queue } = require(path.join(path.resolve(a.app), 'node_modules', 'bullmq'))
  const connection = { host: '127.0.0.1', port: Number(a.redisPort) }
  const names = ['pending_corrections', 'running_corrections', 'finished_corrections']
  const queues = names.map(n => new Queue(n, { connection }))
  const t0 = Date.now()
  try {
    for (;;) {
      const counts = await Promise.all(queues.map(q => q.getWorkersCount()))
      if (counts.every(c => c > 0)) break
      if (Date.now() - t0 > Number(a.readyTimeout) * 1000)
        throw new Error(`workers not connected after ${a.readyTimeout}s: ` +
                        names.map((n, i) => `${n} ${counts[i]}`).join(', '))
      await new Promise(r => setTimeout(r, 100))
    }
    const ready = (Date.now() - t0) / 1000
    const jobs = []
    for (let i = 0; i < Number(a.jobs); i++)
      jobs.push({ name: 'bench', data: { work_id: `${a.tag}-${i}`, image: a.image, file: a.file,
                                         callback: a.callback } })
    if (a.signal) process.kill(Number(a.signal), 'SIGUSR1')
    const t1 = process.hrtime.bigint()
    await queues[0].addBulk(jobs)
    const add = Number(process.hrtime.bigint() - t1) / 1e9
    process.stdout.write(JSON.stringify({ jobs: jobs.length, add_seconds: add,
                                          ready_seconds: ready }) + '\n')
  } finally {
    await Promise.all(queues.map(q => q.close()))
  }
}

main().catch(e => {
  process.stderr.write(`submit.cjs: ${e.stack || e}\n`)
  process.exit(1)
})
