//! The optional disk tier: every stored object is also written, in the background,
//! to a file in a directory of its own; an object the memory tier evicted is read
//! back from there (and put in memory again) when it is asked for. The files are
//! indexed by a [`Tier`] bounded in bytes on disk; a file is deleted when no index
//! entry refers to it any more. The directory is emptied at start: objects do not
//! outlive the process (their ages are kept on a monotonic clock).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak, mpsc};

use bytes::Bytes;

use crate::cache::Inner;
use crate::key::Key;
use crate::object::{Object, Stored};
use crate::tier::Tier;

/// The file name suffix of object bodies; only such files are ever removed.
const SUFFIX: &str = "vcache";
/// Objects waiting to be written; when the disk falls this far behind, new objects
/// stay in memory only.
const QUEUE: usize = 1024;

/// Where the disk tier lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// A directory for the cache alone (created if missing).
    pub dir: PathBuf,
    /// Bytes of bodies kept on disk.
    pub bytes: u64,
}

/// One object's body in a file, deleted with the last reference to it.
#[derive(Debug)]
pub(crate) struct DiskFile {
    path: PathBuf,
}

impl DiskFile {
    pub(crate) fn read(&self) -> std::io::Result<Bytes> {
        fs::read(&self.path).map(Bytes::from)
    }
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// An object to write: its key, the object, and the purge epoch it was stored at.
pub(crate) struct Job {
    pub(crate) key: Key,
    pub(crate) object: Arc<Object>,
    pub(crate) epoch: u64,
}

pub(crate) struct DiskTier {
    pub(crate) index: Tier,
    jobs: mpsc::SyncSender<Job>,
}

impl DiskTier {
    /// Prepares the directory (removing bodies left by an earlier run) and starts the
    /// writer thread, which commits through `inner` once a file is written.
    pub(crate) fn open(config: &DiskConfig, inner: Weak<Inner>) -> std::io::Result<DiskTier> {
        fs::create_dir_all(&config.dir)?;
        for entry in fs::read_dir(&config.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == SUFFIX) {
                fs::remove_file(&path)?;
            }
        }
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        let dir = config.dir.clone();
        std::thread::Builder::new()
            .name("verge-cache-disk".into())
            .spawn(move || write_loop(&dir, &queue, &inner))?;
        Ok(DiskTier {
            index: Tier::new(config.bytes),
            jobs,
        })
    }

    /// Queues an object for writing; `false` (and nothing written) when the queue is
    /// full.
    pub(crate) fn enqueue(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }
}

fn write_loop(dir: &Path, queue: &mpsc::Receiver<Job>, inner: &Weak<Inner>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    while let Ok(job) = queue.recv() {
        let Some(inner) = inner.upgrade() else { return };
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{n:016x}.{SUFFIX}"));
        let written = (|| -> std::io::Result<()> {
            let mut file = fs::File::create(&path)?;
            for chunk in job.object.body.chunks().iter() {
                file.write_all(chunk)?;
            }
            Ok(())
        })();
        let file = Arc::new(DiskFile { path });
        if written.is_err() {
            // Dropping the file removes what was written.
            continue;
        }
        let object = job.object.moved_to(Stored::Disk(file));
        inner.commit_to_disk(&job.key, object, job.epoch);
    }
}
