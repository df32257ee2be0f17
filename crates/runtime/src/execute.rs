//! Running one request in one fresh instance.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::app::App;
use crate::coalesce::Coalesced;
use crate::guest_log::GuestLogSink;
use crate::host::downstream::TlsInfo;
use crate::outcome::{Failure, Report, error_chain};
use crate::state::RequestState;
use crate::trace::TraceContext;

/// The response body type: streamed from the guest as it writes.
pub type ResponseBody = HyperOutgoingBody;

/// Per-request context supplied by the caller (the server).
#[derive(Clone)]
pub struct RequestContext {
    /// Tags every log line of this request.
    pub request_id: Arc<str>,
    /// Where the guest's stdout and stderr lines go.
    pub log: Arc<dyn GuestLogSink>,
    /// The client's address: the socket peer, or what a trusted proxy said it was.
    pub client_addr: Option<SocketAddr>,
    /// The scheme the client used: `https` when the server terminated TLS.
    pub scheme: http::uri::Scheme,
    /// The client connection's TLS parameters; `None` for plain HTTP.
    pub tls: Option<Arc<TlsInfo>>,
}

impl RequestContext {
    /// A context for a plain-HTTP request with no known client address.
    pub fn new(request_id: impl Into<Arc<str>>, log: Arc<dyn GuestLogSink>) -> Self {
        RequestContext {
            request_id: request_id.into(),
            log,
            client_addr: None,
            scheme: http::uri::Scheme::HTTP,
            tls: None,
        }
    }
}

/// The response to send, and the report that completes once the guest has finished
/// (which may be after the response headers were sent, while the body still streams).
pub struct Execution {
    pub response: http::Response<ResponseBody>,
    pub report: PendingReport,
}

/// Resolves to the request's [`Report`] once the guest has finished.
pub struct PendingReport {
    state: PendingState,
    /// Set when the host knows better than the guest how the request ended.
    override_failure: Option<Failure>,
}

enum PendingState {
    Ready(Report),
    Running(oneshot::Receiver<Report>),
}

impl PendingReport {
    fn ready(report: Report) -> Self {
        Self {
            state: PendingState::Ready(report),
            override_failure: None,
        }
    }

    /// The report, if the guest has already finished; otherwise the pending report.
    #[allow(
        clippy::result_large_err,
        reason = "moved once per request; boxing would cost an allocation instead"
    )]
    pub fn try_now(mut self) -> Result<Report, PendingReport> {
        if let PendingState::Running(rx) = &mut self.state {
            match rx.try_recv() {
                Ok(report) => self.state = PendingState::Ready(report),
                Err(oneshot::error::TryRecvError::Empty) => return Err(self),
                Err(oneshot::error::TryRecvError::Closed) => return Err(self),
            }
        }
        let PendingState::Ready(mut report) = self.state else {
            unreachable!("the state was made ready above")
        };
        if let Some(failure) = self.override_failure {
            report.outcome = Err(failure);
        }
        Ok(report)
    }

    pub async fn wait(self) -> Report {
        let mut report = match self.state {
            PendingState::Ready(report) => report,
            PendingState::Running(rx) => rx.await.unwrap_or_else(|_| {
                Report::failed_before_start(Failure::Trap {
                    reason: "the request's task was aborted".into(),
                })
            }),
        };
        if let Some(failure) = self.override_failure {
            report.outcome = Err(failure);
        }
        report
    }
}

impl App {
    /// Handles one request in a fresh instance.
    ///
    /// Never fails: a guest fault becomes an error response (see
    /// [`Failure::status`]) and is described in the report.
    pub async fn handle<B>(&self, req: http::Request<B>, ctx: RequestContext) -> Execution
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let limits = &self.inner.config.limits;
        if content_length(&req).is_some_and(|len| len > limits.max_request_body_bytes) {
            return failed(
                &ctx,
                Report::failed_before_start(Failure::RequestBodyTooLarge),
            );
        }

        // Room to run: the app's instance cap and the node's memory budget.
        let Some(admitted) = self.admit().await else {
            return failed(&ctx, Report::failed_before_start(Failure::Overloaded));
        };

