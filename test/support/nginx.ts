import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** Arguments that run Debian's nginx in the foreground on a config written by scripts/nginx-loopback-conf.sh. */
export const loopbackNginxArgs = (dir: string) => [
  '-p',
  dir,
  '-c',
  path.join(dir, 'nginx.conf'),
  '-e',
  path.join(dir, 'logs', 'error.log'),
  '-g',
  'daemon off;',
];

/** Debian's nginx, which `make deploy-tools` installs; null when it is not there. */
export function findNginx(): string | null {
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    if (spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0) return bin;
  }
  return null;
}
