import { cp, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertTenantId } from '../domain/ids.ts';

/**
 * Tenant templates of `init --template`: pipelines of real APIs a tenant points at its own
 * accounts. Unlike `init --example` they come with no data and no secrets: `pipeline validate`
 * lists the secrets each needs until `tenant credentials set` stores them.
 */
export const TEMPLATES = {
  'ai-usage': {
    summary: 'AI usage analytics from the Anthropic usage report, Cursor daily usage and a Google Sheets team directory',
    pipelineId: 'p_ai_usage',
    /** Secrets the template's sources name: what to store in each, and how it is piped in (stdin, never argv). */
    secrets: {
      anthropic_admin_key: { what: 'an Anthropic Admin API key (sk-ant-admin...)', pipe: `printf '%s' "$ANTHROPIC_ADMIN_KEY" |` },
      cursor_api_key: { what: 'a Cursor Admin API key (key_...)', pipe: `printf '%s' "$CURSOR_API_KEY" |` },
      google_sheets_sa_key: {
        what: 'the JSON key of a Google service account the team directory sheet is shared with',
        pipe: 'cat service-account.json |',
      },
    },
    /** Pipeline params to set before the first run. */
    params: { team_directory_sheet_id: 'the id of the team directory spreadsheet (from its URL)' },
  },
} as const;

export type TemplateName = keyof typeof TEMPLATES;
export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[];
export const DEFAULT_TEMPLATE_TENANT = 'acme_corp';

const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

export interface InstalledTemplate {
  template: TemplateName;
  tenantId: string;
  created: string[];
  kept: string[];
}

/** The tenant a template is written for, checked before anything is written. */
export const templateTenantId = (tenantId: string | undefined): string => assertTenantId(tenantId ?? DEFAULT_TEMPLATE_TENANT);

/** The files of a template folder, relative to it, depth first. */
async function templateFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/**
 * Copies a template's configs into configs/<tenantId>/ of the workspace at `root`. Never
 * overwrites: a file already there is kept (and reported), so a tenant's edits survive a second run.
 */
export async function installTemplate(
  root: string,
  template: TemplateName,
  tenantId = DEFAULT_TEMPLATE_TENANT,
): Promise<InstalledTemplate> {
  assertTenantId(tenantId);
  const source = path.join(TEMPLATES_DIR, template);
  const created: string[] = [];
  const kept: string[] = [];
  for (const file of (await templateFiles(source)).sort()) {
    const relative = path.join('configs', tenantId, file);
    const target = path.join(root, relative);
    await mkdir(path.dirname(target), { recursive: true });
    try {
      await cp(path.join(source, file), target, { errorOnExist: true, force: false });
      created.push(relative);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ERR_FS_CP_EEXIST') throw err;
      kept.push(relative);
    }
  }
  return { template, tenantId, created, kept };
}
