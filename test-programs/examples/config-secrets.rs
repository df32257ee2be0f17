//! Config and secrets through the SDK.
//!
//! - `GET /config/KEY`: the value, 404 when unset; `GET /config`: all, as JSON
//! - `GET /secret/STORE/NAME`: the secret's value (a response is the app's business)
//! - `GET /leak/STORE/NAME`: logs the value to stdout and stderr, debug-prints the
//!   `Secret`, then panics with the value in the message; Verge's logs must show
//!   none of it.
use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["config"] => Response::from_json(&verge::config::all()),
        ["config", key] => Ok(match verge::config::get(key) {
            Some(value) => Response::from_text(value),
            None => Response::from_status(404),
        }),
        ["secret", store, name] => Ok(match verge::secrets::get(store, name) {
            Ok(Some(secret)) => Response::from_body(secret.plaintext()),
            Ok(None) => Response::from_status(404),
            Err(e) => Response::from_status(400).with_body(e.to_string()),
        }),
        ["leak", store, name] => {
            let secret = verge::secrets::get(store, name)?.expect("the secret exists");
            let text = secret.text().unwrap_or_default();
            println!("stdout: the token is {text} ({secret:?})");
            eprintln!("stderr: the token is {text}");
            panic!("failed while holding {text}");
        }
        _ => Ok(Response::from_status(404)),
    }
}
