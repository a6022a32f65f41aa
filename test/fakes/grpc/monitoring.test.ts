/** The Cloud Monitoring and log-based metrics fakes refuse what Google refuses, through the official clients. */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { v2 as logging } from '@google-cloud/logging';
import {
  AlertPolicyServiceClient,
  NotificationChannelServiceClient,
  UptimeCheckServiceClient,
  type protos,
} from '@google-cloud/monitoring';
import { accessTokenFor } from './caller.ts';
import { fakeClientOptions } from './client-options.ts';
import { LogMetricsFake } from './logging-metrics.ts';
import { MonitoringFake } from './monitoring.ts';
import { startGrpcFake, type GrpcFake } from './server.ts';
import { status } from './status.ts';

const PROJECT = 'projects/demo-project';
const REQUESTS = 'resource.type="cloud_run_revision" AND metric.type="run.googleapis.com/request_count"';

let grpc: GrpcFake;
let monitoring: MonitoringFake;
let logMetrics: LogMetricsFake;
let policies: AlertPolicyServiceClient;
let channels: NotificationChannelServiceClient;
let uptime: UptimeCheckServiceClient;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- @google-cloud/logging types its GAPIC clients as any
let metrics: any;

async function refused(call: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await assert.rejects(call, (err: { code?: number; details?: string }) => {
    assert.equal(err.code, code, err.details);
    if (message) assert.match(err.details ?? '', message);
    return true;
  });
}

const threshold = (filter: string, extra: Record<string, unknown> = {}) => ({
  displayName: 'c',
  conditionThreshold: {
    filter,
    aggregations: [{ alignmentPeriod: { seconds: 300 }, perSeriesAligner: 'ALIGN_RATE', crossSeriesReducer: 'REDUCE_SUM' }],
    comparison: 'COMPARISON_GT',
    thresholdValue: 1,
    duration: { seconds: 60 },
    ...extra,
  },
});

/** Loosely built on purpose: the requests below carry what Google must refuse. */
const policy = (condition: object, extra: Record<string, unknown> = {}) =>
  ({
    name: PROJECT,
    alertPolicy: { displayName: 'p', combiner: 'OR', conditions: [condition], ...extra },
  }) as protos.google.monitoring.v3.ICreateAlertPolicyRequest;

const counter = (name: string, filter = 'resource.type="cloud_run_job" AND severity>=ERROR') => ({
  parent: PROJECT,
  metric: {
    name,
    filter,
    labelExtractors: { tenant_id: 'EXTRACT(labels.tenant_id)' },
    metricDescriptor: { metricKind: 'DELTA', valueType: 'INT64', labels: [{ key: 'tenant_id', valueType: 'STRING' }] },
  },
});

before(async () => {
  logMetrics = new LogMetricsFake();
  monitoring = new MonitoringFake({ logMetrics });
  grpc = await startGrpcFake({ logMetrics, monitoring });
  policies = new AlertPolicyServiceClient(fakeClientOptions(grpc.port));
  channels = new NotificationChannelServiceClient(fakeClientOptions(grpc.port));
  uptime = new UptimeCheckServiceClient(fakeClientOptions(grpc.port));
  metrics = new logging.MetricsServiceV2Client(fakeClientOptions(grpc.port));
});
after(async () => {
  await Promise.all([policies.close(), channels.close(), uptime.close(), metrics.close()]);
  await grpc.stop();
});

