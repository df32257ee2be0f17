//! The rules every [`ControlState`] must keep, as functions another crate can run
//! against its own implementation: `run(|| Box::new(MyState::open(..)))`. [`RedbState`]
//! passes them in this crate's tests; a fleet's state passes the very same ones.
//!
//! Each case takes a fresh, empty state and panics on the first rule broken.
//!
//! [`RedbState`]: crate::RedbState

use verge_manifest::DomainPattern;

use crate::{ControlError, ControlState, NewVersion, ServiceName, TokenRecord};

/// A case: its name, and the function that runs it on a fresh state.
pub type Case = (&'static str, fn(&dyn ControlState));

/// Every case, by name.
pub const CASES: &[Case] = &[
    (
        "services_are_created_listed_and_deleted",
        services_are_created_listed_and_deleted,
    ),
    ("a_domain_serves_one_service", a_domain_serves_one_service),
    (
        "versions_number_up_and_activate",
        versions_number_up_and_activate,
    ),
    (
        "rollback_walks_back_the_activations",
        rollback_walks_back_the_activations,
    ),
    (
        "the_active_version_cannot_be_deleted",
        the_active_version_cannot_be_deleted,
    ),
    (
        "tokens_are_added_once_and_revoked",
        tokens_are_added_once_and_revoked,
    ),
    (
        "a_deleted_service_leaves_nothing_behind",
        a_deleted_service_leaves_nothing_behind,
    ),
];

/// Runs every case, each on a fresh state from `fresh`; a failure names its case.
pub fn run(fresh: impl Fn() -> Box<dyn ControlState>) {
    for (name, case) in CASES {
        eprintln!("control-state conformance: {name}");
        case(fresh().as_ref());
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

fn upload(state: &dyn ControlState, service: &ServiceName, sha: char) -> u32 {
    state
        .add_version(
            service,
            NewVersion {
                sha256: sha.to_string().repeat(64),
                size: 42,
                uploaded_by: "ci".into(),
            },
        )
        .unwrap()
        .number
}

pub fn services_are_created_listed_and_deleted(state: &dyn ControlState) {
    let shop = name("shop");
    assert!(state.services().unwrap().is_empty());
    let created = state
        .create_service(&shop, &domains(&["shop.example"]))
        .unwrap();
    assert_eq!(created.name, shop);
    assert_eq!(created.active, None);
    assert_eq!(state.service(&shop).unwrap(), Some(created.clone()));
    assert!(matches!(
        state.create_service(&shop, &[]),
        Err(ControlError::ServiceExists(n)) if n == "shop"
    ));
    state.create_service(&name("blog"), &[]).unwrap();
    let mut names: Vec<_> = state
        .services()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    assert_eq!(names, [name("blog"), shop.clone()]);
    state.delete_service(&shop).unwrap();
    assert_eq!(state.service(&shop).unwrap(), None);
    assert!(matches!(
        state.delete_service(&shop),
        Err(ControlError::NoSuchService(n)) if n == "shop"
    ));
}

pub fn a_domain_serves_one_service(state: &dyn ControlState) {
    state
        .create_service(&name("a"), &domains(&["a.example", "*.shared.example"]))
        .unwrap();
    assert!(matches!(
        state.create_service(&name("b"), &domains(&["*.shared.example"])),
        Err(ControlError::DomainTaken { domain, owner }) if domain == "*.shared.example" && owner == "a"
    ));
    assert_eq!(
        state.service(&name("b")).unwrap(),
        None,
        "a refused create leaves nothing"
    );
    state.create_service(&name("b"), &[]).unwrap();
    assert!(matches!(
        state.set_domains(&name("b"), &domains(&["a.example"])),
        Err(ControlError::DomainTaken { .. })
    ));
    // Giving a domain up frees it for another service.
    state
        .set_domains(&name("a"), &domains(&["a.example"]))
        .unwrap();
    let b = state
        .set_domains(&name("b"), &domains(&["*.shared.example"]))
        .unwrap();
    assert_eq!(b.domains, domains(&["*.shared.example"]));
    assert!(matches!(
        state.set_domains(&name("nobody"), &[]),
        Err(ControlError::NoSuchService(_))
    ));
}

pub fn versions_number_up_and_activate(state: &dyn ControlState) {
    let svc = name("svc");
    state.create_service(&svc, &[]).unwrap();
    assert_eq!(upload(state, &svc, 'a'), 1);
    assert_eq!(upload(state, &svc, 'b'), 2);
    let versions = state.versions(&svc).unwrap();
    assert_eq!(
        versions.iter().map(|v| v.number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(versions[1].sha256, "b".repeat(64));
    assert_eq!(versions[1].uploaded_by, "ci");
    assert_eq!(
        state.service(&svc).unwrap().unwrap().active,
        None,
        "uploads do not activate"
    );
    assert_eq!(state.activate(&svc, 2).unwrap().active, Some(2));
    assert!(matches!(
        state.activate(&svc, 9),
        Err(ControlError::NoSuchVersion { version: 9, .. })
    ));
    assert_eq!(state.service(&svc).unwrap().unwrap().active, Some(2));
    assert!(matches!(
        state.add_version(
            &name("nobody"),
            NewVersion {
                sha256: "c".repeat(64),
                size: 1,
                uploaded_by: "ci".into()
            }
        ),
        Err(ControlError::NoSuchService(_))
    ));
}

pub fn rollback_walks_back_the_activations(state: &dyn ControlState) {
    let svc = name("svc");
    state.create_service(&svc, &[]).unwrap();
    assert!(matches!(
        state.rollback(&svc),
        Err(ControlError::NothingToRollBack(_))
    ));
    for sha in ['a', 'b', 'c'] {
        let n = upload(state, &svc, sha);
        state.activate(&svc, n).unwrap();
    }
    assert_eq!(state.rollback(&svc).unwrap().active, Some(2));
    assert_eq!(state.rollback(&svc).unwrap().active, Some(1));
    assert!(matches!(
        state.rollback(&svc),
        Err(ControlError::NothingToRollBack(_))
    ));
    assert_eq!(state.service(&svc).unwrap().unwrap().active, Some(1));
}

pub fn the_active_version_cannot_be_deleted(state: &dyn ControlState) {
    let svc = name("svc");
    state.create_service(&svc, &[]).unwrap();
    upload(state, &svc, 'a');
    upload(state, &svc, 'b');
    state.activate(&svc, 1).unwrap();
    state.activate(&svc, 2).unwrap();
    assert!(matches!(
        state.delete_version(&svc, 2),
        Err(ControlError::VersionActive { version: 2, .. })
    ));
    assert_eq!(
        state.delete_version(&svc, 1).unwrap().sha256,
        "a".repeat(64)
    );
    // A deleted version is no rollback target any more.
    assert!(matches!(
        state.rollback(&svc),
        Err(ControlError::NothingToRollBack(_))
    ));
    assert!(matches!(
        state.delete_version(&svc, 1),
        Err(ControlError::NoSuchVersion { version: 1, .. })
    ));
    // Numbers are never reused.
    assert_eq!(upload(state, &svc, 'c'), 3);
}

pub fn tokens_are_added_once_and_revoked(state: &dyn ControlState) {
    let token = TokenRecord {
        id: "0123456789ab".into(),
        name: "deployer".into(),
        service: Some("svc".into()),
        write: true,
        secret_sha256: "d".repeat(64),
        created_at_ms: 1,
        expires_at_ms: None,
    };
    state.add_token(token.clone()).unwrap();
    assert_eq!(state.token(&token.id).unwrap(), Some(token.clone()));
    assert!(matches!(
        state.add_token(TokenRecord { name: "other".into(), ..token.clone() }),
        Err(ControlError::TokenExists(id)) if id == token.id
    ));
    assert_eq!(
        state.token(&token.id).unwrap().unwrap().name,
        "deployer",
        "no overwrite"
    );
    assert_eq!(state.tokens().unwrap(), std::slice::from_ref(&token));
    assert!(state.revoke_token(&token.id).unwrap());
    assert!(!state.revoke_token(&token.id).unwrap());
    assert_eq!(state.token(&token.id).unwrap(), None);
}

pub fn a_deleted_service_leaves_nothing_behind(state: &dyn ControlState) {
    let svc = name("svc");
    state
        .create_service(&svc, &domains(&["svc.example"]))
        .unwrap();
    upload(state, &svc, 'a');
    state.activate(&svc, 1).unwrap();
    state.delete_service(&svc).unwrap();
    // The name and the domain are free again, and the new service starts at version 1.
    let again = state
        .create_service(&svc, &domains(&["svc.example"]))
        .unwrap();
    assert_eq!(again.active, None);
    assert!(state.versions(&svc).unwrap().is_empty());
    assert_eq!(upload(state, &svc, 'b'), 1);
}
