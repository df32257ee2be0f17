//! The rules every control store, and the control state over it, must keep, as
//! functions another crate can run against its own store:
//! `run(|| async { Arc::new(MyStore::open(..).await) }).await`. [`RedbStore`] passes them in this crate's
//! tests; a fleet's store passes the very same ones.
//!
//! Each case takes a fresh, empty store and panics on the first rule broken.
//!
//! [`RedbStore`]: crate::RedbStore

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use verge_manifest::DomainPattern;

use crate::{
    Changes, Control, ControlError, ControlStore, Expect, NewVersion, ServiceName, TokenRecord,
};

/// A case: its name, and the function that runs it on a fresh control state.
pub type Case = (
    &'static str,
    for<'a> fn(&'a Control) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
);

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        &[$((stringify!($case), {
            fn case(state: &Control) -> Pin<Box<dyn Future<Output = ()> + '_>> {
                Box::pin($case(state))
            }
            case
        })),*]
    };
}

/// Every case, by name.
pub const CASES: &[Case] = cases![
    writes_are_conditional_on_what_the_writer_saw,
    the_change_feed_replays_every_write_in_order,
    services_are_created_listed_and_deleted,
    a_domain_serves_one_service,
    versions_number_up_and_activate,
    rollback_walks_back_the_activations,
    the_active_version_cannot_be_deleted,
    tokens_are_added_once_and_revoked,
    a_deleted_service_leaves_nothing_behind,
    of_two_concurrent_activations_one_wins_and_one_is_told,
    an_upload_racing_an_activation_does_not_fail_it,
];

/// Runs every case, each on a fresh store from `fresh`; a failure names its case.
/// Run it on a multi-threaded runtime: some cases race two changes.
pub async fn run<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ControlStore>>,
{
    for (name, case) in CASES {
        eprintln!("control conformance: {name}");
        let control = Control::new(fresh().await);
        case(&control).await;
    }
}

fn name(text: &str) -> ServiceName {
    ServiceName::new(text).unwrap()
}

fn domains(list: &[&str]) -> Vec<DomainPattern> {
    list.iter()
        .map(|d| DomainPattern::parse(d).unwrap())
        .collect()
}

async fn upload(state: &Control, service: &ServiceName, sha: char) -> u32 {
    state
        .add_version(
            service,
            NewVersion {
                sha256: sha.to_string().repeat(64),
                size: 42,
                uploaded_by: "ci".into(),
            },
        )
        .await
        .unwrap()
        .number
}

pub async fn writes_are_conditional_on_what_the_writer_saw(state: &Control) {
    let store = state.store();
    let first = store
        .put("k/a", b"1".to_vec(), Expect::Absent)
        .await
        .unwrap();
    assert!(matches!(
        store.put("k/a", b"2".to_vec(), Expect::Absent).await,
        Err(ControlError::Conflict(_))
    ));
    let second = store
        .put("k/a", b"2".to_vec(), Expect::Revision(first))
        .await
        .unwrap();
    assert!(second > first, "revisions grow");
    assert!(matches!(
        store
            .put("k/a", b"3".to_vec(), Expect::Revision(first))
            .await,
        Err(ControlError::Conflict(_))
    ));
    let entry = store.get("k/a").await.unwrap().unwrap();
    assert_eq!(
        (entry.value.as_slice(), entry.revision),
        (&b"2"[..], second)
    );
    assert!(matches!(
        store.delete("k/a", Expect::Revision(first)).await,
        Err(ControlError::Conflict(_))
    ));
    store.put("k/b", b"x".to_vec(), Expect::Any).await.unwrap();
    store.put("kz", b"y".to_vec(), Expect::Any).await.unwrap();
    let listed: Vec<String> = store
        .list("k/")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, ["k/a", "k/b"], "a prefix, in key order");
    store.delete("k/a", Expect::Revision(second)).await.unwrap();
    assert_eq!(store.get("k/a").await.unwrap(), None);
    let at = *store.revision().borrow();
    assert_eq!(
        store.delete("k/a", Expect::Any).await.unwrap(),
        at,
        "deleting nothing changes nothing"
    );
    assert!(matches!(
        store.delete("k/a", Expect::Revision(second)).await,
        Err(ControlError::Conflict(_))
    ));
}

