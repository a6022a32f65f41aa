/**
 * `monitoring setup|list`: an environment's log-based metrics, notification channels, uptime
 * check and alert policies, reconciled like `scheduler setup`. Setup reads everything first, plans
 * each resource (create, update with a mask of only the fields that differ, replace where a field
 * cannot be updated, delete what convergence made and no longer wants), asks before writing to a
 * production environment, then writes in dependency order: metrics and channels before the
 * policies that name them, deletions last. Resources without convergence's user labels are never
 * written; channels someone attached by hand to a convergence policy stay on it.
 */
import { cloudEnv, requiredSetting, type CloudEnv } from '../../backends/factory.ts';
import type {
  AlertPolicySpec,
  LogMetricSpec,
  Monitoring,
  NotificationChannelSpec,
  UptimeCheckSpec,
} from '../../backends/monitoring/port.ts';
import { usageError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { planChannels, type ChannelPlan } from './channels.ts';
import {
  audienceWants,
  desiredLogMetrics,
  desiredPolicies,
  desiredUptimeCheck,
  ID_LABEL,
  isOwned,
  METRIC_PREFIX,
  UPTIME_ID,
  type PolicyPlan,
} from './desired.ts';
import { diffChannel, diffLogMetric, diffPolicy, diffUptimeCheck, type Diff, type FieldChange } from './diff.ts';

type ResourceKind = 'log_metric' | 'notification_channel' | 'uptime_check' | 'alert_policy';
type SetupAction = 'create' | 'update' | 'replace' | 'delete' | 'unchanged' | 'skipped';

export interface ResourceResult {
  kind: ResourceKind;
  /** convergence's id: the metric id, or the convergence_id label. */
  id: string;
  displayName: string;
  /** Full resource name; null for one not created (yet). */
  name: string | null;
  action: SetupAction;
  changes: FieldChange[];
  updateMask: string[];
  /** Why a target got no channel, or why the uptime check was left out. */
  reason?: string;
}

export interface MonitoringSetupResult {
  env: string;
  project: string;
  service: string;
  dryRun: boolean;
  resources: ResourceResult[];
  created: number;
  updated: number;
  replaced: number;
  deleted: number;
  unchanged: number;
  skipped: number;
}

interface ProductionPrompt {
  question: string;
  action: string;
}

export interface MonitoringSetupOptions {
  dryRun?: boolean;
  /**
   * Asked with the planned changes before the first write to a production environment; throw to
   * refuse. Without it such a setup is refused.
   */
  confirm?: (prompt: ProductionPrompt, planned: MonitoringSetupResult) => Promise<void>;
}

/** Everything read before planning. */
interface Found {
  metrics: Map<string, LogMetricSpec>;
  channels: NotificationChannelSpec[];
  uptimeChecks: UptimeCheckSpec[];
  policies: AlertPolicySpec[];
}

interface Planned {
  env: CloudEnv;
  service: string;
  serviceUri: string | undefined;
  channels: ChannelPlan[];
  found: Found;
}

const idOf = (userLabels: Record<string, string>) => userLabels[ID_LABEL] ?? '';
const lastSegment = (name: string) => name.slice(name.lastIndexOf('/') + 1);
const owned = <T extends { userLabels: Record<string, string> }>(items: T[], envName: string) =>
  items.filter((item) => isOwned(item.userLabels, envName));

function actionOf(found: unknown, diff: Diff): SetupAction {
  if (found === undefined) return 'create';
  if (diff.immutable.length) return 'replace';
  return diff.changes.length ? 'update' : 'unchanged';
}

function resource(
  kind: ResourceKind,
  id: string,
  displayName: string,
  name: string | undefined,
  action: SetupAction,
  diff?: Diff,
): ResourceResult {
  return {
    kind,
    id,
    displayName,
    name: name || null,
    action,
    changes: diff?.changes ?? [],
    updateMask: action === 'update' ? (diff?.mask ?? []) : [],
  };
}

const deletion = (kind: ResourceKind, item: { name?: string; displayName: string; userLabels: Record<string, string> }): ResourceResult =>
  resource(kind, idOf(item.userLabels), item.displayName, item.name, 'delete');

function requireCloud(ctx: ServiceContext): CloudEnv {
  const env = cloudEnv(ctx.env);
  if (!env) {
    throw usageError(`the local environment "${ctx.env.name}" has no Cloud Monitoring`, {
      suggestion: 'pass --env <name> of an environment on Google Cloud in convergence.yaml',
    });
  }
  return env;
}

async function serviceUriOf(ctx: ServiceContext, service: string): Promise<string | undefined> {
  const platform = await ctx.backends.runPlatform!();
  try {
    return (await platform.getService(service))?.uri || undefined;
  } finally {
    await platform.close();
  }
}

async function readFound(monitoring: Monitoring): Promise<Found> {
  const metrics = new Map<string, LogMetricSpec>();
  for (const want of desiredLogMetrics()) {
    const found = await monitoring.getLogMetric(want.id);
    if (found) metrics.set(want.id, found);
  }
  const [channels, uptimeChecks, policies] = await Promise.all([
    monitoring.listNotificationChannels(),
    monitoring.listUptimeChecks(),
    monitoring.listAlertPolicies(),
  ]);
  return { metrics, channels, uptimeChecks, policies };
}

async function plan(ctx: ServiceContext, monitoring: Monitoring): Promise<Planned> {
  const env = requireCloud(ctx);
  const service = requiredSetting(env, 'service', "the alert policies on the Cloud Run service's requests and its uptime check");
  const serviceUri = await serviceUriOf(ctx, service);
  const channels = await planChannels(env.name, monitoring.project, env.settings.notifications ?? [], () => ctx.backends.secrets());
  return { env, service, serviceUri, channels, found: await readFound(monitoring) };
}

function metricResults(found: Found): Array<{ want: LogMetricSpec; result: ResourceResult }> {
  return desiredLogMetrics().map((want) => {
    const current = found.metrics.get(want.id);
    const diff = diffLogMetric(current, want);
    return { want, result: resource('log_metric', want.id, want.id, current ? want.id : undefined, actionOf(current, diff), diff) };
  });
}

interface ChannelStep {
  plan: ChannelPlan;
  current: NotificationChannelSpec | undefined;
  result: ResourceResult;
}

function channelSteps(p: Planned): { steps: ChannelStep[]; stale: NotificationChannelSpec[] } {
  const mine = owned(p.found.channels, p.env.name);
  const steps = p.channels.map((plan): ChannelStep => {
    const current = mine.find((c) => idOf(c.userLabels) === plan.id);
    if (!plan.spec) {
      const result = resource('notification_channel', plan.id, plan.where, current?.name, 'skipped');
      return { plan, current, result: { ...result, reason: plan.skipped ?? '' } };
    }
    const diff = diffChannel(current, plan.spec, plan.secretLabels);
    return {
      plan,
      current,
      result: resource('notification_channel', plan.id, plan.spec.displayName, current?.name, actionOf(current, diff), diff),
    };
  });
  const wanted = new Set(steps.filter((s) => s.plan.spec).map((s) => s.plan.id));
  return { steps, stale: mine.filter((c) => !wanted.has(idOf(c.userLabels))) };
}

interface UptimeStep {
  want: UptimeCheckSpec | undefined;
  current: UptimeCheckSpec | undefined;
  result: ResourceResult;
  stale: UptimeCheckSpec[];
}

function uptimeStep(p: Planned): UptimeStep {
  const mine = owned(p.found.uptimeChecks, p.env.name);
  const current = mine.find((c) => idOf(c.userLabels) === UPTIME_ID);
  if (!p.serviceUri) {
    // Left as found: a service that is not deployed yet (or at all) gives no host to check.
    const result = resource('uptime_check', UPTIME_ID, `${p.service}/health`, current?.name, 'skipped');
    return {
      want: undefined,
      current,
      stale: [],
      result: { ...result, reason: `Cloud Run service ${p.service} has no URL yet: deploy it, then run setup again` },
    };
  }
  const healthPath = p.env.settings.canary?.health_path ?? '/health';
  const want = desiredUptimeCheck(p.env.name, p.serviceUri, healthPath, p.env.settings.public);
  const diff = diffUptimeCheck(current, want);
  return {
    want,
    current,
    stale: mine.filter((c) => c !== current),
    result: resource('uptime_check', UPTIME_ID, want.displayName, current?.name, actionOf(current, diff), diff),
  };
}

/** Channel names and the uptime check id the policies name: real ones once written, placeholders in a plan. */
interface PolicyRefs {
  channelName(step: ChannelStep): string | undefined;
  uptimeCheckId: string | undefined;
}

function policyResults(p: Planned, channels: ChannelStep[], refs: PolicyRefs) {
  const mine = owned(p.found.policies, p.env.name);
  const ownChannelNames = new Set(owned(p.found.channels, p.env.name).map((c) => c.name));
  const plans = desiredPolicies({ envName: p.env.name, service: p.service, uptimeCheckId: refs.uptimeCheckId });
  const results = plans.map(({ id, audience, spec }: PolicyPlan) => {
    const current = mine.find((c) => idOf(c.userLabels) === id);
    const managed = channels.filter((s) => s.plan.spec && audienceWants(audience, s.plan.events)).map((s) => refs.channelName(s));
    // Channels someone attached by hand stay; convergence's own follow the targets.
    const kept = (current?.notificationChannels ?? []).filter((name) => !ownChannelNames.has(name));
    const want: AlertPolicySpec = { ...spec, notificationChannels: [...new Set([...kept, ...managed.filter((n): n is string => !!n)])] };
    const diff = diffPolicy(current, want);
    return { want, current, result: resource('alert_policy', id, want.displayName, current?.name, actionOf(current, diff), diff) };
  });
  const wanted = new Set(plans.map((pl) => pl.id));
  return { results, stale: mine.filter((c) => !wanted.has(idOf(c.userLabels))) };
}

const planRefs = (uptime: UptimeStep): PolicyRefs => ({
  channelName: (step) => step.current?.name ?? `(new channel "${step.plan.spec!.displayName}")`,
  uptimeCheckId: !uptime.want
    ? uptime.current && lastSegment(uptime.current.name ?? '')
    : uptime.current && uptime.result.action !== 'replace'
      ? lastSegment(uptime.current.name ?? '')
      : '(new uptime check)',
});

function summarize(p: Planned, project: string, dryRun: boolean, resources: ResourceResult[]): MonitoringSetupResult {
  const count = (action: SetupAction) => resources.filter((r) => r.action === action).length;
  return {
    env: p.env.name,
    project,
    service: p.service,
    dryRun,
    resources,
    created: count('create'),
    updated: count('update'),
    replaced: count('replace'),
    deleted: count('delete'),
    unchanged: count('unchanged'),
    skipped: count('skipped'),
  };
}

function planResult(p: Planned, project: string, dryRun: boolean): MonitoringSetupResult {
  const metrics = metricResults(p.found);
  const { steps, stale: staleChannels } = channelSteps(p);
  const uptime = uptimeStep(p);
  const policies = policyResults(p, steps, planRefs(uptime));
  return summarize(p, project, dryRun, [
    ...metrics.map((m) => m.result),
    ...steps.map((s) => s.result),
    ...staleChannels.map((c) => deletion('notification_channel', c)),
    uptime.result,
    ...uptime.stale.map((c) => deletion('uptime_check', c)),
    ...policies.results.map((r) => r.result),
    ...policies.stale.map((c) => deletion('alert_policy', c)),
  ]);
}

const hasChanges = (result: MonitoringSetupResult) => result.created + result.updated + result.replaced + result.deleted > 0;

/** Writes the plan; policies are planned again with the names the channels and uptime check got. */
async function apply(monitoring: Monitoring, p: Planned): Promise<ResourceResult[]> {
  const results: ResourceResult[] = [];
  for (const { want, result } of metricResults(p.found)) {
    if (result.action === 'create') await monitoring.createLogMetric(want);
    else if (result.action === 'update' || result.action === 'replace') await monitoring.updateLogMetric(want);
    results.push({ ...result, name: want.id });
  }

  const { steps, stale: staleChannels } = channelSteps(p);
  const channelNames = new Map<string, string>();
  const replacedChannels: string[] = [];
  for (const step of steps) {
    const { spec } = step.plan;
    let name = step.current?.name;
    if (spec && (step.result.action === 'create' || step.result.action === 'replace')) {
      name = (await monitoring.createNotificationChannel(spec)).name;
      if (step.result.action === 'replace' && step.current?.name) replacedChannels.push(step.current.name);
    } else if (spec && step.result.action === 'update') {
      await monitoring.updateNotificationChannel({ ...spec, name: name! }, step.result.updateMask);
    }
    if (name && spec) channelNames.set(step.plan.id, name);
    results.push({ ...step.result, name: spec ? (name ?? null) : step.result.name });
  }

  const uptime = uptimeStep(p);
  let uptimeName = uptime.current?.name;
  if (uptime.want && (uptime.result.action === 'create' || uptime.result.action === 'replace')) {
    uptimeName = (await monitoring.createUptimeCheck(uptime.want)).name;
  } else if (uptime.want && uptime.result.action === 'update') {
    await monitoring.updateUptimeCheck({ ...uptime.want, name: uptimeName! }, uptime.result.updateMask);
  }
  results.push({ ...uptime.result, name: uptimeName ?? null });

  const refs: PolicyRefs = {
    channelName: (step) => channelNames.get(step.plan.id),
    uptimeCheckId: uptimeName ? lastSegment(uptimeName) : undefined,
  };
  const policies = policyResults(p, steps, refs);
  for (const { want, current, result } of policies.results) {
    let name = current?.name;
    if (result.action === 'create') name = (await monitoring.createAlertPolicy(want)).name;
    // Every policy field can be updated in place, so a policy is never replaced.
    else if (result.action === 'update') await monitoring.updateAlertPolicy({ ...want, name: name! }, result.updateMask);
    results.push({ ...result, name: name ?? null });
  }

  // Deletions last: a channel leaves every policy before it goes.
  for (const policy of policies.stale) {
    await monitoring.deleteAlertPolicy(policy.name!);
    results.push(deletion('alert_policy', policy));
  }
  for (const channel of staleChannels) {
    await monitoring.deleteNotificationChannel(channel.name!);
    results.push(deletion('notification_channel', channel));
  }
  for (const name of replacedChannels) await monitoring.deleteNotificationChannel(name);
  if (uptime.result.action === 'replace' && uptime.current?.name) await monitoring.deleteUptimeCheck(uptime.current.name);
  for (const check of uptime.stale) {
    await monitoring.deleteUptimeCheck(check.name!);
    results.push(deletion('uptime_check', check));
  }
  return results;
}

async function withMonitoring<R>(ctx: ServiceContext, work: (monitoring: Monitoring) => Promise<R>): Promise<R> {
  requireCloud(ctx);
  const monitoring = await ctx.backends.monitoring!();
  try {
    return await work(monitoring);
  } finally {
    await monitoring.close();
  }
}

export async function setupMonitoring(ctx: ServiceContext, options: MonitoringSetupOptions = {}): Promise<MonitoringSetupResult> {
  const dryRun = options.dryRun ?? false;
  return withMonitoring(ctx, async (monitoring) => {
    const planned = await plan(ctx, monitoring);
    for (const channel of planned.channels)
      if (channel.skipped) ctx.warn(`${channel.where} (${channel.id}) gets no alert channel: ${channel.skipped}`);
    const preview = planResult(planned, monitoring.project, dryRun);
    for (const r of preview.resources) if (r.kind === 'uptime_check' && r.reason) ctx.warn(`no uptime check: ${r.reason}`);
    if (dryRun || !hasChanges(preview)) return preview;
    if (planned.env.settings.production) {
      const prompt = {
        question: `Change the monitoring of the PRODUCTION environment ${planned.env.name} (${preview.created} to create, ${preview.updated} to update, ${preview.replaced} to replace, ${preview.deleted} to delete)?`,
        action: `change the monitoring of production environment "${planned.env.name}"`,
      };
      if (!options.confirm) throw usageError(`refusing to ${prompt.action} without confirmation`, { suggestion: 'pass --yes to confirm' });
      await options.confirm(prompt, preview);
    }
    return summarize(planned, monitoring.project, false, await apply(monitoring, planned));
  });
}

interface ListedResource {
  kind: ResourceKind;
  id: string;
  displayName: string;
  name: string | null;
  /** ENABLED or DISABLED as found; NOT_CREATED for one setup would create. */
  state: 'ENABLED' | 'DISABLED' | 'PRESENT' | 'NOT_CREATED';
  /** Policies: the channels they notify. */
  notificationChannels?: string[];
}

export interface MonitoringListResult {
  env: string;
  project: string;
  resources: ListedResource[];
}

/** What exists of the environment's monitoring, and what setup would still create (NOT_CREATED). */
export async function listMonitoring(ctx: ServiceContext): Promise<MonitoringListResult> {
  return withMonitoring(ctx, async (monitoring) => {
    const env = requireCloud(ctx);
    const [metrics, channels, checks, policies] = await Promise.all([
      monitoring.listLogMetrics(METRIC_PREFIX),
      monitoring.listNotificationChannels(),
      monitoring.listUptimeChecks(),
      monitoring.listAlertPolicies(),
    ]);
    const resources: ListedResource[] = [];
    for (const want of desiredLogMetrics()) {
      const found = metrics.find((m) => m.id === want.id);
      resources.push({
        kind: 'log_metric',
        id: want.id,
        displayName: want.description,
        name: found ? want.id : null,
        state: found ? 'PRESENT' : 'NOT_CREATED',
      });
    }
    const enabled = (on: boolean) => (on ? 'ENABLED' : 'DISABLED');
    for (const c of owned(channels, env.name)) {
      resources.push({
        kind: 'notification_channel',
        id: idOf(c.userLabels),
        displayName: c.displayName,
        name: c.name ?? null,
        state: enabled(c.enabled),
      });
    }
    const mineChecks = owned(checks, env.name);
    for (const c of mineChecks)
      resources.push({ kind: 'uptime_check', id: idOf(c.userLabels), displayName: c.displayName, name: c.name ?? null, state: 'PRESENT' });
    if (mineChecks.length === 0)
      resources.push({ kind: 'uptime_check', id: UPTIME_ID, displayName: '/health', name: null, state: 'NOT_CREATED' });
    const minePolicies = owned(policies, env.name);
    const service = env.settings.service ?? '';
    for (const { id, spec } of desiredPolicies({ envName: env.name, service, uptimeCheckId: '' })) {
      const found = minePolicies.find((p) => idOf(p.userLabels) === id);
      resources.push({
        kind: 'alert_policy',
        id,
        displayName: found?.displayName ?? spec.displayName,
        name: found?.name ?? null,
        state: found ? enabled(found.enabled) : 'NOT_CREATED',
        notificationChannels: found?.notificationChannels ?? [],
      });
    }
    return { env: env.name, project: monitoring.project, resources };
  });
}
