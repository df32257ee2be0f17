//! A field filter in front of a JSON API: `GET /api/PATH` fetches `/PATH` from the
//! backend `origin` and answers only the fields listed in `FIELDS` (comma-separated,
//! dotted for nested objects: `id,name,owner.login`). Arrays of objects are filtered
//! element by element. An answer that is not JSON is passed through untouched, with an
//! `x-filter-error` header saying why. Anything but `GET /api/*` answers 404 (or 405).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use verge::{Error, Params, Request, Response, Router};

/// The fields to keep: a name, with the fields to keep inside it (empty: all of it).
#[derive(Debug, Default)]
struct Fields(BTreeMap<String, Fields>);

impl Fields {
    fn parse(spec: &str) -> Fields {
        let mut root = Fields::default();
        for path in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut node = &mut root;
            for part in path.split('.') {
                node = node.0.entry(part.to_owned()).or_default();
            }
        }
        root
    }

    fn apply(&self, value: Value) -> Value {
        match value {
            Value::Object(object) if !self.0.is_empty() => {
                let mut kept = Map::new();
                for (key, value) in object {
                    if let Some(inner) = self.0.get(&key) {
                        kept.insert(key, inner.apply(value));
                    }
                }
                Value::Object(kept)
            }
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.apply(v)).collect()),
            other => other,
        }
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    })
}

fn filter(req: Request, params: Params) -> Result<Response, Error> {
    let path = params.get("path").unwrap_or("");
    let query = req.query().map(|q| format!("?{q}")).unwrap_or_default();
    let mut upstream = Request::get(format!("/{path}{query}"))?;
    *upstream.headers_mut() = req.headers().clone();
    let mut resp = upstream.send("origin")?;

    if !is_json(resp.header("content-type")) {
        let why = format!(
            "the origin answered {}, not JSON",
            resp.header("content-type")
                .unwrap_or("without a content-type")
        );
        return Ok(resp.with_header("x-filter-error", why));
    }
    let status = resp.status();
    let bytes = resp.take_body().into_bytes()?;
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            resp.headers_mut().remove("content-length");
            let why = format!("the origin's JSON is invalid: {e}");
            return Ok(resp.with_header("x-filter-error", why).with_body(bytes));
        }
    };
    let fields = Fields::parse(&verge::env::var("FIELDS").unwrap_or_default());
    Ok(Response::from_json(&fields.apply(value))?.with_status(status))
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    Router::new().get("/api/*path", filter).run(req)
}
