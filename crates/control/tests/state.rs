//! The control state in a redb file and the package store, through their public API.

use verge_control::{
    ControlError, ControlState, NewVersion, PackageStore, PackageStoreError, RedbState, ServiceName,
};
use verge_manifest::DomainPattern;

fn name(n: &str) -> ServiceName {
    ServiceName::new(n).unwrap()
}

fn domains(list: &[&str]) -> Vec<DomainPattern> {
    list.iter()
        .map(|d| DomainPattern::parse(d).unwrap())
        .collect()
}

fn upload(sha: char) -> NewVersion {
    NewVersion {
        sha256: sha.to_string().repeat(64),
        size: 1000,
        uploaded_by: "ci-token".into(),
    }
}

#[test]
fn services_own_their_domains() {
    let dir = tempfile::tempdir().unwrap();
    let state = RedbState::open(&dir.path().join("control.redb")).unwrap();
    let shop = state
        .create_service(
            &name("shop"),
            &domains(&["shop.example.com", "*.shop.example.com"]),
        )
        .unwrap();
    assert_eq!((shop.active, shop.next_version), (None, 1));
    assert!(matches!(
        state.create_service(&name("shop"), &[]),
        Err(ControlError::ServiceExists(_))
    ));
    let err = state
        .create_service(
            &name("blog"),
            &domains(&["blog.example.com", "shop.example.com"]),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the domain `shop.example.com` belongs to service `shop`; a domain serves one service"
    );
    assert!(
        state.service(&name("blog")).unwrap().is_none(),
        "nothing half-made"
    );
    state
        .create_service(&name("blog"), &domains(&["blog.example.com"]))
        .unwrap();
    // Moving a domain: the old owner lets go first.
    state
        .set_domains(&name("shop"), &domains(&["*.shop.example.com"]))
        .unwrap();
    state
        .set_domains(
            &name("blog"),
            &domains(&["blog.example.com", "shop.example.com"]),
        )
        .unwrap();
    state.delete_service(&name("blog")).unwrap();
    state
        .set_domains(&name("shop"), &domains(&["shop.example.com"]))
        .unwrap();
    let names: Vec<String> = state
        .services()
        .unwrap()
        .iter()
        .map(|s| s.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["shop"]);
    assert!(matches!(
        state.delete_service(&name("blog")),
        Err(ControlError::NoSuchService(_))
    ));
}

#[test]
fn versions_activate_and_roll_back_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.redb");
    {
        let state = RedbState::open(&path).unwrap();
        state.create_service(&name("shop"), &[]).unwrap();
        for sha in ['a', 'b', 'c'] {
            state.add_version(&name("shop"), upload(sha)).unwrap();
        }
        assert!(matches!(
            state.activate(&name("shop"), 4),
            Err(ControlError::NoSuchVersion { version: 4, .. })
        ));
        assert!(matches!(
            state.rollback(&name("shop")),
            Err(ControlError::NothingToRollBack(_))
        ));
        state.activate(&name("shop"), 2).unwrap();
        let shop = state.activate(&name("shop"), 3).unwrap();
        assert_eq!((shop.active, shop.history.as_slice()), (Some(3), &[2][..]));
    }
    // Reopened, as after a restart.
    let state = RedbState::open(&path).unwrap();
    let versions = state.versions(&name("shop")).unwrap();
    let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(versions[1].sha256, "b".repeat(64));
    assert_eq!(versions[1].uploaded_by, "ci-token");
    assert!(versions[0].uploaded_at_ms <= versions[2].uploaded_at_ms);
    assert_eq!(
        state.service(&name("shop")).unwrap().unwrap().active,
        Some(3)
    );
    let shop = state.rollback(&name("shop")).unwrap();
    assert_eq!(shop.active, Some(2));
    assert!(matches!(
        state.rollback(&name("shop")),
        Err(ControlError::NothingToRollBack(_))
    ));
    // A new upload continues the numbering.
    assert_eq!(
        state
            .add_version(&name("shop"), upload('d'))
            .unwrap()
            .number,
        4
    );
    assert!(matches!(
        state.versions(&name("nope")),
        Err(ControlError::NoSuchService(_))
    ));
}

#[test]
fn packages_are_stored_by_their_hash_only_when_complete_and_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(&dir.path().join("packages")).unwrap();
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

#[test]
fn a_version_that_is_not_active_can_be_deleted_and_is_no_rollback_target() {
    let dir = tempfile::tempdir().unwrap();
    let state = RedbState::open(&dir.path().join("control.redb")).unwrap();
    let shop = name("shop");
    state.create_service(&shop, &[]).unwrap();
    for sha in ['a', 'b', 'c'] {
        state.add_version(&shop, upload(sha)).unwrap();
    }
    state.activate(&shop, 1).unwrap();
    state.activate(&shop, 2).unwrap();
    state.activate(&shop, 3).unwrap();
    assert!(matches!(
        state.delete_version(&shop, 3),
        Err(ControlError::VersionActive { version: 3, .. })
    ));
    assert!(matches!(
        state.delete_version(&shop, 9),
        Err(ControlError::NoSuchVersion { version: 9, .. })
    ));
    let deleted = state.delete_version(&shop, 2).unwrap();
    assert_eq!(deleted.sha256, "b".repeat(64));
    let numbers: Vec<u32> = state
        .versions(&shop)
        .unwrap()
        .iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(numbers, [1, 3]);
    // Rolling back skips the deleted version; numbers are never reused.
    assert_eq!(state.rollback(&shop).unwrap().active, Some(1));
    assert_eq!(state.add_version(&shop, upload('d')).unwrap().number, 4);
}
