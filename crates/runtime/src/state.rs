//! What one request's `Store` holds, built in one place, and the linker that gives
//! guests WASI, wasi:http and Verge's host APIs.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::app::AppInner;
use crate::execute::RequestContext;
use crate::guest_log::{GuestLogSink, GuestOutput, GuestStream};
use crate::host::{self, AppHost};
use crate::meter::{CpuMeter, MemoryMeter};
use crate::trace::TraceContext;

/// Store data for one request in one fresh instance.
pub(crate) struct RequestState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) outbound: host::outbound::RequestState,
    /// Every host API's per-app state.
    pub(crate) host: Arc<AppHost>,
    pub(crate) request_id: Arc<str>,
    /// Where the request's log lines go.
    pub(crate) log: Arc<dyn GuestLogSink>,
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) tls: Option<Arc<host::downstream::TlsInfo>>,
    pub(crate) memory: MemoryMeter,
    pub(crate) cpu: CpuMeter,
}

impl RequestState {
    /// The state of one request: WASI with nothing ambient, each host API's
    /// per-request state built from its per-app state, fresh meters.
    pub(crate) fn new(app: &AppInner, ctx: &RequestContext, trace: TraceContext) -> RequestState {
        let limits = &app.config.limits;
        let output = |stream| GuestOutput {
            request_id: ctx.request_id.clone(),
            stream,
            sink: ctx.log.clone(),
            redactor: app.host.secrets.redactor.clone(),
        };
        let wasi = WasiCtx::builder()
            .stdout(output(GuestStream::Stdout))
            .stderr(output(GuestStream::Stderr))
            .envs(&app.config.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: host::outbound::RequestState::new(
                &app.host.outbound,
                trace,
                host::outbound::HostLog {
                    request_id: ctx.request_id.clone(),
                    sink: ctx.log.clone(),
                },
            ),
            host: app.host.clone(),
            request_id: ctx.request_id.clone(),
            log: ctx.log.clone(),
            client_addr: ctx.client_addr,
            tls: ctx.tls.clone(),
            memory: MemoryMeter::new(limits.memory_bytes),
            cpu: CpuMeter::new(limits.cpu_time),
        }
    }

    /// A store around this state, with the meters hooked in.
    pub(crate) fn into_store(self, engine: &Engine) -> Store<RequestState> {
        let mut store = Store::new(engine, self);
        store.limiter(|state| &mut state.memory);
        store.call_hook(|mut ctx, hook| {
            ctx.data_mut().cpu.on_call_hook(hook);
            Ok(())
        });
        store.epoch_deadline_callback(|mut ctx| ctx.data_mut().cpu.on_epoch_tick());
        store.set_epoch_deadline(1);
        store
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// All of WASI 0.2 (so components whose standard library imports cli, filesystem or
/// sockets still instantiate), wasi:http, and the `verge:edge` interfaces. What those interfaces may reach is
/// decided per request in [`RequestState::new`]: nothing, unless the manifest grants it.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker: Linker<RequestState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    host::geo::add_to_linker(&mut linker, |s| host::geo::Geo(&s.host.geo))?;
    host::downstream::add_to_linker(&mut linker, |s| host::downstream::Downstream {
        client_addr: s.client_addr,
        tls: s.tls.clone(),
    })?;
    host::kv::add_to_linker(&mut linker, |s| host::kv::KvView {
        app: &s.host.kv,
        table: &mut s.table,
    })?;
    host::cache::add_to_linker(&mut linker, |s| host::cache::CacheView {
        app: &s.host.cache,
        table: &mut s.table,
    })?;
    host::config::add_to_linker(&mut linker, |s| host::config::ConfigView(&s.host.config))?;
    host::http_body::add_to_linker(&mut linker, |s| host::http_body::HttpBodyView {
        table: &mut s.table,
    })?;
    host::secrets::add_to_linker(&mut linker, |s| host::secrets::SecretsView {
        app: &s.host.secrets,
        table: &mut s.table,
    })?;
    host::ratelimit::add_to_linker(&mut linker, |s| host::ratelimit::RateLimitView {
        limiter: &s.host.ratelimit,
        app: &s.host.app_name,
    })?;
    host::logging::add_to_linker(&mut linker, |s| host::logging::LoggingView {
        app: &s.host.logging,
        request_id: &s.request_id,
        sink: &s.log,
        redactor: s.host.secrets.redactor.as_deref(),
        table: &mut s.table,
    })?;
    host::runtime_info::add_to_linker(&mut linker, |s| host::runtime_info::RuntimeInfo {
        app: &s.host,
        request_id: &s.request_id,
        trace: &s.outbound.trace,
        cpu: &s.cpu,
    })?;
    Ok(linker)
}
