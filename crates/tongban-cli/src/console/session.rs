//! The console's sessions: one login token, good once, opens a session
//! whose id lives in an HttpOnly, SameSite=Strict cookie. Ids are random
//! (two UUID v4s, 244 random bits from the OS); nothing is stored on disk,
//! so a restart prints a new URL and ends every session.

use std::collections::HashSet;
use std::sync::Mutex;

/// The login token and the open sessions.
pub(crate) struct Sessions {
    /// The cookie's name, `tongban_console_PORT`: browsers share cookies
    /// across the ports of one host, and two consoles (a clerk's and a
    /// reviewer's) on one machine must not log each other out.
    cookie: String,
    /// The console's port.
    port: u16,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The token of the printed URL, until it is used.
    token: Option<String>,
    /// Open session ids.
    open: HashSet<String>,
}

fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// A fresh token and no sessions, for the console on `port`.
    pub(crate) fn new(port: u16) -> Self {
        Self {
            cookie: format!("tongban_console_{port}"),
            port,
            inner: Mutex::new(Inner {
                token: Some(random()),
                open: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a handler panicked while holding it;
        // the sets stay consistent (each change is one insert or take).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The port of the console these sessions belong to.
    pub(crate) fn port(&self) -> u16 {
        self.port
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
        inner.open.insert(id.clone());
        Some(id)
    }

    /// Whether the `Cookie` header carries an open session.
    pub(crate) fn check(&self, cookie_header: &str) -> bool {
        let inner = self.lock();
        cookie_header
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .any(|(name, value)| name == self.cookie && inner.open.contains(value))
    }

    /// The `Set-Cookie` value for a session id.
    pub(crate) fn set_cookie(&self, id: &str) -> String {
        format!("{}={id}; Path=/; HttpOnly; SameSite=Strict", self.cookie)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_opens_one_session_once() {
        let s = Sessions::new(8080);
        let token = s.token();
        assert!(s.login("wrong").is_none());
        let id = s.login(&token).expect("first use");
        assert!(s.login(&token).is_none(), "the token is good once");
        assert!(s.check(&format!("a=b; tongban_console_8080={id}")));
        assert!(!s.check("tongban_console_8080=other"));
        assert!(!s.check(&format!("tongban_console_8081={id}")));
        assert!(s.set_cookie(&id).contains("HttpOnly; SameSite=Strict"));
    }
}
