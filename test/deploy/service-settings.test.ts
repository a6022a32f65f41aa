/** The service and job settings of a cloud environment: convergence.yaml checks them, deploy turns them into Run fields. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workspaceConfigSchema } from '../../src/config/schema.ts';
import type { ConvergenceError } from '../../src/lib/errors.ts';
import { settingsDiff, wantedJobSettings, wantedServiceSettings } from '../../src/services/deploy/settings.ts';

/** The staging environment as convergence.yaml would hold it, with `extra` keys. */
const parse = (extra: Record<string, unknown>) =>
  workspaceConfigSchema.safeParse({ environments: { staging: { project: 'demo-project', service: 'api', ...extra } } });

/** The messages of a refused environment. */
const problems = (extra: Record<string, unknown>) => {
  const parsed = parse(extra);
  assert.equal(parsed.success, false, `${JSON.stringify(extra)} should be refused`);
  return parsed.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
};

const staging = (extra: Record<string, unknown>) => {
  const parsed = parse(extra);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  const env = parsed.data.environments.staging;
  assert.ok(env && env.backend !== 'local');
  return env;
};

describe('service settings in convergence.yaml', () => {
  it('accepts every key in its documented form, private by default', () => {
    const env = staging({
      cpu: '1000m',
      memory: '2Gi',
      min_instances: 1,
      max_instances: 10,
      concurrency: 1000,
      timeout: '3600s',
      ingress: 'internal',
      task_timeout: '24h',
      max_retries: 0,
    });
    assert.equal(env.public, false);
    assert.deepEqual(wantedServiceSettings('staging', env), {
      cpu: '1000m',
      memory: '2Gi',
      minInstances: 1,
      maxInstances: 10,
      concurrency: 1000,
      timeoutSeconds: 3600,
      ingress: 'INGRESS_TRAFFIC_INTERNAL_ONLY',
      public: false,
    });
    assert.deepEqual(wantedJobSettings(env, 'img:1'), {
      image: 'img:1',
      cpu: '1000m',
      memory: '2Gi',
      taskTimeoutSeconds: 86_400,
      maxRetries: 0,
    });
  });

  it('refuses each malformed value with what it expects', () => {
    assert.match(problems({ cpu: 'two' }), /cpu: expected a CPU limit like "1", "2" or "1000m"/);
    assert.match(problems({ memory: '2GB' }), /memory: expected a memory limit like "512Mi" or "2Gi"/);
    assert.match(problems({ concurrency: 0 }), /concurrency: expected 1 to 1000 requests per instance/);
    assert.match(problems({ concurrency: 1001 }), /concurrency: expected 1 to 1000 requests per instance/);
    assert.match(problems({ timeout: '2h' }), /timeout: expected a duration between 1s and 3600s/);
    assert.match(problems({ timeout: '300' }), /timeout: expected a duration in whole seconds, minutes or hours/);
    assert.match(problems({ task_timeout: '8d' }), /task_timeout: expected a duration in whole seconds, minutes or hours/);
    assert.match(problems({ ingress: 'private' }), /ingress: expected all, internal or internal-and-cloud-load-balancing/);
    assert.match(problems({ max_retries: 11 }), /max_retries: expected 0 to 10 retries/);
    assert.match(problems({ min_instances: -1 }), /min_instances: expected 0 or more instances/);
    assert.match(problems({ public: 'yes' }), /public/);
  });

  it('refuses more minimum than maximum instances when deploy reads them (exit 2)', () => {
    const env = staging({ min_instances: 3, max_instances: 2 });
    assert.throws(
      () => wantedServiceSettings('staging', env),
      (err: ConvergenceError) =>
        err.exitCode === 2 &&
        /min_instances \(3\) is more than max_instances \(2\)/.test(err.message) &&
        /convergence.yaml/.test(err.suggestion ?? ''),
    );
  });

  it('diffs only what changes, and what a missing resource would get', () => {
    assert.deepEqual(settingsDiff({ cpu: '1000m', memory: '512Mi', public: false }, { cpu: '2', memory: '512Mi', public: false }), [
      { setting: 'cpu', current: '1000m', wanted: '2' },
    ]);
    assert.deepEqual(settingsDiff(undefined, { image: 'img:2' }), [{ setting: 'image', current: undefined, wanted: 'img:2' }]);
  });

  it('reads a CPU limit in cores: "1000m" and "1", "2000m" and "2", "500m" and "0.5" are no change', () => {
    for (const [current, wanted] of [
      ['1000m', '1'],
      ['1', '1000m'],
      ['2000m', '2'],
      ['500m', '0.5'],
      ['1.0', '1'],
    ]) {
      assert.deepEqual(settingsDiff({ cpu: current }, { cpu: wanted }), [], `${current} → ${wanted}`);
    }
    // What changes is shown and sent as convergence.yaml spells it.
    assert.deepEqual(settingsDiff({ cpu: '1000m' }, { cpu: '2' }), [{ setting: 'cpu', current: '1000m', wanted: '2' }]);
    assert.deepEqual(settingsDiff({ cpu: '1' }, { cpu: '500m' }), [{ setting: 'cpu', current: '1', wanted: '500m' }]);
    assert.deepEqual(settingsDiff(undefined, { image: 'img:1', cpu: '1000m' }), [
      { setting: 'image', current: undefined, wanted: 'img:1' },
      { setting: 'cpu', current: undefined, wanted: '1000m' },
    ]);
  });
});
