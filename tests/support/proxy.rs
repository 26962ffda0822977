//! A loopback TCP proxy in front of a real registry that can die mid-upload: once the
//! clients have sent a given number of bytes through it, it drops every connection and
//! refuses new ones until told to come back. A registry process killed at the right
//! moment would do the same, but a small release finishes before a test could time it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The proxy; dropping it stops it.
pub struct FaultyProxy {
    port: u16,
    state: Arc<State>,
}

struct State {
    up: AtomicBool,
    sent: AtomicU64,
    cut_after: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

impl FaultyProxy {
    /// Forwards 127.0.0.1:<its port> to 127.0.0.1:`target`, and goes down once clients have
    /// sent `cut_after` bytes.
    pub fn start(target: u16, cut_after: u64) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            sent: AtomicU64::new(0),
            cut_after: AtomicU64::new(cut_after),
            conns: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !st.up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                st.conns.lock().unwrap().push(client.try_clone().unwrap());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = st.clone();
                std::thread::spawn(move || pump(client, server, Some(up)));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        FaultyProxy { port, state }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether it went down.
    pub fn is_down(&self) -> bool {
        !self.state.up.load(Ordering::SeqCst)
    }

    /// Back up, for good.
    pub fn come_back(&self) {
        self.state.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.state.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to`; on the client side, counts bytes and brings everything down at
/// the threshold.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<State>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(st) = &count {
            let total = st.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if !st.up.load(Ordering::SeqCst) || total >= st.cut_after.load(Ordering::SeqCst) {
                st.up.store(false, Ordering::SeqCst);
                for c in st.conns.lock().unwrap().drain(..) {
                    let _ = c.shutdown(Shutdown::Both);
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
