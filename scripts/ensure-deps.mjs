// Installs dependencies on a fresh clone (or after package-lock.json changed), so `npm start`
// and `npm test` are each one command. Plain JS: it runs before TypeScript is installed.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const marker = 'node_modules/.package-lock.json';
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync('package-lock.json').mtimeMs) {
  process.stdout.write('carelens: installing dependencies…\n');
  // `npm install`, not `npm ci`: with this npm's omit-lockfile-registry-resolved setting the lock
  // leaves other platforms' optional binaries (swc) unversioned, which `npm ci` rejects as out of sync.
  execSync('npm install --no-audit --no-fund', { stdio: 'inherit' });
}
