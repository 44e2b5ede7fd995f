// How many workers `--workers auto` means: one per CPU this process may use.
// os.availableParallelism() follows the CPU affinity mask but not a
// container's CPU limit (a CFS quota), so a pod limited to 2 CPUs on a
// 64-core node would start 64 workers; the cgroup quota caps it.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** CPUs allowed by the cgroup's CFS quota (v2 `cpu.max`, else v1), rounded up; undefined when unlimited. */
export function cgroupCpuLimit(root = '/sys/fs/cgroup'): number | undefined {
  const v2 = read(`${root}/cpu.max`);
  let quota: number;
  let period: number;
  if (v2 !== undefined) {
    const [q, p] = v2.split(/\s+/);
    if (q === 'max') return undefined;
    quota = Number(q);
    period = Number(p ?? 100_000);
  } else {
    quota = Number(read(`${root}/cpu/cpu.cfs_quota_us`) ?? -1);
    period = Number(read(`${root}/cpu/cpu.cfs_period_us`) ?? 100_000);
  }
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** One worker per usable CPU: the affinity mask, capped by the container's CPU limit. */
export function autoWorkers(): number {
  const cpus = availableParallelism();
  const limit = cgroupCpuLimit();
  return Math.max(1, limit === undefined ? cpus : Math.min(cpus, limit));
}
