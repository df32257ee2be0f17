//! Small MaxMind-format databases written by the test suite (with `mmdb-writer`), in
//! the GeoIP2 City and ASN layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Serialize)]
struct Named {
    #[serde(skip_serializing_if = "Option::is_none")]
    iso_code: Option<&'static str>,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Coded {
    code: &'static str,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
    time_zone: &'static str,
}

#[derive(Serialize)]
struct City {
    country: Named,
    continent: Coded,
    subdivisions: Vec<Named>,
    city: Named,
    postal: Coded,
    location: Location,
}

#[derive(Serialize)]
struct Asn {
    autonomous_system_number: u32,
    autonomous_system_organization: &'static str,
}

fn named(iso: Option<&'static str>, en: &'static str) -> Named {
    Named {
        iso_code: iso,
        names: [("en", en), ("de", "(nicht englisch)")].into(),
    }
}

/// One city record per network.
pub struct Place {
    pub network: &'static str,
    pub country: (&'static str, &'static str),
    pub continent: &'static str,
    pub region: (&'static str, &'static str),
    pub city: &'static str,
    pub postal: &'static str,
    pub lat_lon: (f64, f64),
    pub time_zone: &'static str,
}

pub const TOKYO: Place = Place {
    network: "203.0.113.0/24",
    country: ("JP", "Japan"),
    continent: "AS",
    region: ("13", "Tokyo"),
    city: "Tokyo",
    postal: "100-0001",
    lat_lon: (35.6893, 139.6899),
    time_zone: "Asia/Tokyo",
};

pub const BERLIN: Place = Place {
    network: "198.51.100.0/24",
    country: ("DE", "Germany"),
    continent: "EU",
    region: ("BE", "Land Berlin"),
    city: "Berlin",
    postal: "10115",
    lat_lon: (52.52, 13.405),
    time_zone: "Europe/Berlin",
};

pub const SINGAPORE: Place = Place {
    network: "2001:db8:1::/48",
    country: ("SG", "Singapore"),
    continent: "AS",
    region: ("01", "Central Singapore"),
    city: "Singapore",
    postal: "018956",
    lat_lon: (1.2897, 103.8501),
    time_zone: "Asia/Singapore",
};

pub const NEW_YORK: Place = Place {
    network: "192.0.2.128/25",
    country: ("US", "United States"),
    continent: "NA",
    region: ("NY", "New York"),
    city: "New York",
    postal: "10001",
    lat_lon: (40.7128, -74.006),
    time_zone: "America/New_York",
};

/// Writes a City database with `places` into `dir`.
pub fn write_city_db(dir: &Path, places: &[Place]) -> PathBuf {
    let mut writer = mmdb_writer::Writer::new("Verge-Test-City");
    for p in places {
        let record = City {
            country: named(Some(p.country.0), p.country.1),
            continent: Coded { code: p.continent },
            subdivisions: vec![named(Some(p.region.0), p.region.1)],
            city: named(None, p.city),
            postal: Coded { code: p.postal },
            location: Location {
                latitude: p.lat_lon.0,
                longitude: p.lat_lon.1,
                time_zone: p.time_zone,
            },
        };
        writer
            .insert(p.network.parse::<ipnet::IpNet>().unwrap(), &record)
            .unwrap();
    }
    let path = dir.join("city.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

/// Writes an ASN database into `dir`.
pub fn write_asn_db(dir: &Path, entries: &[(&'static str, u32, &'static str)]) -> PathBuf {
    let mut writer = mmdb_writer::Writer::new("Verge-Test-ASN");
    for (network, number, org) in entries {
        let record = Asn {
            autonomous_system_number: *number,
            autonomous_system_organization: org,
        };
        writer
            .insert(network.parse::<ipnet::IpNet>().unwrap(), &record)
            .unwrap();
    }
    let path = dir.join("asn.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}
