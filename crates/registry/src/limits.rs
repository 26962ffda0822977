//! How long a registry request may take: none waits forever.
//!
//! A registry that accepts a request and then stops sending, or announces a large answer
//! and trickles it, would otherwise keep a CI job waiting until the job's own timeout, with
//! nothing said. Three limits, sized for a slow CI link:
//! - connecting: [`Timeouts::connect`] (the HTTP client's connect timeout);
//! - silence: no byte received for [`Timeouts::idle`] (while a body is being sent, the
//!   registry says nothing until it has it all, so that phase gets the body's transfer
//!   time on top);
//! - a deadline for each phase (sending the request and getting the headers, then reading
//!   the body) scaled to the bytes it moves: `2 × idle + bytes / min_rate`. A registry
//!   that keeps sending one byte a second is cut off there.
//!
//! The watchdog ([`watched`]) runs beside the request rather than inside the HTTP client so
//! that one rule covers every call, token requests included; a stall becomes
//! [`crate::Error::Timeout`], which the retry rules treat as temporary.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits of every registry request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to establish a connection (TCP and TLS).
    pub connect: Duration,
    /// Time without receiving a byte.
    pub idle: Duration,
    /// The slowest transfer accepted, in bytes per second: a phase moving `n` bytes gets
    /// `n / min_rate` on top of twice the idle time.
    pub min_rate: u64,
}

/// Default silence allowed: a slow CI runner behind a proxy, a registry busy committing.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// Longest default connect time.
const DEFAULT_CONNECT: Duration = Duration::from_secs(30);
/// 64 KiB/s: half a megabit, slower than any link a release would be run over.
const DEFAULT_MIN_RATE: u64 = 64 * 1024;

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::with_idle(DEFAULT_IDLE)
    }
}

impl Timeouts {
    /// The limits for an idle timeout of `idle` (`--timeout`): connecting gets as long, up
    /// to 30 s; the deadlines follow from it.
    pub fn with_idle(idle: Duration) -> Timeouts {
        Timeouts {
            connect: idle.min(DEFAULT_CONNECT),
            idle,
            min_rate: DEFAULT_MIN_RATE,
        }
    }

    /// Time to move `bytes` at the slowest rate accepted.
    pub fn transfer(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.min_rate.max(1) as f64)
    }

    /// The deadline of a phase that moves `bytes`.
    pub fn deadline(&self, bytes: u64) -> Duration {
        self.idle.saturating_mul(2) + self.transfer(bytes)
    }
}

/// Told when a request has gone a while (a quarter of the idle time, at least 1 s) without
/// a byte, with a line naming the registry and the request: a user watching a job that
/// seems stuck sees what it waits for.
#[derive(Clone)]
pub struct WaitNotice(Arc<dyn Fn(&str) + Send + Sync>);

impl WaitNotice {
    /// Calls `tell` with each line.
    pub fn new(tell: impl Fn(&str) + Send + Sync + 'static) -> WaitNotice {
        WaitNotice(Arc::new(tell))
    }

    pub(crate) fn tell(&self, line: &str) {
        (self.0)(line)
    }
}

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

impl Timeouts {
    /// Silence after which a waiting request is announced.
    pub(crate) fn notice_after(&self) -> Duration {
        (self.idle / 4).max(Duration::from_secs(1))
    }
}

/// When a request last received something; shared by the body reader and the watchdog.
#[derive(Clone, Debug)]
pub(crate) struct Pulse(Arc<Mutex<Instant>>);

impl Pulse {
    pub fn new() -> Pulse {
        Pulse(Arc::new(Mutex::new(Instant::now())))
    }

    /// Something arrived.
    pub fn beat(&self) {
        *self.0.lock().expect("pulse poisoned") = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().expect("pulse poisoned")
    }
}

/// Why a watched request was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Nothing arrived for this long.
    Silent(Duration),
    /// The phase's deadline passed.
    Late(Duration),
}

impl Stall {
    /// `no byte for 60 s`, `not done within 2 min 4 s`.
    pub fn describe(self) -> String {
        match self {
            Stall::Silent(d) => format!("no byte received for {}", seconds(d)),
            Stall::Late(d) => format!(
                "not done within {}, the time allowed for its size at the slowest rate \
                 accepted",
                seconds(d)
            ),
        }
    }
}

/// `2 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Who hears of a wait, after how long a silence: `notice(silence)`.
pub(crate) type Notice<'a> = Option<(Duration, &'a (dyn Fn(Duration) + Sync))>;

/// Runs `work` until it finishes, `idle` passes without a [`Pulse::beat`] (counted from
/// the start), or `deadline` passes; calls the notice once when a silence lasts its time.
pub(crate) async fn watched<T>(
    pulse: &Pulse,
    idle: Duration,
    deadline: Duration,
    notice: Notice<'_>,
    work: impl Future<Output = T>,
) -> Result<T, Stall> {
    pulse.beat();
    let end = Instant::now() + deadline;
    let mut noticed = notice.is_none();
    tokio::pin!(work);
    loop {
        let last = pulse.last();
        let mut due = (last + idle).min(end);
        if let (false, Some((after, _))) = (noticed, notice) {
            due = due.min(last + after);
        }
        tokio::select! {
            out = &mut work => return Ok(out),
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {
                let now = Instant::now();
                if now >= end {
                    return Err(Stall::Late(deadline));
                }
                let silence = now.saturating_duration_since(pulse.last());
                if silence >= idle {
                    return Err(Stall::Silent(idle));
                }
                if let (false, Some((after, tell))) = (noticed, notice) {
                    if silence >= after {
                        tell(silence);
                        noticed = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_scale_with_size() {
        let t = Timeouts::with_idle(Duration::from_secs(2));
        assert_eq!(t.connect, Duration::from_secs(2));
        assert_eq!(t.deadline(0), Duration::from_secs(4));
        assert_eq!(t.deadline(4 * 64 * 1024), Duration::from_secs(8));
        assert_eq!(Timeouts::default().connect, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn silence_and_lateness_are_caught_and_beats_keep_a_request_alive() {
        let pulse = Pulse::new();
        let ms = Duration::from_millis;
        let told = std::sync::atomic::AtomicUsize::new(0);
        let tell = |_: Duration| {
            told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let silent = watched(
            &pulse,
            ms(50),
            ms(5000),
            Some((ms(20), &tell)),
            std::future::pending::<()>(),
        )
        .await;
        assert_eq!(silent, Err(Stall::Silent(ms(50))));
        assert_eq!(
            told.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "told once"
        );

        // A beat every 20 ms keeps a 50 ms idle limit happy until the deadline.
        let beating = {
            let pulse = pulse.clone();
            async move {
                loop {
                    tokio::time::sleep(ms(20)).await;
                    pulse.beat();
                }
            }
        };
        let started = Instant::now();
        let late = watched(&pulse, ms(50), ms(300), None, beating).await;
        assert_eq!(late, Err(Stall::Late(ms(300))));
        assert!(started.elapsed() >= ms(300));

        assert_eq!(
            watched(&pulse, ms(50), ms(300), None, async { 7 }).await,
            Ok(7)
        );
        assert_eq!(
            Stall::Silent(ms(2000)).describe(),
            "no byte received for 2 s"
        );
    }
}
