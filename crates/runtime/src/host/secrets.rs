//! `verge:edge/secrets`: named secret stores. Values are resolved before the app
//! loads (from a file or the host's environment); the host never logs them, and
//! [`Redactor`] takes them out of every line the app logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::bindings::secrets as wit;
use crate::config::SecretValue;

type Secrets = Arc<BTreeMap<String, SecretValue>>;

/// The per-app state: each declared store's secrets.
pub(crate) struct AppState {
    stores: BTreeMap<String, Secrets>,
    /// Takes the app's secret values out of its log lines; `None` without secrets.
    pub(crate) redactor: Option<Arc<Redactor>>,
}

impl AppState {
    pub(crate) fn new(stores: &BTreeMap<String, BTreeMap<String, SecretValue>>) -> AppState {
        let redactor = Redactor::new(stores.values().flat_map(|s| s.values()));
        AppState {
            stores: stores
                .iter()
                .map(|(name, secrets)| (name.clone(), Arc::new(secrets.clone())))
                .collect(),
            redactor: redactor.map(Arc::new),
        }
    }
}

/// An open secret store.
pub struct SecretStore(Secrets);
/// One secret, handed to the guest as a handle; its bytes cross only on `plaintext`.
pub struct Secret(SecretValue);

pub(crate) struct SecretsView<'a> {
    pub(crate) app: &'a AppState,
    pub(crate) table: &'a mut ResourceTable,
}

impl HasData for SecretsView<'static> {
    type Data<'a> = SecretsView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, SecretsView<'static>>(linker, view)
}

impl wit::Host for SecretsView<'_> {}

impl wit::HostStore for SecretsView<'_> {
    fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretStore>, wit::Error>> {
        match self.app.stores.get(&name) {
            Some(secrets) => Ok(Ok(self.table.push(SecretStore(secrets.clone()))?)),
            None => Ok(Err(wit::Error::NoSuchStore(super::not_declared(
                "secret store",
                &name,
                "secret_stores",
                self.app.stores.keys(),
            )))),
        }
    }

    fn get(
        &mut self,
        store: Resource<SecretStore>,
        name: String,
    ) -> wasmtime::Result<Result<Option<Resource<Secret>>, wit::Error>> {
        let found = self.table.get(&store)?.0.get(&name).cloned();
        Ok(Ok(match found {
            Some(value) => Some(self.table.push(Secret(value))?),
            None => None,
        }))
    }

    fn drop(&mut self, store: Resource<SecretStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl wit::HostSecret for SecretsView<'_> {
    fn plaintext(&mut self, secret: Resource<Secret>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&secret)?.0.expose().to_vec())
    }

    fn drop(&mut self, secret: Resource<Secret>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

/// Replaces an app's secret values in text with `[redacted]`.
///
/// Values shorter than [`Redactor::MIN_LEN`] bytes are left alone: redacting every
/// `a` would make logs useless, and such a value protects nothing anyway. A value
/// split across two 16 KiB pieces of one over-long line is not caught.
pub(crate) struct Redactor {
    /// Longest first, so a value containing another is replaced whole.
    values: Vec<String>,
}

impl Redactor {
    pub(crate) const MIN_LEN: usize = 4;

    fn new<'a>(values: impl Iterator<Item = &'a SecretValue>) -> Option<Redactor> {
        let mut values: Vec<String> = values
            .filter_map(|v| std::str::from_utf8(v.expose()).ok())
            .filter(|v| v.len() >= Self::MIN_LEN)
            .map(str::to_owned)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        (!values.is_empty()).then_some(Redactor { values })
    }

    pub(crate) fn redact<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        let mut out = std::borrow::Cow::Borrowed(line);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(value.as_str(), "[redacted]"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_value_longest_first_and_skips_short_ones() {
        let values = [
            SecretValue::new("s3cr3t"),
            SecretValue::new("s3cr3t-and-more"),
            SecretValue::new("ab"),
        ];
        let r = Redactor::new(values.iter()).unwrap();
        assert_eq!(
            r.redact("key=s3cr3t-and-more other=s3cr3t ab"),
            "key=[redacted] other=[redacted] ab"
        );
        assert!(matches!(r.redact("clean"), std::borrow::Cow::Borrowed(_)));
        assert!(Redactor::new([SecretValue::new("ab")].iter()).is_none());
    }
}