pub async fn the_change_feed_replays_every_write_in_order(state: &Control) {
    let store = state.store();
    let mut watch = store.revision();
    let start = *watch.borrow_and_update();
    let a = store.put("f/a", b"1".to_vec(), Expect::Any).await.unwrap();
    let b = store.put("f/b", b"2".to_vec(), Expect::Any).await.unwrap();
    let gone = store.delete("f/a", Expect::Any).await.unwrap();
    assert!(watch.has_changed().unwrap(), "the watch hears of writes");
    assert_eq!(*watch.borrow_and_update(), gone);
    let Changes::Since { changes, revision } = store.changes(start, 100).await.unwrap() else {
        panic!("the history since the start is kept");
    };
    assert_eq!(revision, gone);
    assert!(
        changes.windows(2).all(|w| w[0].revision < w[1].revision),
        "in revision order: {changes:?}"
    );
    // Level-triggered: each key at its latest state (a store may have dropped the
    // put of `f/a` that the delete superseded).
    let last = |key: &str| changes.iter().rev().find(|c| c.key == key).cloned();
    let a_last = last("f/a").expect("f/a is in the feed");
    assert_eq!((a_last.revision, a_last.value), (gone, None));
    let b_last = last("f/b").expect("f/b is in the feed");
    assert_eq!(
        (b_last.revision, b_last.value.as_deref()),
        (b, Some(&b"2"[..]))
    );
    assert!(
        changes
            .iter()
            .all(|c| c.revision > start && c.revision <= gone)
    );
    assert!(a > start);
    // A page at a time, from where the last one ended, reaches the same end.
    let mut since = start;
    let mut paged = Vec::new();
    loop {
        let Changes::Since { changes, revision } = store.changes(since, 1).await.unwrap() else {
            panic!("kept");
        };
        assert!(changes.len() <= 1);
        paged.extend(changes);
        if revision == since {
            break;
        }
        since = revision;
    }
    assert_eq!(since, gone);
    assert_eq!(paged.last().map(|c| c.revision), Some(gone));
    let Changes::Since { changes, revision } = store.changes(gone, 10).await.unwrap() else {
        panic!("kept");
    };
    assert!(changes.is_empty());
    assert_eq!(revision, gone);
}

pub async fn services_are_created_listed_and_deleted(state: &Control) {
    let shop = name("shop");
    assert!(state.services().await.unwrap().is_empty());
    let created = state
        .create_service(&shop, &domains(&["shop.example"]))
        .await
        .unwrap();
    assert_eq!(created.name, shop);
    assert_eq!(created.active, None);
    assert_eq!(state.service(&shop).await.unwrap(), Some(created.clone()));
    assert!(matches!(
        state.create_service(&shop, &[]).await,
        Err(ControlError::ServiceExists(n)) if n == "shop"
    ));
    state.create_service(&name("blog"), &[]).await.unwrap();
    let mut names: Vec<_> = state
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    assert_eq!(names, [name("blog"), shop.clone()]);
    state.delete_service(&shop).await.unwrap();
    assert_eq!(state.service(&shop).await.unwrap(), None);
    assert!(matches!(
        state.delete_service(&shop).await,
        Err(ControlError::NoSuchService(n)) if n == "shop"
    ));
}

pub async fn a_domain_serves_one_service(state: &Control) {
    state
        .create_service(&name("a"), &domains(&["a.example", "*.shared.example"]))
        .await
        .unwrap();
    assert!(matches!(
        state.create_service(&name("b"), &domains(&["*.shared.example"])).await,
        Err(ControlError::DomainTaken { domain, owner }) if domain == "*.shared.example" && owner == "a"
    ));
    assert_eq!(
        state.service(&name("b")).await.unwrap(),
        None,
        "a refused create leaves nothing"
    );
    state.create_service(&name("b"), &[]).await.unwrap();
    assert!(matches!(
        state
            .set_domains(&name("b"), &domains(&["a.example"]))
            .await,
        Err(ControlError::DomainTaken { .. })
    ));
    // Giving a domain up frees it for another service.
    state
        .set_domains(&name("a"), &domains(&["a.example"]))
        .await
        .unwrap();
    let b = state
        .set_domains(&name("b"), &domains(&["*.shared.example"]))
        .await
        .unwrap();
    assert_eq!(b.domains, domains(&["*.shared.example"]));
    assert!(matches!(
        state.set_domains(&name("nobody"), &[]).await,
        Err(ControlError::NoSuchService(_))
    ));
}

