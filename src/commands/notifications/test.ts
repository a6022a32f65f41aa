import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { Delivery } from '../../services/notifications/deliver.ts';
import type { TestSendReport } from '../../services/notifications/test-send.ts';

export default class NotificationsTest extends BaseCommand<typeof NotificationsTest> {
  static override summary =
    "Send a sample notification to every target of an environment (or of one pipeline) and show each one's outcome.";
  static override description = `Targets are the environment's \`notifications:\` in convergence.yaml, or with --tenant and --pipeline that pipeline's own list (which replaces the environment's). Every target gets the sample, an event named "test", whatever events it subscribes to: webhooks a signed JSON document, Slack a message, Pub/Sub topics a message with the attributes event, env, tenant_id, pipeline_id and status. Secrets, address rules, retries (3 attempts within 10 s, Retry-After honoured) and the record in notification_deliveries are those of real events.

Real events: run_failed, run_timeout, dq_failed (a run failed by a data-quality rule), dq_warned, run_recovered (the first COMPLETE after a failure), quota_exhausted, dispatch_failed and deploy_rolled_back; a run's notifications never change its exit code.

Exit codes: 0 every target answered, 2 a target was refused by its configuration (a missing secret, a tenant URL that is not https or not public, a topic the environment does not name), 7 a target refused the credentials (HTTP 401/403, PERMISSION_DENIED), 1 any other failure.`;
  static override examples = [
    '<%= config.bin %> notifications test',
    '<%= config.bin %> notifications test --env prod',
    '<%= config.bin %> notifications test --tenant acme_corp --pipeline p_usage_daily --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: "Tenant of --pipeline: test that pipeline's targets", dependsOn: ['pipeline'] }),
    pipeline: Flags.string({ description: 'Pipeline whose notification targets to test', dependsOn: ['tenant'] }),
  };

  public async run(): Promise<TestSendReport> {
    const ctx = await this.context();
    const { sendTestNotifications } = await import('../../services/notifications/test-send.ts');
    const report = await sendTestNotifications(ctx, {
      ...(this.flags.tenant ? { tenantId: this.flags.tenant } : {}),
      ...(this.flags.pipeline ? { pipelineId: this.flags.pipeline } : {}),
    });
    this.log(`Test notification to the targets of ${report.scope}:`);
    this.log(
      formatTable(report.deliveries, [
        { header: 'TYPE', get: (d) => d.targetType },
        { header: 'TARGET', get: (d) => d.target },
        { header: 'FROM', get: (d) => d.origin },
        { header: 'OUTCOME', get: (d) => d.outcome },
        { header: 'ATTEMPTS', get: (d) => d.attempts },
        { header: 'DETAIL', get: (d) => d.detail },
      ]),
    );
    if (!report.ok) throw deliveryFailure(report);
    return report;
  }
}

/** The command's error when a target did not get the sample: a configuration refusal first, then credentials. */
function deliveryFailure(report: TestSendReport): ConvergenceError {
  const failed = report.deliveries.filter((d) => d.outcome !== 'DELIVERED');
  const names = failed.map((d) => `${d.targetType} ${d.target}`).join(', ');
  const data = { report };
  if (failed.some((d) => d.outcome === 'REFUSED')) {
    return new ConvergenceError(
      'NOTIFICATION_REFUSED',
      ExitCode.usage,
      `${failed.length} of ${report.deliveries.length} targets not reached: ${names}`,
      {
        suggestion:
          "fix the targets the DETAIL column names in convergence.yaml or the pipeline file (`convergence pipeline validate` checks a pipeline's)",
        data,
      },
    );
  }
  if (failed.some((d: Delivery) => d.auth)) {
    return new ConvergenceError(
      'NOTIFICATION_AUTH',
      ExitCode.auth,
      `${failed.length} of ${report.deliveries.length} targets refused our credentials: ${names}`,
      {
        suggestion:
          'check the signing secret or webhook URL, or grant roles/pubsub.publisher on the topic to the account convergence runs as',
        data,
      },
    );
  }
  return new ConvergenceError(
    'NOTIFICATION_FAILED',
    ExitCode.unexpected,
    `${failed.length} of ${report.deliveries.length} targets not reached: ${names}`,
    {
      suggestion: 'see the DETAIL column; a target that answered 5xx or not at all may be down',
      data,
    },
  );
}
