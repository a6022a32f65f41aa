#!/usr/bin/env node
// Development runner: executes the TypeScript sources directly (Node strips the types), no build.
import { execute } from '@oclif/core';
import { reportStrayRejections } from './stray-rejections.js';

reportStrayRejections();
await execute({ development: true, dir: import.meta.url });
