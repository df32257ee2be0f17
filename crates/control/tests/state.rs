//! The control state in a redb file and the package store, through their public API;
//! the rules every store keeps are in `verge_control::conformance`, run by the lib's
//! tests.

use std::sync::Arc;

use verge_control::{
    Changes, Control, ControlStore, DiskPackages, Expect, KEPT_CHANGES, NewVersion,
    PackageStoreError, RedbStore, ServiceName,
};

fn name(n: &str) -> ServiceName {
    ServiceName::new(n).unwrap()
}

fn upload(sha: char) -> NewVersion {
    NewVersion {
        sha256: sha.to_string().repeat(64),
        size: 1000,
        uploaded_by: "ci-token".into(),
    }
}

/// What the conformance suite cannot check: a reopened file holds what was confirmed,
/// revisions included, and the change feed goes on from there.
#[tokio::test]
async fn the_state_and_its_change_feed_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.redb");
    let before = {
        let state = Control::new(Arc::new(RedbStore::open(&path).unwrap()));
        state.create_service(&name("shop"), &[]).await.unwrap();
        for sha in ['a', 'b', 'c'] {
            state.add_version(&name("shop"), upload(sha)).await.unwrap();
        }
        state.activate(&name("shop"), 2).await.unwrap();
        let shop = state.activate(&name("shop"), 3).await.unwrap();
        assert_eq!((shop.active, shop.history.as_slice()), (Some(3), &[2][..]));
        shop
    };
    // Reopened, as after a restart.
    let store = Arc::new(RedbStore::open(&path).unwrap());
    assert_eq!(*store.revision().borrow(), before.revision);
    let state = Control::new(store.clone());
    let versions = state.versions(&name("shop")).await.unwrap();
    let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(versions[1].uploaded_by, "ci-token");
    assert_eq!(
        state.service(&name("shop")).await.unwrap(),
        Some(before.clone())
    );
    let shop = state.rollback(&name("shop")).await.unwrap();
    assert_eq!(shop.active, Some(2));
    assert_eq!(
        state
            .add_version(&name("shop"), upload('d'))
            .await
            .unwrap()
            .number,
        4,
        "a new upload continues the numbering"
    );
    let Changes::Since { changes, .. } = store.changes(before.revision, 10).await.unwrap() else {
        panic!("the history is kept across the restart");
    };
    assert!(changes.iter().all(|c| c.revision > before.revision));
    assert!(changes.iter().any(|c| c.key == "service/shop"));
}

/// A reader further behind than the kept history is told to resync, never handed a
/// feed with a hole in it.
#[tokio::test]
async fn a_reader_behind_the_kept_history_is_told_to_resync() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("control.redb")).unwrap();
    for i in 0..KEPT_CHANGES + 5 {
        store
            .put("k", i.to_be_bytes().to_vec(), Expect::Any)
            .await
            .unwrap();
    }
    let latest = KEPT_CHANGES + 5;
    assert_eq!(
        store.changes(0, 10).await.unwrap(),
        Changes::Resync { revision: latest }
    );
    assert_eq!(
        store.changes(4, 10).await.unwrap(),
        Changes::Resync { revision: latest }
    );
    let Changes::Since { changes, revision } = store.changes(5, 3).await.unwrap() else {
        panic!("revision 6 on is kept");
    };
    assert_eq!(changes.first().map(|c| c.revision), Some(6));
    assert_eq!(revision, 8);
}

#[test]
fn packages_are_stored_by_their_hash_only_when_complete_and_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskPackages::open(&dir.path().join("packages")).unwrap();
    let bytes = b"a package, as uploaded".to_vec();
    let (sha, size) = store.put(&bytes[..], 1 << 20, None).unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(store.get(&sha).unwrap(), bytes);
    // Sent again with its hash: fine, and idempotent.
    assert_eq!(store.put(&bytes[..], 1 << 20, Some(&sha)).unwrap().0, sha);

    let files = || {
        std::fs::read_dir(dir.path().join("packages"))
            .unwrap()
            .count()
    };
    assert_eq!(files(), 1);
    let err = store
        .put(&b"changed in transit"[..], 1 << 20, Some(&sha))
        .unwrap_err();
    assert!(matches!(err, PackageStoreError::Mismatch { .. }), "{err}");
    let err = store.put(&vec![0u8; 2000][..], 1000, None).unwrap_err();
    assert!(
        matches!(err, PackageStoreError::TooLarge { limit: 1000 }),
        "{err}"
    );
    assert_eq!(files(), 1, "a refused upload leaves nothing behind");

    assert!(matches!(
        store.get(&"0".repeat(64)),
        Err(PackageStoreError::Missing(_))
    ));
    assert!(matches!(
        store.get("../../etc/passwd"),
        Err(PackageStoreError::Missing(_))
    ));
}

/// The feed carries each changed service's record: a reader applies it as of the
/// change, whatever a later read (perhaps of a lagging copy) would say.
#[tokio::test]
async fn a_change_of_the_feed_names_the_service_record_as_of_that_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("control.redb")).unwrap());
    let state = Control::new(store.clone());
    state.create_service(&name("shop"), &[]).await.unwrap();
    state.add_version(&name("shop"), upload('a')).await.unwrap();
    state.add_version(&name("shop"), upload('b')).await.unwrap();
    let first = state.activate(&name("shop"), 1).await.unwrap();
    let second = state.activate(&name("shop"), 2).await.unwrap();
    let Changes::Since { changes, .. } = store.changes(0, 100).await.unwrap() else {
        panic!("a fresh store has its whole feed");
    };
    let records: Vec<_> = changes
        .iter()
        .filter_map(Control::service_in)
        .map(Result::unwrap)
        .collect();
    let last = records.last().unwrap().as_ref().unwrap();
    assert_eq!(
        (last.active, last.revision),
        (second.active, second.revision)
    );
    // Level-triggered: an earlier change of the key may be gone, never a later one.
    assert!(
        records
            .iter()
            .flatten()
            .all(|s| s.revision <= second.revision)
    );
    assert!(first.revision < second.revision);
    // A version's change names no service; a deletion names it as gone.
    let version = changes
        .iter()
        .find(|c| c.key.starts_with("version/"))
        .unwrap();
    assert!(Control::service_in(version).is_none());
    state.delete_service(&name("shop")).await.unwrap();
    let Changes::Since { changes, .. } = store.changes(second.revision, 100).await.unwrap() else {
        panic!("the feed reaches back");
    };
    let gone = changes
        .iter()
        .find(|c| c.key == "service/shop")
        .expect("the deletion is in the feed");
    assert!(matches!(Control::service_in(gone), Some(Ok(None))));
}
