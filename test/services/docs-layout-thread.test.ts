/** The lineage laid out on a worker thread: the same layout as on the calling thread, each answer to its own request. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layoutLineage } from '../../src/services/docs/render/graph.ts';
import { layoutLineageOffThread } from '../../src/services/docs/render/layout-thread.ts';
import { demoSiteModel, largeSiteModel } from '../helpers/site-model.ts';

describe('layoutLineageOffThread', () => {
  it('lays the graph out exactly as the calling thread does', async () => {
    const { lineage } = demoSiteModel();
    assert.deepEqual(await layoutLineageOffThread(lineage), await layoutLineage(lineage));
  });

  it('answers overlapping requests each with its own graph, on one kept thread', async () => {
    const small = demoSiteModel().lineage;
    const large = largeSiteModel(20, 100).lineage;
    const [a, b, c] = await Promise.all([layoutLineageOffThread(large), layoutLineageOffThread(small), layoutLineageOffThread(large)]);
    assert.equal(a.nodes.length, large.nodes.length);
    assert.equal(b.nodes.length, small.nodes.length);
    assert.deepEqual(c, a);
    assert.deepEqual(b.nodes.map((n) => n.node.id).sort(), small.nodes.map((n) => n.id).sort());
  });

  it('reports a graph the layout cannot take as an error, and keeps working after it', async () => {
    const { lineage } = demoSiteModel();
    const broken = { ...lineage, nodes: [...lineage.nodes, { ...lineage.nodes[0]!, label: undefined as unknown as string }] };
    await assert.rejects(layoutLineageOffThread(broken), /laying out the lineage failed/);
    assert.equal((await layoutLineageOffThread(lineage)).nodes.length, lineage.nodes.length);
  });
});
