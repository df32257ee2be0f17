//! `verge:edge/runtime`: facts about this execution.

use wasmtime::component::{HasData, Linker};

use super::AppHost;
use super::bindings::runtime::Host;
use crate::meter::CpuMeter;
use crate::trace::TraceContext;

/// The view a guest call gets.
pub(crate) struct RuntimeInfo<'a> {
    pub(crate) app: &'a AppHost,
    pub(crate) request_id: &'a str,
    pub(crate) trace: &'a TraceContext,
    pub(crate) cpu: &'a CpuMeter,
}

impl HasData for RuntimeInfo<'static> {
    type Data<'a> = RuntimeInfo<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> RuntimeInfo<'_>,
) -> wasmtime::Result<()> {
    super::bindings::runtime::add_to_linker::<T, RuntimeInfo<'static>>(linker, view)
}

impl Host for RuntimeInfo<'_> {
    fn request_id(&mut self) -> String {
        self.request_id.to_owned()
    }

    fn trace_id(&mut self) -> String {
        self.trace.trace_id()
    }

    fn node_name(&mut self) -> String {
        self.app.node_name.to_string()
    }

    fn app_name(&mut self) -> String {
        self.app.app_name.to_string()
    }

    fn app_version(&mut self) -> String {
        self.app.app_version.to_string()
    }

    fn guest_cpu_used_us(&mut self) -> u64 {
        self.cpu.used().as_micros() as u64
    }

    fn guest_cpu_limit_us(&mut self) -> u64 {
        self.cpu.limit().as_micros() as u64
    }
}
