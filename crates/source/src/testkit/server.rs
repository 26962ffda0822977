//! A tiny HTTP/1.1 file server on 127.0.0.1 laid out like a Debian mirror (`/debian/<path>`
//! = `<path>` under its root), with switches for the faults a real mirror has: cutting a
//! transfer short, stalling, trickling bytes slowly, refusing HEAD, ignoring Range, and
//! one-off faults for the next GETs (a body cut after N bytes, a 503, a 206 of the wrong
//! part). It answers HEAD and one-range GETs (`Range: bytes=A-B`, with `If-Range`) as a
//! mirror's web server does, with an `ETag` and a `Last-Modified`.
//!
//! Loopback only, bounded: every connection thread ends on its own (a stall lasts at most
//! STALL_MAX), nothing outside the root is served, and the server stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

const STALL_MAX: Duration = Duration::from_secs(20);

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve files, 404 for anything else.
    Normal,
    /// Announce the full length (of the file or the range), send this many body bytes,
    /// close: every GET.
    Truncate(usize),
    /// Read the request, then send nothing.
    Stall,
    /// Send the body in 64 KiB pieces with a pause between them.
    Slow(Duration),
}

/// A fault for one GET: each GET of a file takes the next one queued (see
/// [`Server::fault_once`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Announce the full length, send this many body bytes, close.
    Cut(usize),
    /// Answer with this status and no body, with `Retry-After: <seconds>` when given.
    Status(u16, Option<u64>),
    /// Answer a range GET with a 206 of the whole file (`Content-Range: bytes 0-…`), not
    /// the part asked for.
    WrongRange,
}

struct State {
    mode: Mode,
    /// Answer HEAD with 405 (some mirrors and proxies do).
    refuse_head: bool,
    /// Answer range GETs with the whole file, as a server without range support does.
    ignore_range: bool,
    /// One-off faults for the next GETs of files, in order.
    faults: VecDeque<Fault>,
    /// Whole-file GETs per path.
    hits: HashMap<String, usize>,
    /// Body bytes sent per path, by every GET.
    sent: HashMap<String, u64>,
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
            ignore_range: false,
            faults: VecDeque::new(),
            hits: HashMap::new(),
            sent: HashMap::new(),
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

    /// Whether range GETs are answered with the whole file (200) from now on.
    pub fn ignore_range(&self, ignore: bool) {
        lock(&self.state).ignore_range = ignore;
    }

    /// Queues a fault for the next GET of a file that exists (404s and HEADs take none);
    /// the GETs after it are answered as the mode says.
    pub fn fault_once(&self, fault: Fault) {
        lock(&self.state).faults.push_back(fault);
    }

    /// Body bytes sent for a path under the mirror root, by all GETs together.
    pub fn sent(&self, path: &str) -> u64 {
        *lock(&self.state).sent.get(path).unwrap_or(&0)
    }

    /// Whole-file GET requests seen for a path under the mirror root (e.g. `pool/main/...`);
    /// HEADs and range GETs are not counted.
    pub fn hits(&self, path: &str) -> usize {
        *lock(&self.state).hits.get(path).unwrap_or(&0)
    }

    /// The requests seen for a path under the mirror root, in order: `HEAD`, `GET`, or
    /// `GET bytes=0-0` (`GET bytes=N-`) for a range GET.
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

/// A request as the server reads it.
struct Request {
    head: bool,
    /// The path below the mirror root.
    rel: String,
    range: Option<String>,
    if_range: Option<String>,
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (mut range, mut if_range) = (None, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let value = Some(value.trim().to_string());
            if name.eq_ignore_ascii_case("range") {
                range = value;
            } else if name.eq_ignore_ascii_case("if-range") {
                if_range = value;
            }
        }
    }
    let mut words = line.split_whitespace();
    let head = words.next() == Some("HEAD");
    let path = words.next().unwrap_or("/");
    Ok(Request {
        head,
        rel: path.strip_prefix("/debian/").unwrap_or("").to_string(),
        range,
        if_range,
    })
}