describe('log-based metrics fake', () => {
  it('creates, reads by URL-encoded name, refuses duplicates and unknown names', async () => {
    await metrics.createLogMetric(counter('team/errors'));
    const [got] = await metrics.getLogMetric({ metricName: `${PROJECT}/metrics/team%2Ferrors` });
    assert.equal(got.metricDescriptor.type, 'logging.googleapis.com/user/team/errors');
    await refused(metrics.createLogMetric(counter('team/errors')), status.ALREADY_EXISTS);
    await refused(metrics.getLogMetric({ metricName: `${PROJECT}/metrics/team/errors` }), status.INVALID_ARGUMENT, /URL-encoded/);
    await refused(metrics.getLogMetric({ metricName: `${PROJECT}/metrics/nothing` }), status.NOT_FOUND);
  });

  it('refuses an invalid filter, a bad id and an extractor without its label', async () => {
    await refused(
      metrics.createLogMetric(counter('bad_filter', 'severity>=ERROR AND (jsonPayload.x="1"')),
      status.INVALID_ARGUMENT,
      /parenthes/,
    );
    await refused(metrics.createLogMetric(counter('bad_eq', 'jsonPayload.status=="FAILED"')), status.INVALID_ARGUMENT, /==/);
    await refused(metrics.createLogMetric(counter('dangling', 'severity>=ERROR AND')), status.INVALID_ARGUMENT);
    await refused(metrics.createLogMetric(counter('/leading')), status.INVALID_ARGUMENT, /metric name/);
    const noLabel = counter('no_label');
    noLabel.metric.metricDescriptor.labels = [];
    await refused(metrics.createLogMetric(noLabel), status.INVALID_ARGUMENT, /no matching label/);
  });

  it('refuses a caller without the permission', async () => {
    await refused(
      metrics.listLogMetrics(
        { parent: PROJECT },
        { otherArgs: { headers: { authorization: `Bearer ${accessTokenFor('sa@demo-project.iam.gserviceaccount.com')}` } } },
      ),
      status.PERMISSION_DENIED,
    );
  });
});

