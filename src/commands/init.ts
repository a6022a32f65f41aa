import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { CI_PROVIDERS, type CiProvider, type CiWorkflowResult } from '../services/ci-workflow.ts';
import { initWorkspace, type InitResult } from '../services/init.ts';
import {
  DEFAULT_TEMPLATE_TENANT,
  TEMPLATE_NAMES,
  TEMPLATES,
  templateTenantId,
  type InstalledTemplate,
  type TemplateName,
} from '../services/template.ts';

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a convergence workspace (convergence.yaml, configs/, .gitignore entries).';
  static override description =
    'Never overwrites an existing file: files already there are kept and reported. Safe to run again in an existing workspace to add missing .gitignore entries.';
  static override examples = [
    '<%= config.bin %> init demo',
    '<%= config.bin %> init demo --example',
    '<%= config.bin %> init demo --template ai-usage --tenant acme_corp',
    '<%= config.bin %> init . --ci github',
    '<%= config.bin %> init . --json',
  ];
  static override flags = {
    example: Flags.boolean({
      description: 'Also add the demo tenant acme_corp: an AI usage analytics pipeline with a week of sample usage data',
      exclusive: ['template'],
    }),
    template: Flags.string({
      description:
        'Also add a tenant template, pipelines of real APIs to point at your accounts (ai-usage: Anthropic usage report, Cursor daily usage, a Google Sheets team directory)',
      options: TEMPLATE_NAMES,
      exclusive: ['example'],
    }),
    tenant: Flags.string({
      description: `Tenant the template is written for, in configs/<tenant>/ (default ${DEFAULT_TEMPLATE_TENANT})`,
      dependsOn: ['template'],
    }),
    ci: Flags.string({
      description:
        'Also write a CI workflow (github: .github/workflows/convergence.yml) that validates pipelines on pull requests and deploys with a canary to the staging (develop) and production (main, after approval) environments of convergence.yaml, authenticated by Workload Identity Federation',
      options: [...CI_PROVIDERS],
    }),
  };
  static override args = { dir: Args.string({ description: 'Directory of the workspace (created if missing)', default: '.' }) };

  public async run(): Promise<InitResult & { template?: InstalledTemplate; ci?: CiWorkflowResult }> {
    // A bad tenant id is refused before the workspace is written.
    if (this.flags.template) templateTenantId(this.flags.tenant);
    const result = await initWorkspace(this.args.dir, { example: this.flags.example });
    if (this.flags.example) {
      const { installExample } = await import('../services/example.ts');
      const example = await installExample(result.root);
      result.created.push(...example.created);
      result.kept.push(...example.kept);
    }
    const template = this.flags.template ? await this.installTemplate(result, this.flags.template as TemplateName) : undefined;
    for (const file of result.created) this.log(`created  ${file}`);
    for (const file of result.updated) this.log(`updated  ${file}`);
    for (const file of result.kept) this.log(`kept     ${file} (already exists)`);
    this.log(`\nWorkspace ready in ${result.root}. Next: cd into it and run \`convergence bootstrap\`.`);
    if (this.flags.example) {
      this.log(
        'Then: `convergence tenant create acme_corp --name "ACME Corp"` and `convergence pipeline run p_usage_daily --tenant acme_corp`.',
      );
    }
    if (template) this.logTemplateSteps(template);
    const ci = this.flags.ci ? await this.writeCi(result, this.flags.ci as CiProvider) : undefined;
    return { ...result, ...(template ? { template } : {}), ...(ci ? { ci } : {}) };
  }

  /** The CI workflow, reported created or kept, then what the operator does before it can deploy. */
  private async writeCi(result: InitResult, provider: CiProvider): Promise<CiWorkflowResult> {
    const { writeCiWorkflow } = await import('../services/ci-workflow.ts');
    const ci = await writeCiWorkflow(result.root, provider, this.config.version);
    (ci.written ? result.created : result.kept).push(ci.file);
    this.log(`${ci.written ? 'created ' : 'kept    '} ${ci.file}${ci.written ? '' : ' (already exists)'}`);
    this.log(`\nBefore the workflow can deploy to ${ci.staging.name} and ${ci.production.name}:`);
    for (const line of ci.nextSteps) this.log(line);
    return ci;
  }

  private async installTemplate(result: InitResult, name: TemplateName): Promise<InstalledTemplate> {
    const { installTemplate } = await import('../services/template.ts');
    const template = await installTemplate(result.root, name, this.flags.tenant);
    result.created.push(...template.created);
    result.kept.push(...template.kept);
    return template;
  }

  /** What a template needs before its first run: the tenant, its secrets (from stdin) and its params. */
  private logTemplateSteps({ template, tenantId }: InstalledTemplate): void {
    const { secrets, params, pipelineId } = TEMPLATES[template];
    this.log(`Then: \`convergence tenant create ${tenantId} --name "..."\`, and store the secrets of the ${template} template:`);
    for (const [name, { what, pipe }] of Object.entries(secrets)) {
      this.log(`  ${pipe} convergence tenant credentials set ${tenantId} ${name}   # ${what}`);
    }
    for (const [name, what] of Object.entries(params)) {
      this.log(`Set ${name} in configs/${tenantId}/pipelines/${pipelineId}.yml: ${what}.`);
    }
    this.log(
      `Check with \`convergence pipeline validate --tenant ${tenantId}\`, then \`convergence pipeline run ${pipelineId} --tenant ${tenantId}\`.`,
    );
  }
}
