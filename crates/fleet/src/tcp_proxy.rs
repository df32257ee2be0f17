//! A TCP proxy on loopback that can cut a node off from its NATS server the ways a
//! network does, without root: **blackhole** (bytes stop moving, connections stay
//! open, as when packets are dropped; on heal TCP delivers what was held back),
//! **reset** (every open connection is closed with an RST), and **refuse** (nothing
//! listens: new connections are refused, and open ones are reset). For the tests
//! and the benchmarks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Pass,
    Blackhole,
}

/// A proxy from [`TcpProxy::addr`] to one target.
pub struct TcpProxy {
    addr: SocketAddr,
    target: SocketAddr,
    flow: watch::Sender<Flow>,
    /// Bumped to reset every open connection.
    resets: watch::Sender<u64>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(task) = self.listener.lock().unwrap().take() {
            task.abort();
        }
        self.reset();
    }
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Arc<TcpProxy>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Arc::new(TcpProxy {
            addr: listener.local_addr()?,
            target,
            flow: watch::Sender::new(Flow::Pass),
            resets: watch::Sender::new(0),
            listener: Mutex::new(None),
        });
        proxy.listen(listener);
        Ok(proxy)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `nats://` URL of [`TcpProxy::addr`].
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Bytes stop moving both ways; connections stay open.
    pub fn blackhole(&self) {
        self.flow.send_replace(Flow::Blackhole);
    }

    /// Closes every open connection with an RST; new ones are taken as before.
    pub fn reset(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// Stops listening (connections are refused) and resets the open ones.
    pub fn refuse(&self) {
        if let Some(task) = self.listener.lock().unwrap().take() {
            task.abort();
        }
        self.reset();
    }

    /// Undoes [`blackhole`](Self::blackhole) and [`refuse`](Self::refuse): bytes
    /// move again and the port listens again (the same port).
    pub async fn heal(&self) -> std::io::Result<()> {
        self.flow.send_replace(Flow::Pass);
        if self.listener.lock().unwrap().is_some() {
            return Ok(());
        }
        // The port was just released; binding it again may race its last sockets.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.listen(listener);
        Ok(())
    }

    fn listen(&self, listener: TcpListener) {
        let (target, flow, resets) = (self.target, self.flow.clone(), self.resets.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (flow, resets) = (flow.subscribe(), resets.subscribe());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        forward(client, server, flow, resets).await;
                    }
                });
            }
        });
        *self.listener.lock().unwrap() = Some(task);
    }
}

/// Moves bytes both ways until either side closes or the proxy resets.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    flow: watch::Receiver<Flow>,
    mut resets: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    resets.borrow_and_update();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let reset = {
        let up = pump(&mut client_read, &mut server_write, flow.clone());
        let down = pump(&mut server_read, &mut client_write, flow);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => false,
            _ = resets.changed() => true,
        }
    };
    if reset {
        // An RST rather than a FIN: the peer sees "connection reset".
        for stream in [
            client_read.reunite(client_write),
            server_read.reunite(server_write),
        ]
        .into_iter()
        .flatten()
        {
            let _ = stream.set_zero_linger();
        }
    }
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut flow: watch::Receiver<Flow>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // A blackhole stops reading: the bytes wait in the kernel, as packets a
        // dropping network makes TCP resend.
        if flow.wait_for(|f| *f == Flow::Pass).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if flow.wait_for(|f| *f == Flow::Pass).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