fn handle(
    conn: TcpStream,
    root: &Path,
    state: &Mutex<State>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let req = read_request(&mut reader)?;
    let mut conn = conn;
    let rel = req.rel.clone();
    let file = if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        None
    } else {
        let p = root.join(&rel);
        std::fs::read(&p).ok().map(|b| (b, validators(&p)))
    };
    let (mode, refuse_head, ignore_range, fault) = {
        let mut s = lock(state);
        if !req.head && req.range.is_none() {
            *s.hits.entry(rel.clone()).or_default() += 1;
        }
        let method = if req.head { "HEAD" } else { "GET" };
        let what = match &req.range {
            Some(r) => format!("{method} {r}"),
            None => method.to_string(),
        };
        s.log.push((rel.clone(), what));
        let fault = if req.head || file.is_none() {
            None
        } else {
            s.faults.pop_front()
        };
        (s.mode, s.refuse_head, s.ignore_range, fault)
    };
    if req.head && refuse_head {
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
    let Some((body, (etag, modified))) = file else {
        let msg = b"not found";
        write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        return if req.head {
            Ok(())
        } else {
            conn.write_all(msg)
        };
    };
    if let Some(Fault::Status(code, retry_after)) = fault {
        let wait = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
        return write!(
            conn,
            "HTTP/1.1 {code} Fault\r\n{wait}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let len = body.len();
    let same = req
        .if_range
        .as_deref()
        .is_none_or(|v| v == etag || v == modified);
    let range = req
        .range
        .as_deref()
        .filter(|_| same && !ignore_range && !req.head)
        .and_then(|r| one_range(r, len));
    let (status, (from, to)) = match (range, fault) {
        (Some(_), Some(Fault::WrongRange)) => ("206 Partial Content", (0, len.saturating_sub(1))),
        (Some(r), _) => ("206 Partial Content", r),
        (None, _) => ("200 OK", (0, len.saturating_sub(1))),
    };
    let part = if len == 0 {
        &body[..]
    } else {
        &body[from..=to]
    };
    let content_range = match range {
        Some(_) => format!("Content-Range: bytes {from}-{to}/{len}\r\n"),
        None => String::new(),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\n{content_range}Content-Length: {}\r\nContent-Type: application/octet-stream\r\nETag: {etag}\r\nLast-Modified: {modified}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        part.len()
    )?;
    if req.head {
        return Ok(());
    }
    let cut = match (fault, mode) {
        (Some(Fault::Cut(n)), _) | (_, Mode::Truncate(n)) => Some(n.min(part.len())),
        _ => None,
    };
    let sent = cut.unwrap_or(part.len());
    *lock(state).sent.entry(rel).or_default() += sent as u64;
    match (cut, mode) {
        (Some(n), _) => {
            conn.write_all(&part[..n])?;
            conn.flush()?;
            // Close without sending the rest.
            return conn.shutdown(std::net::Shutdown::Both);
        }
        (None, Mode::Slow(pause)) => {
            for chunk in part.chunks(64 << 10) {
                conn.write_all(chunk)?;
                conn.flush()?;
                thread::sleep(pause);
            }
        }
        _ => conn.write_all(part)?,
    }
    // Drain anything left so the close is clean.
    let _ = reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(10)));
    let mut sink = [0u8; 64];
    let _ = reader.read(&mut sink);
    Ok(())
}

/// A file's `ETag` (its length and mtime, as nginx makes it) and `Last-Modified`.
fn validators(path: &Path) -> (String, String) {
    let meta = std::fs::metadata(path).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .unwrap_or(UNIX_EPOCH);
    let secs = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let len = meta.map_or(0, |m| m.len());
    (
        format!("\"{secs:x}-{len:x}\""),
        httpdate::fmt_http_date(mtime),
    )
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