pub async fn versions_number_up_and_activate(state: &Control) {
    let svc = name("svc");
    state.create_service(&svc, &[]).await.unwrap();
    assert_eq!(upload(state, &svc, 'a').await, 1);
    assert_eq!(upload(state, &svc, 'b').await, 2);
    let versions = state.versions(&svc).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(versions[1].sha256, "b".repeat(64));
    assert_eq!(versions[1].uploaded_by, "ci");
    assert_eq!(
        state.service(&svc).await.unwrap().unwrap().active,
        None,
        "uploads do not activate"
    );
    assert_eq!(state.activate(&svc, 2).await.unwrap().active, Some(2));
    assert!(matches!(
        state.activate(&svc, 9).await,
        Err(ControlError::NoSuchVersion { version: 9, .. })
    ));
    assert_eq!(state.service(&svc).await.unwrap().unwrap().active, Some(2));
    assert!(matches!(
        state
            .add_version(
                &name("nobody"),
                NewVersion {
                    sha256: "c".repeat(64),
                    size: 1,
                    uploaded_by: "ci".into()
                }
            )
            .await,
        Err(ControlError::NoSuchService(_))
    ));
}

pub async fn rollback_walks_back_the_activations(state: &Control) {
    let svc = name("svc");
    state.create_service(&svc, &[]).await.unwrap();
    assert!(matches!(
        state.rollback(&svc).await,
        Err(ControlError::NothingToRollBack(_))
    ));
    for sha in ['a', 'b', 'c'] {
        let n = upload(state, &svc, sha).await;
        state.activate(&svc, n).await.unwrap();
    }
    assert_eq!(state.rollback(&svc).await.unwrap().active, Some(2));
    assert_eq!(state.rollback(&svc).await.unwrap().active, Some(1));
    assert!(matches!(
        state.rollback(&svc).await,
        Err(ControlError::NothingToRollBack(_))
    ));
    assert_eq!(state.service(&svc).await.unwrap().unwrap().active, Some(1));
}

pub async fn the_active_version_cannot_be_deleted(state: &Control) {
    let svc = name("svc");
    state.create_service(&svc, &[]).await.unwrap();
    upload(state, &svc, 'a').await;
    upload(state, &svc, 'b').await;
    state.activate(&svc, 1).await.unwrap();
    state.activate(&svc, 2).await.unwrap();
    assert!(matches!(
        state.delete_version(&svc, 2).await,
        Err(ControlError::VersionActive { version: 2, .. })
    ));
    assert_eq!(
        state.delete_version(&svc, 1).await.unwrap().sha256,
        "a".repeat(64)
    );
    // A deleted version is no rollback target any more.
    assert!(matches!(
        state.rollback(&svc).await,
        Err(ControlError::NothingToRollBack(_))
    ));
    assert!(matches!(
        state.delete_version(&svc, 1).await,
        Err(ControlError::NoSuchVersion { version: 1, .. })
    ));
    // Numbers are never reused.
    assert_eq!(upload(state, &svc, 'c').await, 3);
}

pub async fn tokens_are_added_once_and_revoked(state: &Control) {
    let token = TokenRecord {
        id: "0123456789ab".into(),
        name: "deployer".into(),
        service: Some("svc".into()),
        write: true,
        secret_sha256: "d".repeat(64),
        created_at_ms: 1,
        expires_at_ms: None,
    };
    state.add_token(token.clone()).await.unwrap();
    assert_eq!(state.token(&token.id).await.unwrap(), Some(token.clone()));
    assert!(matches!(
        state.add_token(TokenRecord { name: "other".into(), ..token.clone() }).await,
        Err(ControlError::TokenExists(id)) if id == token.id
    ));
    assert_eq!(
        state.token(&token.id).await.unwrap().unwrap().name,
        "deployer",
        "no overwrite"
    );
    assert_eq!(state.tokens().await.unwrap(), std::slice::from_ref(&token));
    assert!(state.revoke_token(&token.id).await.unwrap());
    assert!(!state.revoke_token(&token.id).await.unwrap());
    assert_eq!(state.token(&token.id).await.unwrap(), None);
}

pub async fn a_deleted_service_leaves_nothing_behind(state: &Control) {
    let svc = name("svc");
    state
        .create_service(&svc, &domains(&["svc.example"]))
        .await
        .unwrap();
    upload(state, &svc, 'a').await;
    state.activate(&svc, 1).await.unwrap();
    state.delete_service(&svc).await.unwrap();
    // The name and the domain are free again, and the new service starts at version 1.
    let again = state
        .create_service(&svc, &domains(&["svc.example"]))
        .await
        .unwrap();
    assert_eq!(again.active, None);
    assert!(state.versions(&svc).await.unwrap().is_empty());
    assert_eq!(upload(state, &svc, 'b').await, 1);
}

