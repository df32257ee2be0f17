//! Flags `verge serve` and `verge node` share: one place for their names, docs and
//! defaults, flattened into both commands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use verge_cache::{CacheConfig, DiskConfig};
use verge_manifest::ByteSize;
use verge_node::EdgeOptions;

/// The request front, the instance pool, geolocation and the edge cache.
#[derive(Debug, clap::Args)]
pub struct EdgeFlags {
    /// Most request headers accepted; more gets 431.
    #[arg(long, default_value_t = EdgeOptions::default().max_header_count)]
    pub max_header_count: usize,

    /// Largest request head in bytes; more gets 431.
    #[arg(long, default_value_t = EdgeOptions::default().max_header_bytes)]
    pub max_header_bytes: usize,

    /// A proxy (IP or CIDR) whose X-Forwarded-For names the client. Repeatable.
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// Connections from trusted proxies start with a PROXY protocol header (v1 or v2).
    #[arg(long, requires = "trusted_proxy")]
    pub proxy_protocol: bool,

    /// Request threads: each serves its share of the connections on a runtime of its
    /// own, with its own origin connection pools, so a request and its subrequests
    /// stay on one thread [default: one per core]. 0 serves every connection on one
    /// shared multi-threaded runtime.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Instances that may run at once (the pooling allocator's size).
    #[arg(long, default_value_t = EdgeOptions::default().max_instances)]
    pub max_instances: u32,

    /// Bytes of each instance's memory kept resident between requests and reset in
    /// place instead of being returned to the kernel (fewer page faults).
    #[arg(long, default_value_t = EdgeOptions::default().memory_keep_resident)]
    pub memory_keep_resident: usize,

    /// Reset every page of a recycled memory with memset/madvise instead of scanning
    /// for the dirtied ones with Linux's PAGEMAP_SCAN.
    #[arg(long)]
    pub no_pagemap_scan: bool,

    /// A MaxMind-format geolocation database (.mmdb: GeoIP2/GeoLite2 City, ASN, or
    /// compatible) for verge:edge/geo. Repeat to combine a City and an ASN database.
    #[arg(long, value_name = "FILE", env = "VERGE_GEOIP_DB")]
    pub geoip_db: Vec<PathBuf>,

    /// Memory for the edge cache (HTTP objects, origin fetches and the programmable
    /// cache of every app), e.g. 1GiB.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "256MiB")]
    pub edge_cache_memory: ByteSize,

    /// The largest object the edge cache stores; larger responses pass through.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "32MiB")]
    pub edge_cache_max_object: ByteSize,

    /// Keep edge-cache objects on disk too, in this directory (for the cache alone;
    /// emptied at start), so objects evicted from memory are not lost.
    #[arg(long, value_name = "DIR", env = "VERGE_EDGE_CACHE_DISK")]
    pub edge_cache_disk: Option<PathBuf>,

    /// Bytes of objects the disk tier keeps.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "1GiB")]
    pub edge_cache_disk_size: ByteSize,
}

impl EdgeFlags {
    /// The flags as the library takes them, checked against each other.
    pub fn options(&self) -> anyhow::Result<EdgeOptions> {
        let options = EdgeOptions {
            max_header_count: self.max_header_count,
            max_header_bytes: self.max_header_bytes,
            trusted_proxies: self.trusted_proxy.clone(),
            proxy_protocol: self.proxy_protocol,
            threads: self.threads.unwrap_or_else(EdgeOptions::default_threads),
            max_instances: self.max_instances,
            memory_keep_resident: self.memory_keep_resident,
            pagemap_scan: !self.no_pagemap_scan,
            geoip_db: self.geoip_db.clone(),
            cache: CacheConfig {
                memory_bytes: self.edge_cache_memory.0,
                max_object_bytes: self.edge_cache_max_object.0,
                disk: self.edge_cache_disk.as_ref().map(|dir| DiskConfig {
                    dir: dir.clone(),
                    bytes: self.edge_cache_disk_size.0,
                }),
            },
        };
        options.validate()?;
        Ok(options)
    }
}

fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    verge_manifest::IpNetKey::parse(text).map(|k| k.0)
}

/// The admin token: from `file`, or `VERGE_ADMIN_TOKEN`; at least 16 characters.
pub fn admin_token(file: Option<&Path>) -> anyhow::Result<String> {
    let token = match (file, std::env::var("VERGE_ADMIN_TOKEN")) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the admin token from {}", file.display()))?,
        (None, Ok(token)) => token,
        (None, Err(_)) => anyhow::bail!(
            "--admin-listen needs a token: put one in a file and pass --admin-token-file FILE, \
             or set VERGE_ADMIN_TOKEN"
        ),
    };
    let token = token.trim().to_owned();
    if token.len() < 16 || token.contains(char::is_whitespace) {
        anyhow::bail!(
            "the admin token must be at least 16 characters without spaces (try `openssl rand -hex 24`)"
        );
    }
    Ok(token)
}
