//! `verge:edge/geo`: where an IP address is.
//!
//! The node supplies a [`GeoProvider`] (the default reads MaxMind-format `.mmdb`
//! files with the `maxminddb` crate); an app's `[geo.overrides]` table (IP or CIDR →
//! record) wins over it, most specific network first, so `verge serve` can pretend a
//! visitor is in Tokyo.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;
use wasmtime::component::{HasData, Linker};

use super::bindings::geo::{self as wit, Host};

pub use verge_manifest::GeoRecord;

/// `a` with the fields `b` has filled in where `a` has none.
fn merged(mut a: GeoRecord, b: GeoRecord) -> GeoRecord {
    macro_rules! fill {
        ($($field:ident),*) => { $( if a.$field.is_none() { a.$field = b.$field; } )* };
    }
    fill!(
        country_code,
        country_name,
        continent_code,
        region_code,
        region,
        city,
        postal_code,
        latitude,
        longitude,
        time_zone,
        asn,
        as_organization
    );
    a
}

/// A source of geolocation data for a node. Lookups must be fast and never block.
pub trait GeoProvider: Send + Sync + 'static {
    /// `None` when nothing is known about `ip`.
    fn lookup(&self, ip: IpAddr) -> Option<GeoRecord>;
}

/// Why a geolocation database could not be used.
#[derive(Debug, thiserror::Error)]
#[error("could not use the geolocation database {path}: {reason}")]
pub struct GeoDbError {
    pub path: PathBuf,
    pub reason: String,
}

/// MaxMind-format databases (GeoIP2/GeoLite2 City and ASN, or compatible), read
/// into memory at start. With several, each lookup merges their answers: the first
/// database that knows a field gives it.
pub struct MaxmindGeo {
    readers: Vec<maxminddb::Reader<Vec<u8>>>,
}

impl MaxmindGeo {
    /// Opens each file, checking that it is a readable database.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<MaxmindGeo, GeoDbError> {
        let readers = paths
            .iter()
            .map(|path| {
                let path = path.as_ref();
                let fail = |reason: String| GeoDbError {
                    path: path.to_owned(),
                    reason,
                };
                let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
                let reader = maxminddb::Reader::from_source(bytes)
                    .map_err(|e| fail(format!("{e} (is it a MaxMind-format .mmdb file?)")))?;
                // A corrupt tree or data section shows on the first lookup: do one now.
                let probe: IpAddr = if reader.metadata.ip_version == 6 {
                    "2001:db8::1".parse().expect("valid")
                } else {
                    "192.0.2.1".parse().expect("valid")
                };
                reader
                    .lookup::<MmdbRecord>(probe)
                    .map_err(|e| fail(format!("it is corrupt: {e}")))?;
                Ok(reader)
            })
            .collect::<Result<_, _>>()?;
        Ok(MaxmindGeo { readers })
    }
}

impl GeoProvider for MaxmindGeo {
    fn lookup(&self, ip: IpAddr) -> Option<GeoRecord> {
        let mut found: Option<GeoRecord> = None;
        for reader in &self.readers {
            // A record that fails to decode is treated as unknown, not as an error
            // the guest must handle: the database was checked when it was opened.
            if let Ok(Some(record)) = reader.lookup::<MmdbRecord>(ip) {
                let record = record.into_geo();
                found = Some(match found {
                    Some(f) => merged(f, record),
                    None => record,
                });
            }
        }
        found
    }
}

/// The fields of the GeoIP2 City and ASN schemas Verge reads.
#[derive(Deserialize)]
struct MmdbRecord {
    country: Option<Named>,
    continent: Option<Coded>,
    subdivisions: Option<Vec<Named>>,
    city: Option<Named>,
    postal: Option<Coded>,
    location: Option<MmdbLocation>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    iso_code: Option<String>,
    names: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Coded {
    code: Option<String>,
}

#[derive(Deserialize)]
struct MmdbLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
    time_zone: Option<String>,
}

impl MmdbRecord {
    fn into_geo(self) -> GeoRecord {
        let english = |n: &Option<Named>| n.as_ref()?.names.as_ref()?.get("en").cloned();
        let region = self.subdivisions.and_then(|s| s.into_iter().next());
        GeoRecord {
            country_code: self.country.as_ref().and_then(|c| c.iso_code.clone()),
            country_name: english(&self.country),
            continent_code: self.continent.and_then(|c| c.code),
            region_code: region.as_ref().and_then(|r| r.iso_code.clone()),
            region: english(&region),
            city: english(&self.city),
            postal_code: self.postal.and_then(|p| p.code),
            latitude: self.location.as_ref().and_then(|l| l.latitude),
            longitude: self.location.as_ref().and_then(|l| l.longitude),
            time_zone: self.location.and_then(|l| l.time_zone),
            asn: self.autonomous_system_number,
            as_organization: self.autonomous_system_organization,
        }
    }
}

/// Built once per app: the node's provider and the app's overrides.
pub(crate) struct AppState {
    provider: Option<Arc<dyn GeoProvider>>,
    /// Most specific network first.
    overrides: Vec<(IpNet, GeoRecord)>,
}

impl AppState {
    pub(crate) fn new(
        provider: Option<Arc<dyn GeoProvider>>,
        overrides: &[(IpNet, GeoRecord)],
    ) -> AppState {
        let mut overrides = overrides.to_vec();
        overrides.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        AppState {
            provider,
            overrides,
        }
    }

    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<GeoRecord> {
        // An IPv4-mapped IPv6 client is its IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if let Some((_, record)) = self.overrides.iter().find(|(net, _)| net.contains(&ip)) {
            return Some(record.clone());
        }
        self.provider.as_ref()?.lookup(ip)
    }
}

/// The view a guest call gets: the app's state.
pub(crate) struct Geo<'a>(pub(crate) &'a AppState);

impl HasData for Geo<'static> {
    type Data<'a> = Geo<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> Geo<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Geo<'static>>(linker, view)
}

impl Host for Geo<'_> {
    fn lookup(&mut self, ip: String) -> Result<Option<wit::Location>, String> {
        let addr: IpAddr = ip
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("`{ip}` is not an IPv4 or IPv6 address"))?;
        Ok(self.0.lookup(addr).map(|r| wit::Location {
            country_code: r.country_code,
            country_name: r.country_name,
            continent_code: r.continent_code,
            region_code: r.region_code,
            region: r.region,
            city: r.city,
            postal_code: r.postal_code,
            latitude: r.latitude,
            longitude: r.longitude,
            time_zone: r.time_zone,
            asn: r.asn,
            as_organization: r.as_organization,
        }))
    }
}
