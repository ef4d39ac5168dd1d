import { rmSync } from 'node:fs';

/** Removes what package-setup.ts made: the package and the framework's scratch folder. */
export default function removePackage(): void {
  for (const dir of [process.env.STEDI_SLS_PACKAGE_DIR, process.env.STEDI_SLS_SCRATCH])
    if (dir) rmSync(dir, { recursive: true, force: true });
}
