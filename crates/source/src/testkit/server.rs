//! A tiny HTTP/1.1 file server on 127.0.0.1 laid out like a Debian mirror (`/debian/<path>` = `<path>` under its
//! root), with switches for the faults a real mirror has: cutting a transfer short,
//! stalling, trickling bytes slowly, or refusing HEAD. It answers HEAD and one-range GETs
//! (`Range: bytes=A-B`) as a mirror's web server does.
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
    /// Answer HEAD with 405 (some mirrors and proxies do).
    refuse_head: bool,
    /// Whole-file GETs per path.
    hits: HashMap<String, usize>,
    /// Every request, in order: (path, `HEAD` | `GET` | `GET bytes=0-0`).
    log: Vec<(String, String)>,
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
            refuse_head: false,
            hits: HashMap::new(),
            log: Vec::new(),
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

    /// Whether HEAD requests are answered 405 Method Not Allowed from now on.
    pub fn refuse_head(&self, refuse: bool) {
        lock(&self.state).refuse_head = refuse;
    }

    /// Whole-file GET requests seen for a path under the mirror root (e.g. `pool/main/...`);
    /// HEADs and range GETs are not counted.
    pub fn hits(&self, path: &str) -> usize {
        *lock(&self.state).hits.get(path).unwrap_or(&0)
    }

    /// The requests seen for a path under the mirror root, in order: `HEAD`, `GET`, or
    /// `GET bytes=0-0` for a range GET.
    pub fn requests(&self, path: &str) -> Vec<String> {
        lock(&self.state)
            .log
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
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
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let mut conn = conn;
    let method = request
        .split_whitespace()
        .next()
        .unwrap_or("GET")
        .to_string();
    let head = method == "HEAD";
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let rel = path.strip_prefix("/debian/").unwrap_or("").to_string();
    let (mode, refuse_head) = {
        let mut s = lock(state);
        if !head && range.is_none() {
            *s.hits.entry(rel.clone()).or_default() += 1;
        }
        let what = match &range {
            Some(r) => format!("{method} {r}"),
            None => method.clone(),
        };
        s.log.push((rel.clone(), what));
        (s.mode, s.refuse_head)
    };
    if head && refuse_head {
        return write!(
            conn,
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
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
        return if head { Ok(()) } else { conn.write_all(msg) };
    };
    if head {
        return write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            body.len()
        );
    }
    if let Some((from, to)) = range.as_deref().and_then(|r| one_range(r, body.len())) {
        write!(
            conn,
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{to}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len(),
            to - from + 1
        )?;
        return conn.write_all(&body[from..=to]);
    }
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

/// The byte range `bytes=A-B` (or `bytes=A-`) asks for, within a body of `len` bytes.
fn one_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = header.strip_prefix("bytes=")?.split_once('-')?;
    let from: usize = a.trim().parse().ok()?;
    let to = match b.trim() {
        "" => len.checked_sub(1)?,
        b => b.parse::<usize>().ok()?.min(len.checked_sub(1)?),
    };
    (from <= to).then_some((from, to))
}
