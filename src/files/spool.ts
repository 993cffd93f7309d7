import path from 'node:path';
import type { Config } from '../config';

/** Where uploads are spooled while they arrive, and where decompression keeps its temporary files. */
export const spoolDir = (config: Pick<Config, 'dataDir'>) => path.join(config.dataDir, 'spool');