describe('Cloud Monitoring fake', () => {
  it('refuses a threshold without a filter, an unknown metric type and a metric on the wrong resource', async () => {
    await refused(policies.createAlertPolicy(policy(threshold(''))), status.INVALID_ARGUMENT, /filter is required/);
    await refused(
      policies.createAlertPolicy(policy(threshold('metric.type="logging.googleapis.com/user/not_made_yet"'))),
      status.INVALID_ARGUMENT,
      /Cannot find metric/,
    );
    await refused(
      policies.createAlertPolicy(policy(threshold('resource.type="gce_instance" AND metric.type="run.googleapis.com/request_count"'))),
      status.INVALID_ARGUMENT,
      /not written for monitored resource/,
    );
  });

  it('refuses aggregations that do not fit the metric, and durations off the minute', async () => {
    const latencies = 'resource.type="cloud_run_revision" AND metric.type="run.googleapis.com/request_latencies"';
    await refused(policies.createAlertPolicy(policy(threshold(latencies))), status.INVALID_ARGUMENT, /ALIGN_RATE is not valid/);
    await refused(
      policies.createAlertPolicy(
        policy(
          threshold(latencies, {
            aggregations: [{ alignmentPeriod: { seconds: 300 }, perSeriesAligner: 'ALIGN_DELTA', crossSeriesReducer: 'REDUCE_SUM' }],
          }),
        ),
      ),
      status.INVALID_ARGUMENT,
      /threshold compares numbers/,
    );
    await refused(
      policies.createAlertPolicy(policy(threshold(REQUESTS, { duration: { seconds: 90 } }))),
      status.INVALID_ARGUMENT,
      /multiple of 60/,
    );
    await refused(
      policies.createAlertPolicy(
        policy(threshold(REQUESTS, { aggregations: [{ alignmentPeriod: { seconds: 30 }, perSeriesAligner: 'ALIGN_RATE' }] })),
      ),
      status.INVALID_ARGUMENT,
      /alignment_period/,
    );
  });

  it('refuses a policy naming a channel that does not exist, and keeps a named channel from being deleted', async () => {
    await refused(
      policies.createAlertPolicy(policy(threshold(REQUESTS), { notificationChannels: [`${PROJECT}/notificationChannels/404`] })),
      status.INVALID_ARGUMENT,
      /does not exist/,
    );
    const [channel] = await channels.createNotificationChannel({
      name: PROJECT,
      notificationChannel: { type: 'webhook_tokenauth', displayName: 'hook', labels: { url: 'https://example.com/hook' } },
    });
    const [created] = await policies.createAlertPolicy(policy(threshold(REQUESTS), { notificationChannels: [channel.name] }));
    assert.match(String(created.conditions![0]!.name), /\/conditions\//);
    await refused(channels.deleteNotificationChannel({ name: channel.name }), status.FAILED_PRECONDITION, /referenced/);
    await refused(
      channels.updateNotificationChannel({ notificationChannel: { name: channel.name, type: 'pubsub' }, updateMask: { paths: ['type'] } }),
      status.INVALID_ARGUMENT,
      /cannot be updated/,
    );
    await refused(
      policies.updateAlertPolicy({ alertPolicy: { name: created.name }, updateMask: { paths: ['no_such_field'] } }),
      status.INVALID_ARGUMENT,
      /update mask/,
    );
  });

  it('refuses channels of unknown types, with missing or foreign labels, and bad user labels', async () => {
    const create = (notificationChannel: object) => channels.createNotificationChannel({ name: PROJECT, notificationChannel });
    await refused(create({ type: 'carrier_pigeon', labels: {} }), status.INVALID_ARGUMENT, /Unknown notification channel type/);
    await refused(create({ type: 'webhook_tokenauth', labels: {} }), status.INVALID_ARGUMENT, /requires the label "url"/);
    await refused(create({ type: 'pubsub', labels: { topic: 'events' } }), status.INVALID_ARGUMENT, /projects\/demo-project\/topics/);
    await refused(create({ type: 'email', labels: { email_address: 'a@b.c', extra: 'x' } }), status.INVALID_ARGUMENT, /Unknown label/);
    await refused(
      create({ type: 'email', labels: { email_address: 'a@b.c' }, userLabels: { Owner: 'x' } }),
      status.INVALID_ARGUMENT,
      /user_labels key/,
    );
  });

  it('lets an uptime check update only the fields Google allows', async () => {
    const [check] = await uptime.createUptimeCheckConfig({
      parent: PROJECT,
      uptimeCheckConfig: {
        displayName: 'health',
        monitoredResource: { type: 'uptime_url', labels: { project_id: 'demo-project', host: 'svc.a.run.app' } },
        httpCheck: { path: '/health', port: 443, useSsl: true },
        period: { seconds: 60 },
        timeout: { seconds: 10 },
      },
    });
    await uptime.updateUptimeCheckConfig({
      uptimeCheckConfig: { name: check.name, displayName: 'renamed' },
      updateMask: { paths: ['display_name'] },
    });
    await refused(
      uptime.updateUptimeCheckConfig({
        uptimeCheckConfig: { name: check.name, period: { seconds: 300 } },
        updateMask: { paths: ['period'] },
      }),
      status.INVALID_ARGUMENT,
      /cannot be updated/,
    );
    await refused(
      uptime.createUptimeCheckConfig({
        parent: PROJECT,
        uptimeCheckConfig: {
          displayName: 'x',
          monitoredResource: { type: 'uptime_url', labels: { project_id: 'demo-project', host: 'h' } },
          httpCheck: { path: '/' },
          period: { seconds: 120 },
          timeout: { seconds: 10 },
        },
      }),
      status.INVALID_ARGUMENT,
      /period/,
    );
  });

  it('answers PERMISSION_DENIED per caller', async () => {
    const account = 'viewer@demo-project.iam.gserviceaccount.com';
    monitoring.grantedTo.set(account, new Set(['monitoring.alertPolicies.list']));
    const as = { otherArgs: { headers: { authorization: `Bearer ${accessTokenFor(account)}` } } };
    await policies.listAlertPolicies({ name: PROJECT }, as);
    await refused(
      policies.createAlertPolicy(policy(threshold(REQUESTS)), as),
      status.PERMISSION_DENIED,
      /monitoring\.alertPolicies\.create/,
    );
  });
});