pub async fn of_two_concurrent_activations_one_wins_and_one_is_told(state: &Control) {
    let svc = name("svc");
    state.create_service(&svc, &[]).await.unwrap();
    for sha in ['a', 'b', 'c'] {
        upload(state, &svc, sha).await;
    }
    state.activate(&svc, 1).await.unwrap();
    // Many rounds: the two must overlap in some of them for the rule to be tested.
    let mut conflicts = 0;
    for round in 0..20 {
        let (x, y) = if round % 2 == 0 { (2, 3) } else { (3, 2) };
        let (one, other) = tokio::join!(state.activate(&svc, x), state.activate(&svc, y));
        let service = state.service(&svc).await.unwrap().unwrap();
        match (one, other) {
            (Ok(_), Ok(_)) => {
                // One after the other: the later one is active, the earlier in history.
                assert!(service.active == Some(x) || service.active == Some(y));
            }
            (Ok(won), Err(ControlError::Conflict(why)))
            | (Err(ControlError::Conflict(why)), Ok(won)) => {
                conflicts += 1;
                assert_eq!(service.active, won.active, "the winner is what is active");
                assert!(why.contains("svc"), "{why}");
            }
            other => panic!("unexpected: {other:?}"),
        }
        state.activate(&svc, 1).await.unwrap();
    }
    eprintln!("  {conflicts} of 20 rounds overlapped");
    // Whatever interleaving, history only ever holds versions that were active.
    let service = state.service(&svc).await.unwrap().unwrap();
    assert!(service.history.iter().all(|n| (1..=3).contains(n)));
}

pub async fn an_upload_racing_an_activation_does_not_fail_it(state: &Control) {
    let svc = name("svc");
    state.create_service(&svc, &[]).await.unwrap();
    upload(state, &svc, 'a').await;
    for _ in 0..10 {
        let (activated, uploaded) = tokio::join!(state.activate(&svc, 1), upload(state, &svc, 'b'));
        assert_eq!(activated.unwrap().active, Some(1));
        assert!(uploaded > 1);
        state.rollback(&svc).await.ok();
    }
    let versions = state.versions(&svc).await.unwrap();
    assert_eq!(versions.len(), 11, "every upload recorded once");
}

/// The rules every [`crate::PackageStore`] keeps.
pub mod packages {
    use std::future::Future;
    use std::sync::Arc;

    use crate::{PackageStore, PackageStoreError, sha256_hex};

    /// Runs every case, each on a fresh store from `fresh`.
    pub async fn run<F, Fut>(fresh: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<dyn PackageStore>>,
    {
        eprintln!("package conformance: what_is_put_is_got_back_by_its_hash");
        what_is_put_is_got_back_by_its_hash(fresh().await.as_ref()).await;
        eprintln!("package conformance: bytes_under_another_hash_are_refused");
        bytes_under_another_hash_are_refused(fresh().await.as_ref()).await;
        eprintln!("package conformance: a_large_package_survives_the_trip");
        a_large_package_survives_the_trip(fresh().await.as_ref()).await;
    }

    pub async fn what_is_put_is_got_back_by_its_hash(store: &dyn PackageStore) {
        let bytes = b"a package, as uploaded".to_vec();
        let sha = sha256_hex(&bytes);
        store.put(&sha, bytes.clone()).await.unwrap();
        assert_eq!(store.get(&sha).await.unwrap(), bytes);
        // The same bytes again: fine.
        store.put(&sha, bytes.clone()).await.unwrap();
        assert_eq!(store.get(&sha).await.unwrap(), bytes);
        assert!(matches!(
            store.get(&"0".repeat(64)).await,
            Err(PackageStoreError::Missing(_))
        ));
        assert!(matches!(
            store.get("../../etc/passwd").await,
            Err(PackageStoreError::Missing(_))
        ));
    }

    pub async fn bytes_under_another_hash_are_refused(store: &dyn PackageStore) {
        let sha = sha256_hex(b"the real package");
        let refused = store.put(&sha, b"changed in transit".to_vec()).await;
        assert!(
            matches!(refused, Err(PackageStoreError::Mismatch { .. })),
            "{refused:?}"
        );
        assert!(
            matches!(store.get(&sha).await, Err(PackageStoreError::Missing(_))),
            "a refused package leaves nothing under its name"
        );
    }

    pub async fn a_large_package_survives_the_trip(store: &dyn PackageStore) {
        // Larger than a NATS message: the object store chunks it.
        let bytes: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
        let sha = sha256_hex(&bytes);
        store.put(&sha, bytes.clone()).await.unwrap();
        let back = store.get(&sha).await.unwrap();
        assert_eq!(back.len(), bytes.len());
        assert!(back == bytes, "the bytes come back unchanged");
    }
}
