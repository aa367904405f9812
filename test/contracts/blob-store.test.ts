import t from 'tap';
import { EncryptedBlobStore } from '../../src/storage/encrypted-blob-store.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { MemoryStudyKeyring } from '../helpers/memory-study-keyring.js';
import { tempDir } from '../helpers/temp-dir.js';
import { runBlobStoreContract, runOverwritableBlobStoreContract } from './blob-store.contract.js';

runBlobStoreContract(t, 'FsBlobStore', () => FsBlobStore.open(tempDir(t)));
runOverwritableBlobStoreContract(t, 'FsBlobStore', () => FsBlobStore.open(tempDir(t)));
runBlobStoreContract(t, 'EncryptedBlobStore(FsBlobStore)', async () => new EncryptedBlobStore(await FsBlobStore.open(tempDir(t)), new MemoryStudyKeyring()));
