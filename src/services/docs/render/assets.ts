import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The site's own script and style, shipped with the package beside src/ (or dist/). */
const OWN_ASSETS = new URL('../../../../assets/docs-site/', import.meta.url);
const OWN_FILES = ['site.css', 'site.js'];
/** uPlot's browser build and style, copied as they are. */
const UPLOT_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

/** `assets/<file>` → content: everything the pages load; nothing comes from the network. */
export async function siteAssets(): Promise<Map<string, Buffer>> {
  const require = createRequire(import.meta.url);
  const uplotDist = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  const files = new Map<string, Buffer>();
  for (const file of OWN_FILES) files.set(`assets/${file}`, await readFile(new URL(file, OWN_ASSETS)));
  for (const file of UPLOT_FILES) files.set(`assets/${file}`, await readFile(path.join(uplotDist, file)));
  return files;
}
