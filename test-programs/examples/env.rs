//! Reports what the sandbox lets it see: environment variables, files, sockets.
use verge::{Error, Request, Response};

#[verge::main]
fn main(_req: Request) -> Result<Response, Error> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let root = std::fs::read_dir("/").map(|_| "readable").unwrap_or("denied");
    let file = std::fs::read("/etc/passwd").map(|_| "readable").unwrap_or("denied");
    let socket = std::net::TcpStream::connect("127.0.0.1:1").map(|_| "connected").unwrap_or("denied");
    Ok(Response::json(&serde_json::json!({
        "env": env,
        "fs_root": root,
        "fs_file": file,
        "tcp": socket,
    }))?)
}
