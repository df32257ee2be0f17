//! The OpenAPI document (`docs/admin-api.openapi.json`) against the code: its
//! schemas are generated from the wire types (run with `UPDATE_OPENAPI=1` to write
//! them after changing a type), and its paths and methods are the routes the API
//! serves. The statuses and bodies a running node answers are checked against the
//! document by `tests/node.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::tests::fixture;

fn document_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/admin-api.openapi.json")
}

fn document() -> Value {
    let text = std::fs::read_to_string(document_path()).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every schema the API's bodies use, by name, from the types that (de)serialise
/// them.
fn generated_schemas() -> serde_json::Map<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    generator.subschema_for::<crate::wire::ApiError>();
    generator.subschema_for::<crate::wire::ServiceInfo>();
    generator.subschema_for::<crate::wire::VersionInfo>();
    generator.subschema_for::<crate::wire::TokenInfo>();
    generator.subschema_for::<crate::wire::NewToken>();
    generator.subschema_for::<crate::wire::CreateService>();
    generator.subschema_for::<crate::wire::Activate>();
    generator.subschema_for::<crate::wire::Activated>();
    generator.subschema_for::<crate::wire::CreateToken>();
    generator.subschema_for::<crate::wire::Deleted>();
    generator.subschema_for::<crate::wire::Revoked>();
    generator.subschema_for::<crate::wire::Nodes>();
    generator.subschema_for::<crate::wire::KvStores>();
    generator.subschema_for::<crate::kv_ops::Op>();
    generator.subschema_for::<crate::kv_ops::Answer>();
    generator.subschema_for::<verge_server::admin::Purged>();
    generator.subschema_for::<verge_server::admin::PurgeUrl>();
    generator.subschema_for::<verge_server::admin::Whoami>();
    generator.subschema_for::<verge_server::traffic::TrafficHistory>();
    generator
        .take_definitions(true)
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap()))
        .collect()
}

#[test]
fn the_document_s_schemas_are_the_wire_types() {
    let generated = Value::Object(generated_schemas());
    let mut doc = document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        doc["components"]["schemas"] = generated;
        let text = serde_json::to_string_pretty(&doc).unwrap();
        std::fs::write(document_path(), text + "\n").unwrap();
        return;
    }
    let documented = &doc["components"]["schemas"];
    for (name, schema) in generated.as_object().unwrap() {
        assert_eq!(
            documented.get(name),
            Some(schema),
            "docs/admin-api.openapi.json: the schema {name} is not the wire type's; \
             UPDATE_OPENAPI=1 cargo test -p verge-node the_document writes it"
        );
    }
    let extra: Vec<&String> = documented
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| !generated.as_object().unwrap().contains_key(*name))
        .collect();
    assert!(extra.is_empty(), "schemas no type has: {extra:?}");
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_s_paths_are_the_routes_served() {
    let doc = document();
    let f = fixture().await;
    let served: BTreeMap<String, BTreeSet<String>> = f
        .api
        .routes()
        .iter()
        .map(|route| {
            let methods = route.methods.iter().map(|m| m.as_str().to_lowercase());
            (route.path.to_owned(), methods.collect())
        })
        .collect();
    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            let methods = ops.as_object().unwrap().keys();
            let methods = methods.filter(|m| *m != "parameters").cloned();
            (path.clone(), methods.collect())
        })
        .collect();
    assert_eq!(
        documented, served,
        "paths and methods of the document and the API"
    );

    // Every operation says what a token problem answers, and every reference
    // resolves.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let public = op.get("security") == Some(&serde_json::json!([]));
            let responses = op["responses"].as_object().unwrap();
            if !public {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
                // Any valid token may ask who it is and where the nodes are.
                if path != "/admin/v1/whoami" && path != "/admin/v1/nodes" {
                    assert!(responses.contains_key("403"), "{method} {path}: no 403");
                }
            }
            if path.contains("{name}") && path.starts_with("/admin/v1/services") {
                assert!(
                    responses.contains_key("400") || responses.contains_key("404"),
                    "{method} {path}: what a bad name answers"
                );
            }
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for target in found {
        let pointer = target.trim_start_matches('#');
        assert!(
            doc.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }
}
