//! A tiny HTTP/1.1 file server on 127.0.0.1 laid out like a Debian mirror (`/debian/<path>` = `<path>` under its
//! root), with switches for the faults a real mirror has: cutting a transfer short,
//! stalling, or trickling bytes slowly.
//!
//! Loopback only, bounded: every connection thread ends on its own (a stall lasts at most
//! STALL_MAX), nothing outside the root is served, and the server stops when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const STALL_MAX: Duration = Duration::from_secs(20);

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve files, 404 for anything else.
    Normal,
    /// Announce the full length, send this many body bytes, close.
    Truncate(usize),
    /// Read the request, then send nothing.
    Stall,
    /// Send the body in 64 KiB pieces with a pause between them.
    Slow(Duration),
}

struct State {
    mode: Mode,
    hits: HashMap<String, usize>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panicking test thread leaves the counters as they were: still worth reading.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The mirror server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Serves the files below `root` on a free 127.0.0.1 port.
    pub fn start(root: &Path) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Normal,
            hits: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, rt) = (state.clone(), stop.clone(), root.to_path_buf());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp, rt) = (st.clone(), sp.clone(), rt.clone());
                thread::spawn(move || {
                    let _ = handle(conn, &rt, &st, &sp);
                });
            }
        });
        Ok(Server {
            addr,
            root: root.to_path_buf(),
            state,
            stop,
        })
    }

    /// `http://127.0.0.1:<port>/debian/` (the mirror root; `/debian` is stripped).
    pub fn url(&self) -> String {
        format!("http://{}/debian/", self.addr)
    }

    /// The folder served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How the following requests are answered.
    pub fn set_mode(&self, mode: Mode) {
        lock(&self.state).mode = mode;
    }

    /// GET requests seen for a path under the mirror root (e.g. `pool/main/...`).
    pub fn hits(&self, path: &str) -> usize {
        *lock(&self.state).hits.get(path).unwrap_or(&0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn handle(
    conn: TcpStream,
    root: &Path,
    state: &Mutex<State>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut conn = conn;
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let rel = path.strip_prefix("/debian/").unwrap_or("").to_string();
    let mode = {
        let mut s = lock(state);
        *s.hits.entry(rel.clone()).or_default() += 1;
        s.mode
    };
    if mode == Mode::Stall {
        let mut waited = Duration::ZERO;
        while waited < STALL_MAX && !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(50));
            waited += Duration::from_millis(50);
        }
        return Ok(());
    }
    let file = if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        None
    } else {
        std::fs::read(root.join(&rel)).ok()
    };
    let Some(body) = file else {
        let msg = b"not found";
        write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        return conn.write_all(msg);
    };
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    match mode {
        Mode::Truncate(n) => {
            conn.write_all(&body[..n.min(body.len())])?;
            conn.flush()?;
            // Close without sending the rest.
            conn.shutdown(std::net::Shutdown::Both)
        }
        Mode::Slow(pause) => {
            for chunk in body.chunks(64 << 10) {
                conn.write_all(chunk)?;
                conn.flush()?;
                thread::sleep(pause);
            }
            Ok(())
        }
        _ => conn.write_all(&body),
    }?;
    // Drain anything left so the close is clean.
    let _ = reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(10)));
    let mut sink = [0u8; 64];
    let _ = reader.read(&mut sink);
    Ok(())
}
