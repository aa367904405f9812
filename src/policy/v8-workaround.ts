// Node 20's V8 (11.3) can abort the whole process ("Fatal error ... unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when optimized code that inlined a JS-to-Wasm call deoptimizes.
// Cedar runs as Wasm and is called on every request, so the server met it: once while STOW loaded 20,000
// instances, and in about 1 of 13 runs of test/security/policy-matrix.test.ts on a loaded machine (0 of 42 runs
// without the inlining). Turning that one TurboFan inlining off costs a few nanoseconds per Cedar call, which
// spends 0.4 ms inside Wasm anyway. Set before the Cedar module is loaded, and before any caller is optimized.
// Revisit when the project moves to a Node whose V8 fixes it (issue 8).

import v8 from 'node:v8';

v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls');
