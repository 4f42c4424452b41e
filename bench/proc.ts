/**
 * @module bench/proc
 * Reads a relay's cost from /proc: CPU time and memory of a process group (the relay and any children it
 * forks, as socat and websockify do), so one-process and process-per-connection relays are measured alike.
 */
import { readdirSync, readFileSync } from 'node:fs'

const CLOCK_TICKS_PER_S = 100 // getconf CLK_TCK on Linux x86-64

export interface GroupUsage {
  /** utime + stime of every live member, plus the reaped children's time (cutime + cstime) of each. */
  cpuSeconds: number
  /** The system-time part of `cpuSeconds` (stime + cstime). */
  sysSeconds: number
  /** Page faults (minflt + cminflt, majflt + cmajflt), counted like `cpuSeconds`. */
  minorFaults: number
  majorFaults: number
  /** Sum of VmRSS over the members, bytes. */
  rssBytes: number
  /** Sum of Pss (proportional set size: shared pages split between sharers), bytes. */
  pssBytes: number
  /** VmHWM (peak RSS) of the group leader, bytes. */
  leaderHwmBytes: number
  processes: number
}

/** Fields of /proc/<pid>/stat after the `(comm)` part, which may itself contain spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined // exited meanwhile
  }
}

function statusKiB(pid: number, key: string): number {
  try {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    )
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

function pssKiB(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

/** Members of process group `pgid` (a relay spawned detached leads its own group). */
export function groupMembers(pgid: number): number[] {
  const members: number[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    // After ")": state(0) ppid(1) pgrp(2)
    if (statFields(pid)?.[2] === String(pgid)) members.push(pid)
  }
  return members
}

/** CPU and memory of the group led by `pgid`. */
export function groupUsage(pgid: number, withPss = true): GroupUsage {
  let ticks = 0
  let sysTicks = 0
  let minor = 0
  let major = 0
  let rssKiB = 0
  let pss = 0
  const members = groupMembers(pgid)
  for (const pid of members) {
    const f = statFields(pid)
    if (!f) continue
    // utime(11) stime(12) cutime(13) cstime(14), counted from the field after ")".
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    sysTicks += Number(f[12]) + Number(f[14])
    // minflt(7) cminflt(8) majflt(9) cmajflt(10)
    minor += Number(f[7]) + Number(f[8])
    major += Number(f[9]) + Number(f[10])
    rssKiB += statusKiB(pid, 'VmRSS')
    if (withPss) pss += pssKiB(pid)
  }
  return {
    cpuSeconds: ticks / CLOCK_TICKS_PER_S,
    sysSeconds: sysTicks / CLOCK_TICKS_PER_S,
    minorFaults: minor,
    majorFaults: major,
    rssBytes: rssKiB * 1024,
    pssBytes: pss * 1024,
    leaderHwmBytes: statusKiB(pgid, 'VmHWM') * 1024,
    processes: members.length,
  }
}
