// Golden shard 2 of 3 (principals 20 to 39): see ../golden-fixture.ts.
import { runGoldenShard } from '../golden-fixture.js';

runGoldenShard(1);
