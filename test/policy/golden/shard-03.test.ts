// Golden shard 3 of 3 (principals 40 to 59): see ../golden-fixture.ts.
import { runGoldenShard } from '../golden-fixture.js';

runGoldenShard(2);
