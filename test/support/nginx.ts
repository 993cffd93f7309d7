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
