//! The admin API's OpenAPI document as tests use it: its operations, a validator for
//! the JSON Schema (2020-12) subset its schemas use, and proptest strategies that
//! make values from those schemas.

use proptest::prelude::*;
use serde_json::{Map, Value};

pub fn document() -> Value {
    let text = std::fs::read_to_string(super::repo_root().join("docs/admin-api.openapi.json"))
        .expect("docs/admin-api.openapi.json");
    serde_json::from_str(&text).expect("the OpenAPI document is JSON")
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub path: String,
    /// Lower case, as the document writes it.
    pub method: String,
    pub op: Value,
}

pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            if method != "parameters" {
                ops.push(Operation {
                    path: path.clone(),
                    method: method.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    ops
}

/// `value` with every `$ref` at its top resolved.
pub fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(target) = value.get("$ref").and_then(Value::as_str) {
        value = doc
            .pointer(target.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{target} resolves to nothing"));
    }
    value
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("a schema type the validator does not know: {other}"),
    }
}

/// Whether `value` is valid against `schema`; the first reason it is not.
pub fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if schema == &Value::Bool(true) {
        return Ok(());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = one
            .iter()
            .filter(|s| validate(doc, s, value, at).is_ok())
            .count();
        if passing != 1 {
            return Err(format!("{at}: {passing} of the oneOf match {value}"));
        }
    }
    if let Some(want) = schema.get("const")
        && want != value
    {
        return Err(format!("{at}: {value} is not {want}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match schema.get("type") {
        Some(Value::String(ty)) if !has_type(value, ty) => {
            return Err(format!("{at}: {value} is not of type {ty}"));
        }
        Some(Value::Array(types))
            if !types.iter().any(|t| has_type(value, t.as_str().unwrap())) =>
        {
            return Err(format!("{at}: {value} is none of the types {types:?}"));
        }
        _ => {}
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n < min
    {
        return Err(format!("{at}: {n} is below {min}"));
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: no `{name}` in {value}"));
            }
        }
        for (name, field) in object {
            let at = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, field, &at)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) if schema.get("oneOf").is_none() => {
                        return Err(format!("{at}: not a documented field"));
                    }
                    Some(s @ Value::Object(_)) => validate(doc, s, field, &at)?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Strings a request might carry: valid-looking names, URLs and anything.
fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        Just("shop".to_owned()),
        Just("k".to_owned()),
        Just("https://shop.test/items/1".to_owned()),
        "[a-z][a-z0-9-]{0,12}",
        ".{0,24}",
        Just("x".repeat(70)),
    ]
    .boxed()
}

/// Values valid against `schema` (mostly: a string field may need more than its
/// type says, which is what the node's 400s are for).
pub fn arb_value(doc: &Value, schema: &Value) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema).clone();
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let choices: Vec<BoxedStrategy<Value>> = one.iter().map(|s| arb_value(doc, s)).collect();
        return proptest::strategy::Union::new(choices).boxed();
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        // Objects only: merge what each part makes.
        let parts: Vec<BoxedStrategy<Value>> = all.iter().map(|s| arb_value(doc, s)).collect();
        return parts
            .prop_map(|values| {
                let mut merged = Map::new();
                for v in values {
                    if let Value::Object(m) = v {
                        merged.extend(m);
                    }
                }
                Value::Object(merged)
            })
            .boxed();
    }
    if let Some(value) = schema.get("const") {
        return Just(value.clone()).boxed();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return proptest::sample::select(values.clone()).boxed();
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
        _ => return Just(Value::Null).boxed(),
    };
    let choices: Vec<BoxedStrategy<Value>> = types
        .iter()
        .map(|ty| match ty.as_str() {
            "null" => Just(Value::Null).boxed(),
            "boolean" => any::<bool>().prop_map(Value::from).boxed(),
            "integer" => prop_oneof![0u64..4, any::<u32>().prop_map(u64::from), any::<u64>()]
                .prop_map(Value::from)
                .boxed(),
            "number" => any::<f64>().prop_map(Value::from).boxed(),
            "string" => any_text().prop_map(Value::from).boxed(),
            "array" => {
                let items = schema.get("items").cloned().unwrap_or(Value::Bool(true));
                proptest::collection::vec(arb_value(doc, &items), 0..3)
                    .prop_map(Value::from)
                    .boxed()
            }
            "object" => arb_object(doc, &schema),
            other => panic!("a schema type the generator does not know: {other}"),
        })
        .collect();
    proptest::strategy::Union::new(choices).boxed()
}

fn arb_object(doc: &Value, schema: &Value) -> BoxedStrategy<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            let name = name.clone();
            let value = arb_value(doc, s);
            if required.contains(&name.as_str()) {
                value.prop_map(move |v| Some((name.clone(), v))).boxed()
            } else {
                proptest::option::of(value.prop_map(move |v| (name.clone(), v))).boxed()
            }
        })
        .collect();
    let map_values = match schema.get("additionalProperties") {
        Some(s @ Value::Object(_)) => {
            proptest::collection::btree_map("[a-z]{1,6}", arb_value(doc, s), 0..3).boxed()
        }
        _ => Just(Default::default()).boxed(),
    };
    (fields, map_values)
        .prop_map(|(fields, extra)| {
            let mut object: Map<String, Value> = extra.into_iter().collect();
            object.extend(fields.into_iter().flatten());
            Value::Object(object)
        })
        .boxed()
}
