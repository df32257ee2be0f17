//! Compiled code shared across the fleet (`verge_fleet::SharedCode`): the node that
//! takes an upload compiles it to check it, and shares that code; the others load it
//! instead of compiling the version again. Only with a fleet code key, and only
//! between nodes whose Wasmtime build and settings match (the code's name says so).

use std::time::Instant;

use crate::node::Node;

impl Node {
    /// The code this node compiled for `wasm`, named, when the fleet shares code.
    pub(crate) fn code_to_share(&self, wasm: &[u8]) -> Option<(String, Vec<u8>)> {
        self.fleet.as_ref()?.code()?;
        let key = self.runtime.code_key(wasm);
        let code = self.runtime.cached_code(&key)?;
        Some((key, code))
    }

    /// Stores `code` for the other nodes. A failure costs them a compile, not the
    /// deploy: said, and the upload goes on.
    pub(crate) async fn share_code(&self, key: &str, code: &[u8]) {
        let Some(shared) = self.fleet.as_ref().and_then(|f| f.code()) else {
            return;
        };
        if let Err(e) = shared.put(key, code).await {
            self.report.status(
                "Warning",
                &format!(
                    "{e}: the compiled code was not shared; other nodes compile it themselves"
                ),
            );
        }
    }

    /// Puts the fleet's code for `wasm` (`what`) into the compile cache when this
    /// node has none, so that loading it compiles nothing. Blocking: call it off the
    /// async threads (it waits for the fetch). Without shared code, or when the fetch
    /// fails, the load compiles as it would have.
    pub(crate) fn fetch_shared_code(&self, wasm: &[u8], what: &str) {
        let Some(shared) = self.fleet.as_ref().and_then(|f| f.code()) else {
            return;
        };
        let key = self.runtime.code_key(wasm);
        if self.runtime.has_code(&key) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let started = Instant::now();
        match handle.block_on(shared.get(&key)) {
            Ok(Some(code)) => {
                // SAFETY: `SharedCode::get` checked the signature under the fleet's
                // code key: a node of this fleet compiled and stored this code.
                match unsafe { self.runtime.install_code(&key, &code) } {
                    Ok(()) => self.report.status(
                        "Fetched",
                        &format!(
                            "the compiled code of {what} from the fleet ({} KiB) in {} ms",
                            code.len() >> 10,
                            started.elapsed().as_millis()
                        ),
                    ),
                    Err(e) => self.report.status(
                        "Warning",
                        &format!(
                            "the fleet's code of {what} is not usable here ({e}); compiling it"
                        ),
                    ),
                }
            }
            // Not shared (its node had no key, or another Wasmtime build made it).
            Ok(None) => {}
            Err(e) => self
                .report
                .status("Warning", &format!("{e}; compiling {what} here")),
        }
    }
}
