import { readFile } from 'node:fs/promises';

import { describeError, HttpClient } from './http-client.js';

export type RssSource = { kind: 'pid'; pid: number } | { kind: 'metrics'; url: URL; token: string | undefined } | { kind: 'none' };

export type RssSample = { mib: number } | { error: string };

const BYTES_PER_MIB = 1024 * 1024;

export function describeRssSource(source: RssSource): string {
  switch (source.kind) {
    case 'pid':
      return `VmRSS of pid ${source.pid}`;
    case 'metrics':
      return `process_resident_memory_bytes at ${source.url.href}`;
    case 'none':
      return 'not available (pass --metrics-url)';
  }
}

export async function sampleRss(source: RssSource): Promise<RssSample | undefined> {
  try {
    switch (source.kind) {
      case 'pid':
        return { mib: await readProcRss(source.pid) };
      case 'metrics':
        return { mib: await fetchMetricsRss(source.url, source.token) };
      case 'none':
        return undefined;
    }
  } catch (err) {
    return { error: describeError(err) };
  }
}

async function readProcRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

async function fetchMetricsRss(url: URL, token: string | undefined): Promise<number> {
  const client = new HttpClient(url, token, 'text/plain');
  try {
    const result = await client.get('');
    if (result.status !== 200) throw new Error(`HTTP ${result.status} from ${url.href}`);
    const match = /^process_resident_memory_bytes(?:\{[^}]*\})?\s+(\S+)/m.exec(result.body);
    const bytes = match ? Number(match[1]) : NaN;
    if (!Number.isFinite(bytes)) throw new Error(`no process_resident_memory_bytes sample at ${url.href}`);
    return bytes / BYTES_PER_MIB;
  } finally {
    client.close();
  }
}
