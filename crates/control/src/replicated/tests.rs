//! The replicated store over a local store that can be cut off: it hangs (a
//! blackholed network) or refuses (a reset connection) on command.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;

use super::*;
use crate::{Change, RedbStore};

const UP: u8 = 0;
const HANG: u8 = 1;
const REFUSE: u8 = 2;
/// Writes land but their answers are lost (the server died after its quorum
/// stored them); reads answer.
const LOSE_ANSWERS: u8 = 3;

struct Cuttable {
    inner: RedbStore,
    mode: AtomicU8,
}

impl Cuttable {
    async fn reachable(&self) -> Result<(), ControlError> {
        match self.mode.load(Ordering::SeqCst) {
            UP | LOSE_ANSWERS => Ok(()),
            HANG => std::future::pending().await,
            _ => Err(ControlError::Unavailable("connection refused".into())),
        }
    }
}

impl Cuttable {
    async fn answer(&self, answer: Result<u64, ControlError>) -> Result<u64, ControlError> {
        if self.mode.load(Ordering::SeqCst) == LOSE_ANSWERS {
            std::future::pending::<()>().await;
        }
        answer
    }
}

#[async_trait]
impl ControlStore for Cuttable {
    async fn get(&self, key: &str) -> Result<Option<Entry>, ControlError> {
        self.reachable().await?;
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError> {
        self.reachable().await?;
        self.inner.list(prefix).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, ControlError> {
        self.reachable().await?;
        let written = self.inner.put(key, value, expect).await;
        self.answer(written).await
    }
    async fn delete(&self, key: &str, expect: Expect) -> Result<u64, ControlError> {
        self.reachable().await?;
        let deleted = self.inner.delete(key, expect).await;
        self.answer(deleted).await
    }
    async fn changes(&self, since: u64, limit: usize) -> Result<Changes, ControlError> {
        self.reachable().await?;
        self.inner.changes(since, limit).await
    }
    fn revision(&self) -> watch::Receiver<u64> {
        self.inner.revision()
    }
    async fn probe(&self) -> Result<u64, ControlError> {
        self.reachable().await?;
        self.inner.probe().await
    }
}

fn cuttable(dir: &std::path::Path) -> Arc<Cuttable> {
    Arc::new(Cuttable {
        inner: RedbStore::open(&dir.join("shared.redb")).unwrap(),
        mode: AtomicU8::new(UP),
    })
}

async fn wait_replicated(store: &ReplicatedStore, revision: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.replicated().unwrap() < revision {
        assert!(
            Instant::now() < deadline,
            "the replica never reached {revision}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the link has changed since `link` last looked: from a connected link,
/// that is a cut. The state itself may be `Connected` again already: when only the
/// answers to writes are lost, the prober's reads answer and it reconnects the link
/// within a second, possibly before this task looks (a flake in CI, once).
async fn wait_cut_since(link: &mut tokio::sync::watch::Receiver<Link>) {
    tokio::time::timeout(Duration::from_secs(10), link.changed())
        .await
        .expect("the link was never cut")
        .unwrap();
}

async fn wait_link(store: &ReplicatedStore, connected: bool) {
    let mut link = store.link();
    tokio::time::timeout(
        Duration::from_secs(10),
        link.wait_for(|l| l.is_connected() == connected),
    )
    .await
    .expect("the link state never changed")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_store_rules_while_connected() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    crate::conformance::run(|| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let dir = dir.path().join(format!("{i}"));
        async move {
            std::fs::create_dir_all(&dir).unwrap();
            let replica = Replica::open(&dir.join("replica.redb"), "test").unwrap();
            let store = ReplicatedStore::new(replica, "starting").unwrap();
            store.attach(Arc::new(RedbStore::open(&dir.join("shared.redb")).unwrap()));
            Arc::new(store) as Arc<dyn ControlStore>
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_store_reads_its_copy_refuses_changes_and_catches_up() {
    for cut in [HANG, REFUSE] {
        let dir = tempfile::tempdir().unwrap();
        let shared = cuttable(dir.path());
        let replica = Replica::open(&dir.path().join("replica.redb"), "fleet").unwrap();
        // A partition: no cut is waited out here (see the next test).
        let store = ReplicatedStore::new(replica, "starting")
            .unwrap()
            .with_ride_out(Duration::ZERO);
        store.attach(shared.clone());
        let first = store.put("k/a", b"1".to_vec(), Expect::Any).await.unwrap();
        wait_replicated(&store, first).await;

        shared.mode.store(cut, Ordering::SeqCst);
        if cut == HANG {
            // A read that gets no answer within the deadline comes from the copy.
            let started = Instant::now();
            let read = store.get("k/a").await.unwrap().expect("the copy answers");
            assert_eq!(read.value, b"1");
            assert!(started.elapsed() < DEADLINE + Duration::from_secs(1));
        }
        // A refusal is the caller's to see until the probe says the link is cut.
        wait_link(&store, false).await;
        let read = store.get("k/a").await.unwrap().expect("the copy answers");
        assert_eq!(read.value, b"1");
        assert_eq!(read.revision, first, "with the shared store's revision");
        let started = Instant::now();
        let refused = store.put("k/b", b"2".to_vec(), Expect::Any).await;
        assert!(
            matches!(&refused, Err(ControlError::Unavailable(m)) if m.starts_with("cluster unavailable")),
            "a change is refused, not kept locally: {refused:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "at once, once the cut is known"
        );
        assert!(matches!(
            store.changes(0, 10).await,
            Err(ControlError::Unavailable(_))
        ));

        // Another node changes the shared state meanwhile.
        let theirs = shared
            .inner
            .put("k/a", b"theirs".to_vec(), Expect::Any)
            .await
            .unwrap();
        let gone = shared.inner.delete("k/a", Expect::Any).await.unwrap();
        let last = shared
            .inner
            .put("k/c", b"3".to_vec(), Expect::Any)
            .await
            .unwrap();
        assert!(theirs < gone && gone < last);
        assert_eq!(
            store.replicated().unwrap(),
            first,
            "nothing arrives while cut"
        );

        shared.mode.store(UP, Ordering::SeqCst);
        wait_link(&store, true).await;
        wait_replicated(&store, last).await;
        let mut revision = store.revision();
        tokio::time::timeout(Duration::from_secs(5), revision.wait_for(|r| *r >= last))
            .await
            .expect("the revision watch hears of the missed changes")
            .unwrap();
        let copy = &store.shared.replica;
        assert_eq!(copy.get("k/a").unwrap(), None, "the deletion arrived");
        assert_eq!(copy.get("k/c").unwrap().unwrap().value, b"3");
        store.put("k/b", b"2".to_vec(), Expect::Any).await.unwrap();
    }
}

/// What a NATS server's death looks like from a node: a few seconds without
/// answers while the others elect a leader. Changes wait it out and land once;
/// a cut that lasts longer than the ride-out is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_cut_is_waited_out_and_a_write_that_landed_is_not_made_twice() {
    let dir = tempfile::tempdir().unwrap();
    let shared = cuttable(dir.path());
    let replica = Replica::open(&dir.path().join("replica.redb"), "fleet").unwrap();
    let store = Arc::new(ReplicatedStore::new(replica, "starting").unwrap());
    store.attach(shared.clone());
    store.put("k/a", b"1".to_vec(), Expect::Any).await.unwrap();

    // No answers for a while: the create waits, then lands.
    shared.mode.store(HANG, Ordering::SeqCst);
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.put("k/b", b"2".to_vec(), Expect::Absent).await }
    });
    wait_link(&store, false).await;
    assert!(!waiting.is_finished(), "a change waits out a short cut");
    shared.mode.store(UP, Ordering::SeqCst);
    let revision = waiting
        .await
        .unwrap()
        .expect("it lands once the store answers");
    assert_eq!(
        shared.inner.get("k/b").await.unwrap().unwrap().revision,
        revision
    );

    // A create that landed but whose answer was lost is read back, not taken for a
    // lost race (it would be: the key exists now) nor written twice.
    let mut link = store.link();
    assert!(link.borrow().is_connected());
    shared.mode.store(LOSE_ANSWERS, Ordering::SeqCst);
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.put("k/c", b"3".to_vec(), Expect::Absent).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.inner.get("k/c").await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the write never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_cut_since(&mut link).await;
    shared.mode.store(UP, Ordering::SeqCst);
    let revision = waiting
        .await
        .unwrap()
        .expect("the write that landed is the answer");
    let landed = shared.inner.get("k/c").await.unwrap().unwrap();
    assert_eq!((landed.revision, landed.value), (revision, b"3".to_vec()));
    // A deletion too.
    wait_link(&store, true).await;
    let mut link = store.link();
    shared.mode.store(LOSE_ANSWERS, Ordering::SeqCst);
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.delete("k/c", Expect::Revision(revision)).await }
    });
    while shared.inner.get("k/c").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the deletion never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_cut_since(&mut link).await;
    shared.mode.store(UP, Ordering::SeqCst);
    let deleted = waiting
        .await
        .unwrap()
        .expect("the deletion that landed is the answer");
    assert!(deleted > revision);
    let Changes::Since { changes, .. } = shared.inner.changes(0, 100).await.unwrap() else {
        panic!("a redb store keeps its feed");
    };
    let of_c: Vec<_> = changes.iter().filter(|c| c.key == "k/c").collect();
    assert_eq!(of_c.len(), 2, "one write and one deletion: {of_c:?}");

    // A cut longer than the ride-out is refused, once the ride-out has passed.
    let dir = tempfile::tempdir().unwrap();
    let shared = cuttable(dir.path());
    let replica = Replica::open(&dir.path().join("replica.redb"), "fleet").unwrap();
    let ride_out = Duration::from_millis(300);
    let store = ReplicatedStore::new(replica, "starting")
        .unwrap()
        .with_ride_out(ride_out);
    store.attach(shared.clone());
    shared.mode.store(REFUSE, Ordering::SeqCst);
    wait_link(&store, false).await;
    let refused = store.put("k/d", b"4".to_vec(), Expect::Any).await;
    assert!(
        matches!(&refused, Err(ControlError::Unavailable(m)) if m.starts_with("cluster unavailable")),
        "{refused:?}"
    );
    let Link::Unavailable { since, .. } = store.link().borrow().clone() else {
        panic!("still cut");
    };
    assert!(
        since.elapsed() >= ride_out,
        "refused only after the ride-out"
    );
    assert_eq!(shared.inner.get("k/d").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_started_without_its_shared_store_serves_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let last = {
        let store = ReplicatedStore::new(Replica::open(&path, "fleet").unwrap(), "x").unwrap();
        let shared = cuttable(dir.path());
        store.attach(shared);
        store.put("k/a", b"1".to_vec(), Expect::Any).await.unwrap();
        let last = store.put("k/b", b"2".to_vec(), Expect::Any).await.unwrap();
        wait_replicated(&store, last).await;
        last
    };
    // The store's tasks let go of the file as they are cancelled.
    let deadline = Instant::now() + Duration::from_secs(5);
    let replica = loop {
        match Replica::open(&path, "fleet") {
            Ok(replica) => break replica,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let store = ReplicatedStore::new(replica, "NATS is unreachable").unwrap();
    assert_eq!(*store.revision().borrow(), last);
    let keys: Vec<String> = store
        .list("k/")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["k/a", "k/b"]);
    let refused = store.delete("k/a", Expect::Any).await;
    assert!(
        matches!(&refused, Err(ControlError::Unavailable(m)) if m.contains("NATS is unreachable")),
        "{refused:?}"
    );
    assert!(matches!(*store.link().borrow(), Link::Unavailable { .. }));
}

#[test]
fn a_copy_of_another_source_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let change = Change {
        revision: 7,
        key: "k/a".into(),
        value: Some(b"1".to_vec()),
    };
    Replica::open(&path, "one")
        .unwrap()
        .apply(&[change], 7)
        .unwrap();
    let same = Replica::open(&path, "one").unwrap();
    assert_eq!(same.applied().unwrap(), 7);
    drop(same);
    let other = Replica::open(&path, "two").unwrap();
    assert_eq!(other.applied().unwrap(), 0);
    assert_eq!(other.get("k/a").unwrap(), None);
}
