//! Where an IP address is: `verge:edge/geo`.
//!
//! ```no_run
//! # use verge::{Request, Response, Error};
//! # fn handler(req: Request) -> Result<Response, Error> {
//! let country = req
//!     .client_ip()
//!     .and_then(verge::geo::lookup)
//!     .and_then(|geo| geo.country_code)
//!     .unwrap_or_default();
//! # Ok(Response::from_text(country)) }
//! ```
//!
//! The node reads a MaxMind-format database (`verge serve --geoip-db FILE`); the app's
//! `[geo.overrides]` in `verge.toml` win over it, so `verge serve` can simulate a
//! visitor from anywhere.

use std::net::IpAddr;

use crate::edge::geo as wit;

/// What is known about an address. Every field is `None` when the data does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2, upper case: `JP`.
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    /// `AS`, `EU`, `NA`, `SA`, `AF`, `OC`, `AN`.
    pub continent_code: Option<String>,
    /// ISO 3166-2 subdivision code without the country: `13`.
    pub region_code: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// IANA time zone: `Asia/Tokyo`.
    pub time_zone: Option<String>,
    pub asn: Option<u32>,
    pub as_organization: Option<String>,
}

/// Looks `ip` up; `None` when nothing is known about it.
pub fn lookup(ip: IpAddr) -> Option<Geo> {
    let location = wit::lookup(&ip.to_string()).ok()??;
    Some(Geo {
        country_code: location.country_code,
        country_name: location.country_name,
        continent_code: location.continent_code,
        region_code: location.region_code,
        region: location.region,
        city: location.city,
        postal_code: location.postal_code,
        latitude: location.latitude,
        longitude: location.longitude,
        time_zone: location.time_zone,
        asn: location.asn,
        as_organization: location.as_organization,
    })
}
