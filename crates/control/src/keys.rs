//! Where each record lives in the [`ControlStore`](crate::ControlStore).

use crate::ServiceName;

pub const SERVICES: &str = "service/";
pub const TOKENS: &str = "token/";

pub fn service(name: &ServiceName) -> String {
    format!("{SERVICES}{}", name.as_str())
}

/// The service a `service/NAME` key names.
pub fn service_name(key: &str) -> Option<&str> {
    key.strip_prefix(SERVICES)
}

/// Every version of a service, in number order (the numbers are zero-padded).
pub fn versions_of(service: &str) -> String {
    format!("version/{service}/")
}

pub fn version_of(service: &str, number: u32) -> String {
    format!("version/{service}/{number:010}")
}

/// The service and number a `version/NAME/NUMBER` key names.
pub fn version_name(key: &str) -> Option<(&str, u32)> {
    let (service, number) = key.strip_prefix("version/")?.split_once('/')?;
    Some((service, number.parse().ok()?))
}

/// A domain's owner: the key exists while a service holds the domain.
pub fn domain_of(domain: &str) -> String {
    format!("domain/{domain}")
}

pub fn token(id: &str) -> String {
    format!("{TOKENS}{id}")
}
