//! A flaky link: a loopback TCP proxy in front of a server that cuts connections after a byte
//! budget (server → client), with jitter, or passes everything through. It plays the mobile
//! networks, NAT timeouts and load balancers that end IMAP sessions mid-FETCH.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::mailgen::SplitMix64;

/// How a [`FlakyLink`] treats connections opened from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Everything passes.
    Clean,
    /// Each connection is cut once the server has sent about `bytes` to the client: a random
    /// amount within ±`jitter_percent` of it, drawn per connection from the link's seed.
    CutAfter { bytes: u64, jitter_percent: u8 },
}

#[derive(Debug)]
struct Shared {
    /// 0: clean; otherwise the budget, and the jitter in the top byte.
    mode: AtomicU64,
    rng: std::sync::Mutex<SplitMix64>,
    connections: AtomicU64,
    cuts: AtomicU64,
}

impl Shared {
    fn budget_for_next_connection(&self) -> Option<u64> {
        let packed = self.mode.load(Ordering::SeqCst);
        if packed == 0 {
            return None;
        }
        let bytes = packed & 0x00ff_ffff_ffff_ffff;
        let jitter = packed >> 56;
        let spread = bytes * jitter / 100;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let offset = if spread == 0 {
            0
        } else {
            rng.below(2 * spread + 1)
        };
        Some((bytes - spread + offset).max(1))
    }
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct FlakyLink {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FlakyLink {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: AtomicU64::new(0),
            rng: std::sync::Mutex::new(SplitMix64(seed)),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        });
        let for_accept = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                for_accept.connections.fetch_add(1, Ordering::SeqCst);
                let budget = for_accept.budget_for_next_connection();
                let shared = for_accept.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await
                        && forward(client, server, budget).await
                    {
                        shared.cuts.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Ok(Self {
            address,
            shared,
            accept,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Sets the mode for connections opened from now on.
    pub fn set_mode(&self, mode: LinkMode) {
        let packed = match mode {
            LinkMode::Clean => 0,
            LinkMode::CutAfter {
                bytes,
                jitter_percent,
            } => {
                (bytes.clamp(1, 0x00ff_ffff_ffff_ffff)) | (u64::from(jitter_percent.min(100)) << 56)
            }
        };
        self.shared.mode.store(packed, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FlakyLink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies both ways until either side ends, or until `budget` bytes went to the client; true
/// when the link cut the connection.
async fn forward(client: TcpStream, server: TcpStream, budget: Option<u64>) -> bool {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut left = budget.unwrap_or(u64::MAX);
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let allowed = usize::try_from(left.min(read as u64)).unwrap_or(read);
            if client_write.write_all(&buffer[..allowed]).await.is_err() {
                return false;
            }
            left -= allowed as u64;
            if left == 0 {
                return true;
            }
        }
    };
    tokio::select! {
        () = upstream => false,
        cut = downstream => cut,
    }
    // Both halves drop here: the client sees the connection end, as on a cut link.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cut_link_ends_the_connection_near_its_budget_and_a_clean_one_passes_all() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_address = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = upstream.accept().await {
                tokio::spawn(async move {
                    let _ = socket.write_all(&vec![b'x'; 100_000]).await;
                });
            }
        });
        let link = FlakyLink::start(upstream_address, 7).await.unwrap();
        let read_all = || async {
            let mut stream = TcpStream::connect(("127.0.0.1", link.port()))
                .await
                .unwrap();
            let mut received = Vec::new();
            let _ = stream.read_to_end(&mut received).await;
            received.len() as u64
        };
        assert_eq!(read_all().await, 100_000);
        link.set_mode(LinkMode::CutAfter {
            bytes: 10_000,
            jitter_percent: 50,
        });
        for _ in 0..5 {
            let got = read_all().await;
            assert!((5_000..=15_000).contains(&got), "{got}");
        }
        assert_eq!(link.cuts(), 5);
        link.set_mode(LinkMode::Clean);
        assert_eq!(read_all().await, 100_000);
        assert_eq!(link.connections(), 7);
    }
}
