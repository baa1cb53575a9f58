//! The console's sessions: a login token, good once, opens a session whose
//! id lives in an HttpOnly, SameSite=Strict cookie (and Secure when the
//! console serves HTTPS). Ids are random (two UUID v4s, 244 random bits
//! from the OS); nothing is stored on disk, so a restart prints a new URL
//! and ends every session.
//!
//! A session ends when its holder logs out, after [`Limits::idle`] without
//! a request, or [`Limits::absolute`] after it opened, whichever is first.
//! When the last one ends and the token was spent, a fresh token is made
//! and its URL printed on the console's terminal, so whoever started the
//! console can sign in again without restarting it. The ids of ended
//! sessions are remembered (a few) so their holder is told why they were
//! signed out instead of merely "not signed in".

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Ends a session this long after its last request.
    pub(crate) idle: Duration,
    /// Ends a session this long after it opened, however busy.
    pub(crate) absolute: Duration,
}

impl Default for Limits {
    /// 30 minutes idle, 8 hours in all (a working day at the window).
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(8 * 3600),
        }
    }
}

/// What a request's cookie says about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// An open session; its idle clock starts again.
    Open,
    /// A session that ended, and why.
    Ended(Ended),
    /// No session cookie of this console, or one it never opened.
    None,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Idle for longer than [`Limits::idle`].
    Idle,
    /// Open for longer than [`Limits::absolute`].
    Absolute,
    /// Its holder logged out.
    LoggedOut,
}

/// How many ended session ids are remembered.
const REMEMBERED: usize = 32;

/// The login token and the open sessions.
pub(crate) struct Sessions {
    /// The cookie's name, `tongban_console_PORT`: browsers share cookies
    /// across the ports of one host, and two consoles (a clerk's and a
    /// reviewer's) on one machine must not log each other out.
    cookie: String,
    /// The console's port.
    port: u16,
    /// Whether the console serves HTTPS (cookies get `Secure`).
    secure: bool,
    limits: Limits,
    /// Where a fresh login URL is shown (the terminal; nothing in tests).
    announce: Box<dyn Fn(&str) + Send + Sync>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The token of the printed URL, until it is used.
    token: Option<String>,
    /// Open sessions by id.
    open: HashMap<String, Opened>,
    /// Recently ended sessions, oldest first.
    ended: VecDeque<(String, Ended)>,
}

/// When an open session began and was last used.
struct Opened {
    at: Instant,
    seen: Instant,
}

fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// A fresh token and no sessions, for the console on `port`; `announce`
    /// is given each token made after the first (see the module header).
    pub(crate) fn new(
        port: u16,
        secure: bool,
        limits: Limits,
        announce: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Self {
        Self {
            cookie: format!("tongban_console_{port}"),
            port,
            secure,
            limits,
            announce,
            inner: Mutex::new(Inner {
                token: Some(random()),
                open: HashMap::new(),
                ended: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a handler panicked while holding it;
        // the maps stay consistent (each change is one insert or take).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The port of the console these sessions belong to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Whether cookies are marked `Secure` (the console serves HTTPS).
    pub(crate) fn secure(&self) -> bool {
        self.secure
    }

    /// The token for the printed URL (empty once spent).
    pub(crate) fn token(&self) -> String {
        self.lock().token.clone().unwrap_or_default()
    }

    /// Spends the token: a new session id if `token` is the unused one.
    pub(crate) fn login(&self, token: &str) -> Option<String> {
        let mut inner = self.lock();
        let good = inner
            .token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !good {
            return None;
        }
        inner.token = None;
        let id = random();
        let now = Instant::now();
        inner.open.insert(id.clone(), Opened { at: now, seen: now });
        Some(id)
    }

    /// This console's session id in a `Cookie` header, if any.
    fn id_in<'a>(&self, cookie_header: &'a str) -> Option<&'a str> {
        cookie_header
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value)
    }

    /// What the `Cookie` header's session is; an open one counts as used.
    pub(crate) fn check(&self, cookie_header: &str) -> Check {
        self.check_at(cookie_header, Instant::now())
    }

    fn check_at(&self, cookie_header: &str, now: Instant) -> Check {
        let mut inner = self.lock();
        self.sweep_locked(&mut inner, now);
        let Some(id) = self.id_in(cookie_header) else {
            return Check::None;
        };
        if let Some(s) = inner.open.get_mut(id) {
            s.seen = now;
            return Check::Open;
        }
        inner
            .ended
            .iter()
            .find(|(e, _)| e == id)
            .map_or(Check::None, |(_, why)| Check::Ended(*why))
    }

    /// Ends the `Cookie` header's session, if it is open.
    pub(crate) fn logout(&self, cookie_header: &str) {
        let mut inner = self.lock();
        if let Some(id) = self.id_in(cookie_header)
            && inner.open.remove(id).is_some()
        {
            self.end_locked(&mut inner, id.to_owned(), Ended::LoggedOut);
        }
    }

    /// Ends every session past its limits (the console runs this now and
    /// then, so a session whose browser never comes back still ends and a
    /// fresh login URL is printed).
    pub(crate) fn sweep(&self) {
        let mut inner = self.lock();
        self.sweep_locked(&mut inner, Instant::now());
    }

    fn sweep_locked(&self, inner: &mut Inner, now: Instant) {
        let ended: Vec<(String, Ended)> = inner
            .open
            .iter()
            .filter_map(|(id, s)| {
                let why = if now.duration_since(s.at) >= self.limits.absolute {
                    Ended::Absolute
                } else if now.duration_since(s.seen) >= self.limits.idle {
                    Ended::Idle
                } else {
                    return None;
                };
                Some((id.clone(), why))
            })
            .collect();
        for (id, why) in ended {
            inner.open.remove(&id);
            self.end_locked(inner, id, why);
        }
    }

    fn end_locked(&self, inner: &mut Inner, id: String, why: Ended) {
        tracing::info!(reason = ?why, "console session ended");
        inner.ended.push_back((id, why));
        while inner.ended.len() > REMEMBERED {
            inner.ended.pop_front();
        }
        if inner.open.is_empty() && inner.token.is_none() {
            let token = random();
            (self.announce)(&token);
            inner.token = Some(token);
        }
    }

    /// The `Set-Cookie` value for a session id.
    pub(crate) fn set_cookie(&self, id: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.cookie
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a duration such as `90s`, `30m` or `8h` (a whole number and one
/// unit), for `--session-idle` and `--session-max`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a whole number and a unit, e.g. 30m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: the unit is s, m or h, e.g. 30m")),
    };
    if secs == 0 {
        return Err(format!("{s:?}: must be longer than zero"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn sessions(limits: Limits) -> (Sessions, Arc<AtomicUsize>) {
        let announced = Arc::new(AtomicUsize::new(0));
        let a = announced.clone();
        let s = Sessions::new(
            8080,
            false,
            limits,
            Box::new(move |_| {
                a.fetch_add(1, Ordering::SeqCst);
            }),
        );
        (s, announced)
    }

    #[test]
    fn token_opens_one_session_once() {
        let (s, _) = sessions(Limits::default());
        let token = s.token();
        assert!(s.login("wrong").is_none());
        let id = s.login(&token).expect("first use");
        assert!(s.login(&token).is_none(), "the token is good once");
        assert_eq!(
            s.check(&format!("a=b; tongban_console_8080={id}")),
            Check::Open
        );
        assert_eq!(s.check("tongban_console_8080=other"), Check::None);
        assert_eq!(s.check(&format!("tongban_console_8081={id}")), Check::None);
        assert!(s.set_cookie(&id).ends_with("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn idle_and_absolute_limits_end_a_session_and_a_new_token_is_printed() {
        let limits = Limits {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(300),
        };
        let (s, announced) = sessions(limits);
        let id = s.login(&s.token()).unwrap();
        let cookie = format!("tongban_console_8080={id}");
        let t0 = Instant::now();
        // Used every 50 s: the idle clock restarts each time ...
        for i in 1..=5 {
            assert_eq!(
                s.check_at(&cookie, t0 + Duration::from_secs(50 * i)),
                Check::Open
            );
        }
        // ... but five minutes after it opened it ends anyway.
        assert_eq!(
            s.check_at(&cookie, t0 + Duration::from_secs(301)),
            Check::Ended(Ended::Absolute)
        );
        assert_eq!(announced.load(Ordering::SeqCst), 1);
        // The fresh token opens a session that ends after a minute idle.
        let id = s.login(&s.token()).expect("the new token");
        let cookie = format!("tongban_console_8080={id}");
        let t1 = Instant::now();
        assert_eq!(
            s.check_at(&cookie, t1 + Duration::from_secs(59)),
            Check::Open
        );
        assert_eq!(
            s.check_at(&cookie, t1 + Duration::from_secs(59 + 60)),
            Check::Ended(Ended::Idle)
        );
        assert_eq!(announced.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn logout_ends_the_session_and_says_so() {
        let (s, announced) = sessions(Limits::default());
        let id = s.login(&s.token()).unwrap();
        let cookie = format!("tongban_console_8080={id}");
        s.logout(&cookie);
        assert_eq!(s.check(&cookie), Check::Ended(Ended::LoggedOut));
        assert_eq!(announced.load(Ordering::SeqCst), 1);
        assert!(!s.token().is_empty(), "a fresh token to sign in again");
        s.logout(&cookie);
        assert_eq!(announced.load(Ordering::SeqCst), 1, "ended once");
    }

    #[test]
    fn secure_cookies_under_tls() {
        let s = Sessions::new(8443, true, Limits::default(), Box::new(|_| {}));
        assert!(s.set_cookie("x").ends_with("; Secure"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(28800)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
