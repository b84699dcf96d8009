/*
 * LD_PRELOAD shim that removes SyncEvolution's deliberate pause after writing
 * to a datastore (SyncSourceRevisions::sleepSinceModification() waits until a
 * second has passed since the last write, because its file backend tracks
 * changes by mtime in whole seconds).  The tests give every file they edit a
 * distinct mtime themselves, so the pause only costs time.
 */
int _ZN7SyncEvo19SyncSourceRevisions22sleepSinceModificationEv(void *self)
{
    (void)self;
    return 0;
}
