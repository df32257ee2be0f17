//! The WIT that apps in other languages are built against, vendored in the repo
//! (`wit/`) and embedded in the binary, never fetched at build time.

use std::path::Path;

/// The WIT an app is built against, as Verge vendors it: the proxy world's
/// WASI packages, the KV, config and logging standards Verge implements, and
/// `verge:edge` (`deps/DIR/FILE`).
pub(crate) const VENDORED_WIT: &[(&str, &str)] = &[
    ("cli/cli.wit", include_str!("../../../wit/deps/cli/cli.wit")),
    (
        "clocks/clocks.wit",
        include_str!("../../../wit/deps/clocks/clocks.wit"),
    ),
    (
        "filesystem/filesystem.wit",
        include_str!("../../../wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "http/http.wit",
        include_str!("../../../wit/deps/http/http.wit"),
    ),
    ("io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    (
        "random/random.wit",
        include_str!("../../../wit/deps/random/random.wit"),
    ),
    (
        "sockets/sockets.wit",
        include_str!("../../../wit/deps/sockets/sockets.wit"),
    ),
    (
        "keyvalue/atomic.wit",
        include_str!("../../../wit/deps/keyvalue/atomic.wit"),
    ),
    (
        "keyvalue/batch.wit",
        include_str!("../../../wit/deps/keyvalue/batch.wit"),
    ),
    (
        "keyvalue/store.wit",
        include_str!("../../../wit/deps/keyvalue/store.wit"),
    ),
    (
        "keyvalue/watch.wit",
        include_str!("../../../wit/deps/keyvalue/watch.wit"),
    ),
    (
        "keyvalue/world.wit",
        include_str!("../../../wit/deps/keyvalue/world.wit"),
    ),
    (
        "keyvalue-draft/atomic.wit",
        include_str!("../../../wit/deps/keyvalue-draft/atomic.wit"),
    ),
    (
        "keyvalue-draft/batch.wit",
        include_str!("../../../wit/deps/keyvalue-draft/batch.wit"),
    ),
    (
        "keyvalue-draft/store.wit",
        include_str!("../../../wit/deps/keyvalue-draft/store.wit"),
    ),
    (
        "keyvalue-draft/world.wit",
        include_str!("../../../wit/deps/keyvalue-draft/world.wit"),
    ),
    (
        "config/store.wit",
        include_str!("../../../wit/deps/config/store.wit"),
    ),
    (
        "config-draft/store.wit",
        include_str!("../../../wit/deps/config-draft/store.wit"),
    ),
    (
        "config-2024-09-27/store.wit",
        include_str!("../../../wit/deps/config-2024-09-27/store.wit"),
    ),
    (
        "logging/logging.wit",
        include_str!("../../../wit/deps/logging/logging.wit"),
    ),
    ("edge/edge.wit", include_str!("../../../wit/edge.wit")),
];

/// Writes the vendored WIT, each file passed through `edit`, and `world` as
/// `world.wit` into `dir` (replacing what is there).
pub(crate) fn write(dir: &Path, world: &str, edit: impl Fn(&str) -> String) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    for (file, text) in VENDORED_WIT {
        let path = dir.join("deps").join(file);
        std::fs::create_dir_all(path.parent().expect("a file in a package directory"))?;
        std::fs::write(path, edit(text))?;
    }
    std::fs::write(dir.join("world.wit"), world)
}