        let trace = TraceContext::from_headers(req.headers());
        let mut store = self.new_store(&ctx, trace);
        let body_too_large = Arc::new(AtomicBool::new(false));
        let req = req.map(|inner| {
            Coalesced::new(CappedBody {
                inner,
                remaining: limits.max_request_body_bytes,
                exceeded: body_too_large.clone(),
            })
        });
        let (response_tx, mut response_rx) = oneshot::channel();
        let scheme = if ctx.scheme == http::uri::Scheme::HTTPS {
            Scheme::Https
        } else if ctx.scheme == http::uri::Scheme::HTTP {
            Scheme::Http
        } else {
            Scheme::Other(ctx.scheme.as_str().to_owned())
        };
        let incoming = store.data_mut().http().new_incoming_request(scheme, req);
        let outparam = store.data_mut().http().new_response_outparam(response_tx);
        let (incoming, outparam) = match (incoming, outparam) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => {
                let mut report = Report::failed_before_start(Failure::Trap {
                    reason: format!("the request could not be passed to the guest: {e:#}"),
                });
                report.detail = Some(error_chain(&e));
                return failed(&ctx, report);
            }
        };

        let (report_tx, report_rx) = oneshot::channel();
        let guest_failed = Arc::new(AtomicBool::new(false));
        let guest_failed_in_task = guest_failed.clone();
        let pre = self.inner.code.pre.clone();
        let wall_time = limits.wall_time;
        let guest = async move {
            // Held until the instance is torn down (below), so a request admitted
            // after this one finds its pool slot free.
            let admitted = admitted;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            let result = tokio::time::timeout(wall_time, run).await;
            let (outcome, detail) = match result {
                Ok(Ok(())) => (Ok(()), None),
                Ok(Err(e)) => (Err(Failure::from_guest_error(&e)), Some(error_chain(&e))),
                Err(_elapsed) => (Err(Failure::WallTimeLimit), None),
            };
            let state = store.data();
            let report = Report {
                outcome,
                guest_cpu: state.cpu.used(),
                peak_memory_bytes: state.memory.peak,
                detail,
                trace_id: Some(state.outbound.trace.trace_id()),
                subrequests: state.outbound.subrequests,
                cached_subrequests: state.outbound.cached_subrequests(),
                origin_wait: state.outbound.origin_wait(),
                origin_errors: state.outbound.origin_errors(),
            };
            // Mark the failure before dropping the store: dropping it ends the response
            // body, which must then end with an error, not look complete.
            guest_failed_in_task.store(report.outcome.is_err(), Ordering::Release);
            let _ = report_tx.send(report);
            // Tearing the instance down (resetting its memory slot) can wait until the
            // response is on its way: a task spawned here runs after the current one
            // yields. Dropping the store also drops the response outparam, which wakes
            // the caller if the guest never answered.
            tokio::spawn(async move {
                drop(store);
                drop(admitted);
            });
        };

        // Run the guest on this task until it sets its response (most guests also
        // finish their body by then): handing it to another task and waking this one
        // back up costs more than a small request takes. Only a guest still streaming
        // its body when the head is ready moves to a task of its own.
        let mut guest = Box::pin(guest);
        let response = tokio::select! {
            biased;
            () = &mut guest => response_rx.await,
            response = &mut response_rx => {
                tokio::spawn(guest);
                response
            }
        };

        let body_failure = || {
            body_too_large
                .load(Ordering::Relaxed)
                .then_some(Failure::RequestBodyTooLarge)
        };
        match response {
            Ok(Ok(response)) => {
                let interim =
                    response
                        .status()
                        .is_informational()
                        .then(|| Failure::InterimStatus {
                            status: response.status().as_u16(),
                        });
                if let Some(failure) = body_failure().or(interim) {
                    let report = Report::failed_before_start(failure.clone());
                    let mut execution = failed(&ctx, report);
                    execution.report = PendingReport {
                        state: PendingState::Running(report_rx),
                        override_failure: Some(failure),
                    };
                    return execution;
                }
                Execution {
                    response: response.map(|inner| {
                        GuardedBody {
                            inner,
                            guest_failed,
                        }
                        .boxed_unsync()
                    }),
                    report: PendingReport {
                        state: PendingState::Running(report_rx),
                        override_failure: None,
                    },
                }
            }
            answered => {
                let mut report = PendingReport {
                    state: PendingState::Running(report_rx),
                    override_failure: None,
                }
                .wait()
                .await;
                if let Some(failure) = body_failure() {
                    report.outcome = Err(failure);
                } else if report.outcome.is_ok() {
                    report.outcome = Err(match answered {
                        Ok(Err(code)) => Failure::GuestError {
                            code: format!("{code:?}"),
                        },
                        _ => Failure::NoResponse,
                    });
                }
                failed(&ctx, report)
            }
        }
    }

    /// Waits (up to the runtime's `admission_wait`) for a slot of the engine's
    /// instance pool, a place under the app's instance cap and its memory limit's
    /// worth of the node's budget. `None`: no room in time. With room in the pool and
    /// no cap or budget, this costs one atomic operation.
    async fn admit(&self) -> Option<Admitted> {
        let runtime = &self.inner.runtime.inner;
        let deadline = tokio::time::Instant::now() + runtime.config.admission_wait;
        let pool = &runtime.instance_pool;
        let mut admitted = Admitted {
            _pool: Some(match pool.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => tokio::time::timeout_at(deadline, pool.clone().acquire_owned())
                    .await
                    .ok()?
                    .ok()?,
            }),
            ..Admitted::default()
        };
        if self.inner.instances.is_none() && runtime.memory_budget.is_none() {
            return Some(admitted);
        }
        if let Some(instances) = &self.inner.instances {
            let permit = match instances.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => tokio::time::timeout_at(deadline, instances.clone().acquire_owned())
                    .await
                    .ok()?
                    .ok()?,
            };
            admitted.instance = Some(permit);
        }
        if let Some(budget) = &runtime.memory_budget {
            let mib = (self.inner.config.limits.memory_bytes >> 20).max(1);
            let mib = u32::try_from(mib).unwrap_or(u32::MAX);
            let permit = match budget.clone().try_acquire_many_owned(mib) {
                Ok(permit) => permit,
                Err(_) => tokio::time::timeout_at(deadline, budget.clone().acquire_many_owned(mib))
                    .await
                    .ok()?
                    .ok()?,
            };
            admitted.memory = Some(permit);
        }
        Some(admitted)
    }

    fn new_store(&self, ctx: &RequestContext, trace: TraceContext) -> Store<RequestState> {
        RequestState::new(&self.inner, ctx, trace).into_store(self.inner.runtime.engine())
    }
}

