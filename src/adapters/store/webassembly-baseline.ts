/**
 * Imported for its effect: V8 compiles WebAssembly in this process with its baseline compiler
 * (Liftoff) only. By default it also recompiles hot functions with TurboFan in the background; for the
 * embedded store (PGlite, PostgreSQL compiled to WebAssembly) that took ~0.8 s of CPU in the first
 * seconds and kept 50–70 MB more resident. The store's queries, a few rows at a time, take the same
 * time without it; only queries over thousands of rows run up to twice as slow (README, "Embedded
 * store"). The flag is process-wide and read as modules compile: main.ts imports this first, before
 * any module compiles WebAssembly (set later, the start-up peak was ~20 MB higher), and database.ts
 * imports it for the other entry points.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
