//! `GET /admin/v1/apps/{app}/logs`: the app's access and guest lines, live, as
//! server-sent events (`verge logs --tail`).
//!
//! - `?status=5xx,404` keeps the requests answered with those statuses, with all
//!   their lines: a request's other lines are held until its access line says how it
//!   ended (for up to [`HELD_REQUESTS`] requests at a time).
//! - `?search=TEXT` keeps the lines containing TEXT.
//! - `?node=NAME` keeps the lines of one node of a fleet. In a fleet every line is
//!   tagged with the node that wrote it (`"node":"pop-b"` first in the object), and
//!   the other nodes' lines arrive too (relayed while the tail watches).
//!
//! Events: `ready` once watching, then one `data:` event per JSON line, `dropped`
//! (`{"dropped": N}`) when the tail fell behind and lost lines, and a comment every
//! [`KEEPALIVE`] so proxies keep the connection open.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;

use super::{Reply, error};
use crate::log_tap::{LogTap, TapLine, Watched};

/// Requests whose lines are held, waiting for their status.
pub const HELD_REQUESTS: usize = 1024;
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What a tail keeps.
#[derive(Debug, Default)]
pub struct TailFilter {
    /// Status classes (`5` for `5xx`) and exact statuses; empty keeps all.
    statuses: Vec<StatusMatch>,
    search: Option<String>,
    node: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StatusMatch {
    Class(u16),
    Exact(u16),
}

impl TailFilter {
    /// Reads `status` and `search` from a query string; the error names what is wrong.
    pub fn from_query(query: Option<&str>) -> Result<TailFilter, String> {
        let mut filter = TailFilter::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = super::percent_decode(&value.replace('+', " "))
                .ok_or_else(|| format!("`{name}` is not valid UTF-8"))?;
            match name {
                "status" => {
                    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        filter.statuses.push(parse_status(item)?);
                    }
                }
                "search" if !value.is_empty() => filter.search = Some(value),
                "search" => {}
                "node" if !value.is_empty() => filter.node = Some(value),
                "node" => {}
                other => {
                    return Err(format!(
                        "unknown parameter `{other}`: use status, search or node"
                    ));
                }
            }
        }
        Ok(filter)
    }

    fn status_matches(&self, status: u16) -> bool {
        self.statuses.is_empty()
            || self.statuses.iter().any(|m| match *m {
                StatusMatch::Class(c) => status / 100 == c,
                StatusMatch::Exact(s) => status == s,
            })
    }

    fn text_matches(&self, json: &[u8]) -> bool {
        match &self.search {
            None => true,
            Some(text) => json.windows(text.len()).any(|w| w == text.as_bytes()),
        }
    }
}

fn parse_status(item: &str) -> Result<StatusMatch, String> {
    let bad = || format!("status `{item}` is neither a status (404) nor a class (5xx)");
    let lower = item.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(c @ 1..=5) if class.len() == 1 => Ok(StatusMatch::Class(c)),
            _ => Err(bad()),
        };
    }
    match item.parse::<u16>() {
        Ok(s @ 100..=599) => Ok(StatusMatch::Exact(s)),
        _ => Err(bad()),
    }
}

