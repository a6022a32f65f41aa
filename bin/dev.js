#!/usr/bin/env node
// Development runner: executes the TypeScript sources directly (Node strips the types), no build.
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
