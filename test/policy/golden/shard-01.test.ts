// Golden shard 1 of 3 (principals 0 to 19): see ../golden-fixture.ts.
import { runGoldenShard } from '../golden-fixture.js';

runGoldenShard(0);