fn content_length<B>(req: &http::Request<B>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The places a running request holds; released when the guest has finished.
#[derive(Default)]
struct Admitted {
    /// A slot of the engine's instance pool, held until the store is gone.
    _pool: Option<tokio::sync::OwnedSemaphorePermit>,
    instance: Option<tokio::sync::OwnedSemaphorePermit>,
    memory: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A plain-text error response carrying the request id, for a request that failed
/// before its response started.
fn failed(ctx: &RequestContext, report: Report) -> Execution {
    let failure = report
        .outcome
        .clone()
        .expect_err("failed() is only called with a failure");
    let status = failure.status();
    let body = format!(
        "{} {}: {}\nrequest id: {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        failure.describe(),
        ctx.request_id
    );
    let mut response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if failure == Failure::Overloaded {
        // Worth retrying soon: the node is busy, not broken.
        response = response.header(http::header::RETRY_AFTER, "1");
    }
    let response = response
        .body(
            Full::new(Bytes::from(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("a static response is valid");
    Execution {
        response,
        report: PendingReport::ready(report),
    }
}

/// Passes a request body through, failing it once more than `remaining` bytes arrive.
/// Enforced while streaming: a body is never buffered to be measured.
struct CappedBody<B> {
    inner: B,
    remaining: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.remaining {
                self.exceeded.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    None,
                ))));
            }
            self.remaining -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The guest's response body, which must not end cleanly when the guest failed while
/// writing it: Wasmtime ends it without error when the store is dropped, so a
/// truncated body would look complete to the client.
struct GuardedBody {
    inner: ResponseBody,
    guest_failed: Arc<AtomicBool>,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) if self.guest_failed.load(Ordering::Acquire) => {
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
