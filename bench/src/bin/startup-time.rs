//! Process start to first response: starts a server command, waits for its
//! `Listening on http://ADDR` line (or, with `--addr`, polls that address), sends one
//! GET and prints the elapsed milliseconds. Repeats N times and prints the median.
//!
//! usage: startup-time [--addr HOST:PORT] N -- COMMAND ARGS...

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    if buf.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("not a 200 response"))
    }
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let fixed_addr = if args.first().map(String::as_str) == Some("--addr") {
        args.remove(0);
        Some(args.remove(0))
    } else {
        None
    };
    let runs: usize = args.remove(0).parse()?;
    anyhow::ensure!(
        args.remove(0) == "--",
        "usage: startup-time [--addr A] N -- CMD ARGS"
    );
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(&args[0])
            .args(&args[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        match &fixed_addr {
            Some(addr) => {
                while get(addr).is_err() {
                    std::thread::sleep(Duration::from_micros(200));
                    anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "no answer");
                }
            }
            None => {
                let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
                let addr = loop {
                    let line = lines
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("no ready line"))??;
                    if let Some(addr) = line.strip_prefix("Listening on http://") {
                        break addr.to_owned();
                    }
                };
                get(&addr)?;
            }
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        child.kill()?;
        child.wait()?;
    }
    samples.sort_by(f64::total_cmp);
    println!("{:.1}", samples[samples.len() / 2]);
    Ok(())
}
