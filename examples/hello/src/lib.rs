//! The hello example: `GET /` greets, `GET /greet/NAME` greets by name,
//! `POST /json` echoes a JSON object back with a field added.

use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let greeting = verge::env::var("GREETING").unwrap_or_else(|| "Hello".into());
    let path = req.path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("GET", "/") => Ok(Response::from_text(format!("{greeting}, world!\n"))),
        ("GET", p) if p.starts_with("/greet/") => {
            let name = &p["/greet/".len()..];
            Ok(Response::from_text(format!("{greeting}, {name}!\n")))
        }
        ("POST", "/json") => {
            let mut value: serde_json::Map<String, serde_json::Value> = req.into_json()?;
            value.insert("greeting".into(), greeting.into());
            Ok(Response::from_json(&value)?)
        }
        _ => Ok(Response::from_status(404).with_body("not found\n")),
    }
}