/// `json` (an object) with `"node":NAME` first.
fn tagged(json: &Bytes, node: &str) -> Bytes {
    let Some(rest) = json.strip_prefix(b"{") else {
        return json.clone();
    };
    let name = serde_json::to_string(node).unwrap_or_default();
    let mut out = Vec::with_capacity(json.len() + name.len() + 9);
    out.extend_from_slice(b"{\"node\":");
    out.extend_from_slice(name.as_bytes());
    if rest != b"}" {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

/// The event stream of `app`'s lines passing `filter`; in a fleet, `node` is this
/// node's name, which its own lines are tagged with.
pub fn tail(tap: &Arc<LogTap>, app: &str, filter: TailFilter, node: Option<Arc<str>>) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut watch = tap.tail(app);
    let app: Arc<str> = app.into();
    tokio::spawn(async move {
        let ready = format!(
            "event: ready\ndata: {}\n\n",
            serde_json::json!({ "app": &*app })
        );
        if tx.send(Bytes::from(ready)).await.is_err() {
            return;
        }
        let mut held = Held::default();
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            let events = tokio::select! {
                watched = watch.next() => match watched {
                    Watched::Line(mut line) if line.app == app => {
                        if let Some(from) = line.node.clone().or_else(|| node.clone()) {
                            if filter.node.as_deref().is_some_and(|want| want != &*from) {
                                continue;
                            }
                            line.json = tagged(&line.json, &from);
                        }
                        held.pass(&filter, line)
                    }
                    Watched::Line(_) => continue,
                    Watched::Dropped(n) => {
                        vec![Bytes::from(format!("event: dropped\ndata: {{\"dropped\":{n}}}\n\n"))]
                    }
                },
                _ = keepalive.tick() => vec![Bytes::from_static(b": keepalive\n\n")],
                () = tx.closed() => return,
            };
            for event in events {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut resp = Response::new(EventStream(rx).boxed_unsync());
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// Lines held until their request's status is known (only with a status filter).
#[derive(Default)]
struct Held {
    lines: HashMap<Arc<str>, Vec<Bytes>>,
    order: VecDeque<Arc<str>>,
}

impl Held {
    /// The events `line` lets out.
    fn pass(&mut self, filter: &TailFilter, line: TapLine) -> Vec<Bytes> {
        let event = |json: &Bytes| {
            let mut e = Vec::with_capacity(json.len() + 8);
            e.extend_from_slice(b"data: ");
            e.extend_from_slice(json);
            e.extend_from_slice(b"\n\n");
            Bytes::from(e)
        };
        let keep_text = filter.text_matches(&line.json);
        if filter.statuses.is_empty() {
            return if keep_text {
                vec![event(&line.json)]
            } else {
                Vec::new()
            };
        }
        match line.status {
            None => {
                if keep_text {
                    if !self.lines.contains_key(&line.request_id) {
                        if self.order.len() == HELD_REQUESTS
                            && let Some(oldest) = self.order.pop_front()
                        {
                            self.lines.remove(&oldest);
                        }
                        self.order.push_back(line.request_id.clone());
                    }
                    self.lines
                        .entry(line.request_id)
                        .or_default()
                        .push(line.json);
                }
                Vec::new()
            }
            Some(status) => {
                let earlier = self.lines.remove(&line.request_id).unwrap_or_default();
                if let Some(at) = self.order.iter().position(|id| *id == line.request_id) {
                    self.order.remove(at);
                }
                if !filter.status_matches(status) {
                    return Vec::new();
                }
                let mut events: Vec<Bytes> = earlier.iter().map(event).collect();
                if keep_text {
                    events.push(event(&line.json));
                }
                events
            }
        }
    }
}

/// A response body of events from the tail's task.
struct EventStream(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|e| e.map(|e| Ok(Frame::data(e))))
    }
}

/// A tail refused: bad parameters.
pub fn bad_filter(why: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, status: Option<u16>, text: &str) -> TapLine {
        TapLine {
            app: "a".into(),
            request_id: id.into(),
            status,
            json: Bytes::from(text.to_owned()),
            node: None,
        }
    }

    #[test]
    fn lines_are_tagged_with_their_node_first() {
        let line = Bytes::from_static(br#"{"type":"access","status":200}"#);
        assert_eq!(
            tagged(&line, "pop-b"),
            Bytes::from_static(br#"{"node":"pop-b","type":"access","status":200}"#)
        );
        assert_eq!(
            tagged(&Bytes::from_static(b"{}"), "a\"b"),
            Bytes::from_static(br#"{"node":"a\"b"}"#)
        );
    }

    #[test]
    fn a_status_filter_lets_out_a_requests_lines_with_its_access_line() {
        let filter = TailFilter::from_query(Some("status=5xx,404")).unwrap();
        let mut held = Held::default();
        assert!(held.pass(&filter, line("r1", None, "boom")).is_empty());
        assert!(held.pass(&filter, line("r2", None, "fine")).is_empty());
        let out = held.pass(&filter, line("r1", Some(503), "access r1"));
        assert_eq!(
            out,
            vec![
                Bytes::from("data: boom\n\n"),
                Bytes::from("data: access r1\n\n")
            ]
        );
        assert!(
            held.pass(&filter, line("r2", Some(200), "access r2"))
                .is_empty()
        );
        assert_eq!(held.pass(&filter, line("r3", Some(404), "x")).len(), 1);
        assert!(held.lines.is_empty() && held.order.is_empty());
    }

    #[test]
    fn held_requests_are_bounded() {
        let filter = TailFilter::from_query(Some("status=500")).unwrap();
        let mut held = Held::default();
        for i in 0..HELD_REQUESTS + 10 {
            held.pass(&filter, line(&i.to_string(), None, "l"));
        }
        assert_eq!(held.lines.len(), HELD_REQUESTS);
        assert!(!held.lines.contains_key("0"));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, says) in [
            ("status=6xx", "`6xx`"),
            ("status=abc", "`abc`"),
            ("status=99", "`99`"),
            ("level=warn", "unknown parameter `level`"),
            ("nodes=a", "use status, search or node"),
        ] {
            let err = TailFilter::from_query(Some(query)).unwrap_err();
            assert!(err.contains(says), "{query}: {err}");
        }
        let f = TailFilter::from_query(Some("search=card%20declined&status=2XX")).unwrap();
        assert_eq!(f.search.as_deref(), Some("card declined"));
        assert_eq!(f.statuses, vec![StatusMatch::Class(2)]);
    }
}
