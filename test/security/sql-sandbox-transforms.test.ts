import { sqlSandboxSuite } from './sql-sandbox-suite.ts';

sqlSandboxSuite('transforms');
