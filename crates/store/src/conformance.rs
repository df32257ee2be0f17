//! The KV rules every [`Backend`](crate::Backend) must keep, as functions another
//! crate can run against its own backend: `run(|| Kv::new(Arc::new(MyBackend::new())))`.
//! The in-memory and redb backends pass them in this crate's tests; a distributed
//! backend passes the very same ones.
//!
//! Each case takes a fresh, empty store and panics on the first rule broken.

use std::time::Duration;

use bytes::Bytes;

use crate::{InsertMode, InsertOptions, Kv, KvError, KvLimits, Namespace};

/// A case: its name, and the function that runs it on a fresh store.
pub type Case = (&'static str, fn(Kv));

/// Every case, by name.
pub const CASES: &[Case] = &[
    ("insert_lookup_delete", insert_lookup_delete),
    ("namespaces_are_isolated", namespaces_are_isolated),
    ("insert_modes", insert_modes),
    ("metadata_and_append_keep_it", metadata_and_append_keep_it),
    ("compare_and_swap", compare_and_swap),
    (
        "expired_items_are_never_returned_and_get_purged",
        expired_items_are_never_returned_and_get_purged,
    ),
    ("limits_name_the_limit", limits_name_the_limit),
    ("increments", increments),
    (
        "listing_pages_by_prefix_and_stays_stable_while_keys_change",
        listing_pages_by_prefix_and_stays_stable_while_keys_change,
    ),
];

/// Runs every case, each on a fresh store from `fresh`; a failure names its case.
pub fn run(fresh: impl Fn() -> Kv) {
    for (name, case) in CASES {
        eprintln!("KV conformance: {name}");
        case(fresh());
    }
}

fn ns(store: &str) -> Namespace {
    Namespace::new("app", store, KvLimits::DEFAULT)
}

fn put(kv: &Kv, ns: &Namespace, key: &str, value: &str) -> u64 {
    kv.insert(
        ns,
        key,
        Bytes::from(value.to_owned()),
        InsertOptions::default(),
    )
    .unwrap()
}

fn value(kv: &Kv, ns: &Namespace, key: &str) -> Option<String> {
    kv.lookup(ns, key)
        .unwrap()
        .map(|e| String::from_utf8(e.value.to_vec()).unwrap())
}

pub fn insert_lookup_delete(kv: Kv) {
    let links = ns("links");
    assert_eq!(value(&kv, &links, "a"), None);
    let g1 = put(&kv, &links, "a", "1");
    let g2 = put(&kv, &links, "a", "2");
    assert!(g2 > g1, "generations increase");
    assert_eq!(value(&kv, &links, "a").as_deref(), Some("2"));
    assert!(kv.delete(&links, "a").unwrap());
    assert!(!kv.delete(&links, "a").unwrap());
    assert_eq!(value(&kv, &links, "a"), None);
}

pub fn namespaces_are_isolated(kv: Kv) {
    let mine = Namespace::new("app-a", "links", KvLimits::DEFAULT);
    let theirs = Namespace::new("app-b", "links", KvLimits::DEFAULT);
    put(&kv, &mine, "k", "mine");
    assert_eq!(value(&kv, &theirs, "k"), None);
    assert_eq!(kv.list(&theirs, "", None, 10).unwrap().keys.len(), 0);
}

pub fn insert_modes(kv: Kv) {
    let s = ns("s");
    let add = |v: &str| {
        kv.insert(
            &s,
            "k",
            Bytes::from(v.to_owned()),
            InsertOptions {
                mode: InsertMode::Add,
                ..Default::default()
            },
        )
    };
    add("first").unwrap();
    assert!(matches!(add("second"), Err(KvError::Exists)));
    let with_mode = |mode, v: &str| {
        kv.insert(
            &s,
            "k",
            Bytes::from(v.to_owned()),
            InsertOptions {
                mode,
                metadata: None,
                ..Default::default()
            },
        )
        .unwrap()
    };
    with_mode(InsertMode::Append, "+a");
    with_mode(InsertMode::Prepend, "p+");
    assert_eq!(value(&kv, &s, "k").as_deref(), Some("p+first+a"));
}

pub fn metadata_and_append_keep_it(kv: Kv) {
    let s = ns("s");
    kv.insert(
        &s,
        "k",
        Bytes::from_static(b"v"),
        InsertOptions {
            metadata: Some("{\"owner\":\"ana\"}".into()),
            ..Default::default()
        },
    )
    .unwrap();
    kv.insert(
        &s,
        "k",
        Bytes::from_static(b"w"),
        InsertOptions {
            mode: InsertMode::Append,
            ..Default::default()
        },
    )
    .unwrap();
    let entry = kv.lookup(&s, "k").unwrap().unwrap();
    assert_eq!(entry.metadata.as_deref(), Some("{\"owner\":\"ana\"}"));
    assert_eq!(&entry.value[..], b"vw");
}

pub fn compare_and_swap(kv: Kv) {
    let s = ns("s");
    let g = put(&kv, &s, "k", "1");
    let cas = |expected: u64, v: &str| {
        kv.insert(
            &s,
            "k",
            Bytes::from(v.to_owned()),
            InsertOptions {
                if_generation: Some(expected),
                ..Default::default()
            },
        )
    };
    let g2 = cas(g, "2").unwrap();
    match cas(g, "3") {
        Err(KvError::GenerationMismatch { expected, found }) => {
            assert_eq!((expected, found), (g, Some(g2)));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(value(&kv, &s, "k").as_deref(), Some("2"));
    // Deleted and written again: a new generation, so an old CAS still fails.
    kv.delete(&s, "k").unwrap();
    put(&kv, &s, "k", "again");
    assert!(cas(g2, "x").is_err());
}

pub fn expired_items_are_never_returned_and_get_purged(kv: Kv) {
    let s = ns("s");
    kv.insert(
        &s,
        "short",
        Bytes::from_static(b"v"),
        InsertOptions {
            ttl: Some(Duration::from_millis(1)),
            ..Default::default()
        },
    )
    .unwrap();
    put(&kv, &s, "kept", "v");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while kv.lookup(&s, "short").unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "never expired");
        std::thread::yield_now();
    }
    assert_eq!(kv.list(&s, "", None, 10).unwrap().keys, vec!["kept"]);
    assert_eq!(kv.purge_expired(100).unwrap(), 1);
    assert_eq!(kv.purge_expired(100).unwrap(), 0);
    assert_eq!(value(&kv, &s, "kept").as_deref(), Some("v"));
}

pub fn limits_name_the_limit(kv: Kv) {
    let s = Namespace::new(
        "app",
        "s",
        KvLimits {
            max_key_bytes: 8,
            max_value_bytes: 4,
            max_metadata_bytes: 2,
        },
    );
    let err = kv
        .insert(&s, "123456789", Bytes::new(), InsertOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the key is 9 bytes; keys are limited to 8 bytes"
    );
    let err = kv
        .insert(&s, "k", Bytes::from_static(b"12345"), Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("limited to 4 bytes"), "{err}");
    let err = kv
        .insert(
            &s,
            "k",
            Bytes::new(),
            InsertOptions {
                metadata: Some("abc".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("metadata is limited to 2"),
        "{err}"
    );
    assert!(matches!(
        kv.lookup(&s, "a\nb"),
        Err(KvError::KeyControlCharacter { at: 1 })
    ));
    assert!(matches!(kv.lookup(&s, ""), Err(KvError::EmptyKey)));
    // Appending past the limit is refused too, and the item is unchanged.
    kv.insert(&s, "k", Bytes::from_static(b"123"), Default::default())
        .unwrap();
    assert!(
        kv.insert(
            &s,
            "k",
            Bytes::from_static(b"45"),
            InsertOptions {
                mode: InsertMode::Append,
                ..Default::default()
            }
        )
        .is_err()
    );
    assert_eq!(value(&kv, &s, "k").as_deref(), Some("123"));
}

pub fn increments(kv: Kv) {
    let s = ns("s");
    assert_eq!(kv.increment(&s, "n", 5).unwrap(), 5);
    assert_eq!(kv.increment(&s, "n", -7).unwrap(), -2);
    assert_eq!(value(&kv, &s, "n").as_deref(), Some("-2"));
    put(&kv, &s, "text", "hello");
    assert!(matches!(
        kv.increment(&s, "text", 1),
        Err(KvError::NotANumber)
    ));
    put(&kv, &s, "big", &i64::MAX.to_string());
    assert!(matches!(kv.increment(&s, "big", 1), Err(KvError::Overflow)));
}

pub fn listing_pages_by_prefix_and_stays_stable_while_keys_change(kv: Kv) {
    let s = ns("s");
    for i in 0..25 {
        put(&kv, &s, &format!("user:{i:02}"), "v");
    }
    put(&kv, &s, "other", "v");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = kv.list(&s, "user:", cursor.as_deref(), 10).unwrap();
        pages += 1;
        // Keys change under the walk: one already listed goes, new ones come
        // before and after the cursor.
        if pages == 1 {
            kv.delete(&s, "user:00").unwrap();
            put(&kv, &s, "user:000", "before the cursor");
            put(&kv, &s, "user:99", "after the cursor");
        }
        seen.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25)
        .map(|i| format!("user:{i:02}"))
        .chain(["user:99".to_owned()])
        .collect();
    assert_eq!(
        seen, expected,
        "every key present throughout, once, in order"
    );
    assert_eq!(pages, 3);
    assert!(kv.list(&s, "", None, 0).is_err());
}
