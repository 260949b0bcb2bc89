// Installs dependencies on a fresh clone (or after package-lock.json changed), so `npm start`
// and `npm test` are each one command. Plain JS: it runs before TypeScript is installed.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const marker = 'node_modules/.package-lock.json';
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync('package-lock.json').mtimeMs) {
  process.stdout.write('carelens: installing dependencies (npm ci)…\n');
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' });
}
