//! `wasi:config/store`: the app's read-only configuration. Implemented at the three
//! versions components are built against (0.2.0-draft: wasmCloud;
//! 0.2.0-draft-2024-09-27: Spin; 0.2.0-rc.1: Wasmtime), all with the same types.

use std::collections::BTreeMap;

use wasmtime::component::{HasData, Linker};

use super::bindings::{config_draft, config_draft_2024, config_rc1};

/// What a guest call sees: the app's values.
pub(crate) struct ConfigView<'a>(pub(crate) &'a BTreeMap<String, String>);

impl HasData for ConfigView<'static> {
    type Data<'a> = ConfigView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> ConfigView<'_>,
) -> wasmtime::Result<()> {
    config_draft::add_to_linker::<T, ConfigView<'static>>(linker, view)?;
    config_draft_2024::add_to_linker::<T, ConfigView<'static>>(linker, view)?;
    config_rc1::add_to_linker::<T, ConfigView<'static>>(linker, view)?;
    Ok(())
}

macro_rules! implement {
    ($($version:ident),*) => {$(
        impl $version::Host for ConfigView<'_> {
            fn get(&mut self, key: String) -> Result<Option<String>, $version::Error> {
                Ok(self.0.get(&key).cloned())
            }

            fn get_all(&mut self) -> Result<Vec<(String, String)>, $version::Error> {
                Ok(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
        }
    )*};
}

implement!(config_draft, config_draft_2024, config_rc1);
