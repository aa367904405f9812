import t from 'tap';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { runBlobStoreContract } from './blob-store.contract.js';

runBlobStoreContract(t, 'FsBlobStore', () => FsBlobStore.open(tempDir(t)));
