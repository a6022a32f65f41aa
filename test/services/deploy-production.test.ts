import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceContext } from '../../src/services/context.ts';
import type { DeployPlan } from '../../src/services/deploy/plan.ts';
import { deployPrompt, rollbackPrompt } from '../../src/services/deploy/production.ts';

/** Only ctx.env matters to the prompts. */
const contextOf = (env: object) => ({ env }) as unknown as ServiceContext;
const prod = contextOf({ name: 'prod', backend: 'gcp', settings: { production: true, service: 'convergence-api' } });
const staging = contextOf({ name: 'staging', backend: 'gcp', settings: { production: false, service: 'convergence-api' } });
const local = contextOf({ name: 'local', backend: 'local', settings: {} });
const plan = (extra: Partial<DeployPlan> = {}) => ({ service: 'convergence-api', image: 'img:1', dryRun: false, ...extra }) as DeployPlan;

describe('production prompts of deploy and rollback', () => {
  it('a deploy to a production environment asks, naming the image, service and environment', () => {
    assert.deepEqual(deployPrompt(prod, plan()), {
      question: 'Deploy img:1 to the PRODUCTION service convergence-api (prod)?',
      action: 'deploy to production environment "prod"',
    });
    assert.match(deployPrompt(prod, plan({ image: undefined, source: '.' }))!.question, /^Deploy \. to/);
  });

  it('a rollback of a production environment asks, naming --to when given', () => {
    assert.deepEqual(rollbackPrompt(prod, { to: 'convergence-api-00002', dryRun: false }), {
      question: 'Roll back the PRODUCTION service convergence-api (prod) to convergence-api-00002?',
      action: 'roll back production environment "prod"',
    });
    assert.equal(rollbackPrompt(prod, { dryRun: false })!.question, 'Roll back the PRODUCTION service convergence-api (prod)?');
  });

  it('nothing is asked for a dry run, an environment not marked production, or a local one', () => {
    assert.equal(deployPrompt(prod, plan({ dryRun: true })), undefined);
    assert.equal(rollbackPrompt(prod, { dryRun: true }), undefined);
    for (const ctx of [staging, local]) {
      assert.equal(deployPrompt(ctx, plan()), undefined);
      assert.equal(rollbackPrompt(ctx, { dryRun: false }), undefined);
    }
  });
});
